"""Boundary refinement sweep (issue 13): how much a full-resolution boundary (``segment/boundary.py``) gains
on the first mask, per setting, on a DAVIS-345 half or GrabCut-50, and what it costs per mask.

Two steps, so the sweep costs no model time:

    python -m benchmarks.bench_boundary dump --sets davis345 --half A      # the recipe's first masks
    python -m benchmarks.bench_boundary sweep --sets davis345 --half A     # settings -> mIoU, ms per mask
    python -m benchmarks.bench_boundary cost --sets davis345,grabcut --half B  # fast path = full frame? ms

``dump`` runs the segmenter (the default recipe, or ``--recipe`` flags, boundary off) on every object and
stores the chosen mask's frame (offset, upsampled logits, RGB crop) with its GT under /tmp/gtw_boundary;
``sweep`` applies ``refine_boundary`` with each setting of the grid to the stored frames and reports mIoU
(void ignored, protocol.py) against the unrefined masks, plus the milliseconds per mask (one thread).
Tune on one half; the chosen setting is then run end to end (clicks included) with
``bench_quality --recipe boundary=guided ...`` on the other half and GrabCut-50.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import protocol as P
from benchmarks.bench_quality import CACHE, DiskCachedSegmenter, load_mobilesam_segmenter, parse_recipe
from gt_widget.segment.boundary import BoundarySettings, boundary_band, guided_filter, refine_boundary

DUMPS = Path(os.environ.get("GTW_BOUNDARY_DUMPS", "/tmp/gtw_boundary"))
RESULTS = Path(__file__).resolve().parent / "results"
GRID = {
    "radius": (2, 4, 8),
    "eps": (1e-4, 1e-3, 1e-2),
    "band": (3, 6),
    "temperature": (1.0, 4.0),
}


def dump_path(name: str, half: str | None) -> Path:
    """Where ``dump`` stores one set's (or half's) frames."""
    return DUMPS / f"{name}{'_' + half if half and name == 'davis345' else ''}.pkl"


def dump(args: argparse.Namespace) -> int:
    """Run the recipe's first pass and store each chosen mask's frame, logits and GT."""
    import torch

    torch.set_num_threads(1)
    flags = parse_recipe(args.recipe)
    flags.setdefault("threads", 1)
    flags["boundary"] = "off"
    seg = load_mobilesam_segmenter(args.weights, **flags)
    DUMPS.mkdir(parents=True, exist_ok=True)
    for name in [s for s in args.sets.split(",") if s]:
        samples = P.select_half(P.load_set(name), args.half)[args.start :: args.every]
        DiskCachedSegmenter(seg, CACHE / name)
        items: list[dict[str, Any]] = []
        t0 = time.time()
        for i, (s, image, gt, void) in enumerate(P.iter_loaded(samples)):
            seg.set_image(image)
            pred = seg.predict(extreme_points=P.extreme_points(gt))
            (x0, y0), logits, frame = seg.boundary_inputs(pred)
            h, w = logits.shape
            items.append(
                {
                    "id": s.id,
                    "offset": (x0, y0),
                    "mask": np.asarray(pred.mask, bool),
                    "logits": logits.astype(np.float16),
                    "frame": np.ascontiguousarray(frame),
                    "gt": gt,
                    "void": void,
                    "crop": (x0, y0, x0 + w, y0 + h),
                }
            )
            print(f"\r  {name} {i + 1}/{len(samples)} ({time.time() - t0:.0f}s)", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        path = dump_path(name, args.half)
        with path.open("wb") as fh:
            pickle.dump(items, fh)
        print(f"wrote {path} ({len(items)} objects)")
    return 0


def apply(item: dict[str, Any], settings: BoundarySettings) -> tuple[np.ndarray, float]:
    """The refined full-image mask of one dumped object and the seconds the refinement took."""
    x0, y0, x1, y1 = item["crop"]
    mask = item["mask"].copy()
    t = time.perf_counter()
    mask[y0:y1, x0:x1] = refine_boundary(mask[y0:y1, x0:x1], item["logits"].astype(np.float32), item["frame"], settings)
    return mask, time.perf_counter() - t


def sweep(args: argparse.Namespace) -> int:
    """Every setting of ``GRID`` (or ``--settings``) on the stored frames: mIoU gain and ms per mask."""
    import cv2

    cv2.setNumThreads(1)
    out: dict[str, Any] = {}
    for name in [s for s in args.sets.split(",") if s]:
        path = dump_path(name, args.half)
        with path.open("rb") as fh:
            items = pickle.load(fh)
        base = np.array([P.iou(it["mask"], it["gt"], it["void"]) for it in items])
        if args.settings:
            grid = [BoundarySettings(**json.loads(s)) for s in args.settings]
        else:
            keys = list(GRID)
            grid = [
                BoundarySettings(**dict(zip(keys, vals, strict=True))) for vals in itertools.product(*GRID.values())
            ]
        rows = []
        for st in grid:
            ious, secs = [], []
            for it in items:
                m, dt = apply(it, st)
                ious.append(P.iou(m, it["gt"], it["void"]))
                secs.append(dt)
            v = np.array(ious)
            row = {
                "settings": st.__dict__,
                "miou": round(100 * float(v.mean()), 2),
                "gain": round(100 * float((v - base).mean()), 2),
                "better": int((v > base + 1e-4).sum()),
                "worse": int((v < base - 1e-4).sum()),
                "ms_p50": round(1000 * float(np.median(secs)), 1),
                "ms_p90": round(1000 * float(np.quantile(secs, 0.9)), 1),
            }
            rows.append(row)
            print(
                f"{name} {args.half or ''} {st.__dict__}: mIoU {row['miou']} (gain {row['gain']:+.2f}, "
                f"{row['better']} better / {row['worse']} worse), {row['ms_p50']} / {row['ms_p90']} ms"
            )
        key = f"{name}{'_' + args.half if args.half and name == 'davis345' else ''}"
        out[key] = {"n": len(items), "miou_unrefined": round(100 * float(base.mean()), 2), "rows": rows}
    if args.out:
        payload = json.loads(args.out.read_text()) if args.out.exists() else {}
        payload.update(out)
        payload["load_average"] = os.getloadavg()[0]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.out}")
    return 0


def full_frame(mask: np.ndarray, logits: np.ndarray, image: np.ndarray, s: BoundarySettings) -> np.ndarray:
    """The refinement computed the plain way: the guided filter over the whole frame (the reference)."""
    band = boundary_band(mask, s.band)
    p = 1.0 / (1.0 + np.exp(-np.clip(logits / max(s.temperature, 1e-6), -30.0, 30.0)))
    p = np.where((logits > 0) == mask, p, mask.astype(np.float32))
    q = guided_filter(np.asarray(image[..., :3], np.float32) * (1.0 / 255.0), p, s.radius, s.eps)
    out = mask.copy()
    out[band] = q[band] > 0.5
    return out


def cost(args: argparse.Namespace) -> int:
    """``refine_boundary`` (the default setting) against the full-frame filter on the stored frames: masks
    identical?, and ms per mask (best of 3, one thread), full frames and zoomed crops apart."""
    import cv2

    cv2.setNumThreads(1)
    st = BoundarySettings()
    out: dict[str, Any] = {}
    for name in [s for s in args.sets.split(",") if s]:
        with dump_path(name, args.half).open("rb") as fh:
            items = pickle.load(fh)[args.start :: args.every]
        rows: dict[str, dict[str, list[float]]] = {}
        differing = 0
        for it in items:
            x0, y0, x1, y1 = it["crop"]
            mask = it["mask"][y0:y1, x0:x1]
            logits = it["logits"].astype(np.float32)
            kind = "full" if mask.shape == it["mask"].shape else "crop"
            for label, fn in (("fast", refine_boundary), ("full_frame", full_frame)):
                best = float("inf")
                for _ in range(3):
                    t = time.perf_counter()
                    m = fn(mask, logits, it["frame"], st)
                    best = min(best, time.perf_counter() - t)
                rows.setdefault(kind, {}).setdefault(label, []).append(best)
                if label == "fast":
                    fast = m
            differing += int(not np.array_equal(fast, m))
        key = f"{name}{'_' + args.half if args.half and name == 'davis345' else ''}"
        out[key] = {"n": len(items), "masks_differing": differing}
        for kind, by in rows.items():
            for label, secs in by.items():
                v = 1000 * np.array(secs)
                out[key][f"{kind}_{label}"] = {
                    "n": len(v),
                    "ms_p50": round(float(np.median(v)), 1),
                    "ms_p90": round(float(np.quantile(v, 0.9)), 1),
                }
                print(
                    f"{key} {kind:4s} {label:10s} n={len(v):3d}  p50 {np.median(v):5.1f} ms  p90 {np.quantile(v, 0.9):5.1f} ms"
                )
        print(f"{key}: {differing} of {len(items)} masks differ from the full-frame filter")
    out["load_average"] = os.getloadavg()
    print(f"load average {out['load_average']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "step",
        nargs="?",
        choices=("dump", "sweep", "all", "cost"),
        default="all",
        help="all: dump if missing, sweep; cost: fast path vs full-frame filter (same masks?, ms per mask)",
    )
    ap.add_argument("--sets", default="davis345")
    ap.add_argument("--half", choices=("A", "B"), default=None)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--recipe", nargs="*", default=[])
    ap.add_argument("--weights", type=Path, default=os.environ.get("GT_WIDGET_WEIGHTS"))
    ap.add_argument("--settings", nargs="*", default=None, help="JSON settings, e.g. '{\"radius\": 4}'")
    ap.add_argument("--out", type=Path, default=None, help="default results/boundary.json (cost: boundary_cost.json)")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / ("boundary_cost.json" if args.step == "cost" else "boundary.json")
    if args.step == "cost":
        return cost(args)
    if args.step == "dump":
        return dump(args)
    if args.step == "all" and not all(dump_path(n, args.half).exists() for n in args.sets.split(",") if n):
        dump(args)
    return sweep(args)


if __name__ == "__main__":
    sys.exit(main())
