"""Object proposals on DAVIS-345 instances: recall of ground-truth objects, proposals per image, seconds.

For every frame: encode once (embeddings cached on disk like bench_quality), then time
``gt_widget.segment.proposals.propose`` alone (the widget computes proposals after the embedding is ready).
A ground-truth object (``instances.csv``, 549 in all) is *recalled* at t when some proposal has IoU >= t
with it (protocol IoU, no void). Halves are the protocol's fixed DAVIS-345 halves A / B
(``benchmarks/protocol.py``; ``--half all`` for every frame).

Times: wall seconds and process CPU seconds per image, the embedding excluded (it exists already when
proposals start). On the shared 2-core machine the wall time depends on what else runs (the load average
is recorded); with ``--threads 1`` the CPU seconds are the work itself, and CPU-s / 2 is what an idle 2-core
machine would take with perfect scaling over 2 threads. The JSON is rewritten after every frame
(``"complete": false`` until the last), so a long run stopped early keeps what it measured.

    python -m benchmarks.bench_proposals --half B --every 4            # a spread-out quick subset
    python -m benchmarks.bench_proposals --half B --set pred_iou_thresh=0.88 stability_thresh=0.95
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks import protocol as P
from benchmarks.bench_quality import CACHE, DiskCachedSegmenter, load_mobilesam_segmenter

RESULTS = Path(__file__).resolve().parent / "results"


def frames(half: str) -> list[tuple[str, Path, list[Path]]]:
    """(frame id, image, instance mask paths) of DAVIS-345 frames of ``half`` ("A", "B" or "all")."""
    root = P.DATA / "davis345"
    by_frame: dict[str, tuple[Path, list[Path]]] = {}
    with (root / "instances.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            by_frame.setdefault(r["frame"], (root / r["image"], []))[1].append(root / r["mask"])
    out = []
    for fid in sorted(by_frame):
        if half == "all" or P.davis_half(fid) == half:
            out.append((fid, *by_frame[fid]))
    return out


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` overrides of ``ProposalSettings``."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        out[key] = float(raw) if "." in raw else int(raw)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half", choices=["A", "B", "all"], default="B")
    ap.add_argument("--every", type=int, default=1, help="every k-th frame of the half (quick subsets)")
    ap.add_argument("--start", type=int, default=0, help="first frame of the half (with --every: shards)")
    ap.add_argument("--merge", nargs="+", type=Path, default=None, help="merge shard JSONs into --out")
    ap.add_argument("--points-per-side", type=int, default=16)
    ap.add_argument("--set", nargs="*", default=[], help="ProposalSettings overrides, e.g. nms_iou=0.8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=os.environ.get("GT_WIDGET_WEIGHTS"))
    ap.add_argument("--out", type=Path, default=RESULTS / "proposals.json")
    args = ap.parse_args(argv)
    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        merged = [r for part in parts for r in part["rows"]]
        loads = [x for part in parts for x in part["summary"]["load_average_start_end"]]
        done = all(part.get("complete", True) for part in parts)
        args.shards = [{k: part.get(k) for k in ("half", "every", "start", "complete")} for part in parts]
        return _write(
            args, parts[0]["settings"], merged, [min(loads), max(loads)], parts[0]["summary"]["threads"], done
        )

    import torch

    from gt_widget.imageio import load_image
    from gt_widget.segment.proposals import ProposalSettings, propose

    torch.set_num_threads(args.threads)
    settings = replace(ProposalSettings(), points_per_side=args.points_per_side, **parse_settings(args.set))
    seg = load_mobilesam_segmenter(args.weights)
    DiskCachedSegmenter(seg, CACHE / "davis345")
    todo = frames(args.half)[args.start :: args.every]
    rows: list[dict[str, Any]] = []
    load0 = os.getloadavg()
    for i, (fid, image_path, mask_paths) in enumerate(todo):
        seg.set_image(load_image(image_path))
        t, c = time.perf_counter(), time.process_time()
        found = propose(seg, args.points_per_side, settings=settings)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        best = []
        for mp in mask_paths:
            gt = np.asarray(Image.open(mp).convert("L")) > 127
            best.append(max((P.iou(p.mask, gt) for p in found), default=0.0))
        rows.append({"frame": fid, "n": len(found), "wall_s": wall, "cpu_s": cpu, "best_iou": best})
        print(
            f"\r  {i + 1}/{len(todo)} {fid}: {len(found)} proposals, best {[round(b, 2) for b in best]}, {wall:.1f}s",
            end="",
            file=sys.stderr,
            flush=True,
        )
        load = [round(load0[0], 2), round(os.getloadavg()[0], 2)]
        if i + 1 < len(todo):
            _write(args, asdict(settings), rows, load, args.threads, False, quiet=True)
    print(file=sys.stderr)
    return _write(args, asdict(settings), rows, [round(load0[0], 2), round(os.getloadavg()[0], 2)], args.threads)


def _write(
    args: argparse.Namespace,
    settings: dict[str, Any],
    rows: list[dict[str, Any]],
    load: list[float],
    threads: int,
    complete: bool = True,
    *,
    quiet: bool = False,
) -> int:
    """Summarise per-frame ``rows``, print the table (unless ``quiet``) and write ``args.out``."""
    ious = np.array([b for r in rows for b in r["best_iou"]])
    summary = {
        "frames": len(rows),
        "objects": int(ious.size),
        "recall_75": round(100 * float(np.mean(ious >= 0.75)), 1),
        "recall_90": round(100 * float(np.mean(ious >= 0.90)), 1),
        "mean_best_iou": round(100 * float(np.mean(ious)), 1),
        "proposals_per_image": round(float(np.mean([r["n"] for r in rows])), 1),
        "wall_s_p50": round(float(np.median([r["wall_s"] for r in rows])), 2),
        "cpu_s_p50": round(float(np.median([r["cpu_s"] for r in rows])), 2),
        "idle_2core_s_estimate": round(float(np.median([r["cpu_s"] for r in rows])) / 2, 2),
        "threads": threads,
        "load_average_start_end": load,
    }
    if not quiet:
        print(f"{'figure':<28} value")
        for k, v in summary.items():
            print(f"{k:<28} {v}")
    payload = {
        "half": args.half,
        "every": args.every,
        "start": args.start,
        "complete": complete,
        "shards": getattr(args, "shards", None),
        "settings": settings,
        "protocol": "DAVIS-345 instances.csv; recalled at t when some proposal has IoU >= t (benchmarks/protocol.py)",
        "summary": summary,
        "frame_ids": [r["frame"] for r in rows],
        "rows": [dict(r, best_iou=[round(b, 4) for b in r["best_iou"]]) for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(args.out)
    if not quiet:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
