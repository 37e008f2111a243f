"""Quality benchmark: extreme points -> mask on GrabCut-50 and DAVIS-345 (protocol: benchmarks/protocol.py).

Reports per set: mIoU from exact and from jittered extreme points, NoC@85 / NoC@90, % of objects never
reaching 90, the oracle (best candidate) mIoU, the mIoU of the lowest-area quartile, and the GrabCut
fallback's mIoU; prints a table and writes benchmarks/results/quality.json.

Image embeddings (and zoom-crop embeddings) are cached on disk under $GTW_EMB_CACHE (default
/tmp/gtw_emb/<set>/) so recipe experiments do not re-run the encoder; the cache is keyed by the image's
content hash, so a stale entry is never used for another image.

    python -m benchmarks.bench_quality                       # both sets, the default recipe
    python -m benchmarks.bench_quality --sets grabcut --limit 20 --recipe zoom=small --no-grabcut
    python -m benchmarks.bench_quality --precompute          # only fill the embedding cache
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import protocol as P
from gt_widget.segment.named import parse_flags

CONFIG_KEYS = (
    "precision",
    "decoder_precision",
    "zoom_size",
    "zoom_area",
    "zoom_scale",
    "smooth_logits",
    "variants",
    "full_variants",
    "select",
    "zoom",
    "zoom_below",
    "zoom_context",
    "box_weight",
    "near_weight",
    "inward_weight",
    "remove_blobs",
    "fill_holes",
    "refine",
    "refine_box",
)
RESULTS = Path(__file__).resolve().parent / "results"
CACHE = Path(os.environ.get("GTW_EMB_CACHE", "/tmp/gtw_emb"))
# Upstream (segment-anything's recipe with MobileSAM, OpenCV GrabCut from the box) on the same sets.
UPSTREAM = {
    "grabcut": {"miou": 97.1, "miou_jitter": 95.7, "noc85": 4.06, "noc90": 4.08, "oracle": 97.4, "grabcut": 86.9},
    "davis345": {
        "miou": 85.9,
        "miou_jitter": 85.5,
        "noc85": 6.50,
        "noc90": 7.38,
        "never90_pct": 18.0,
        "oracle": 87.2,
        "grabcut": 67.8,
    },
}


class DiskCachedSegmenter:
    """Wraps a ``MobileSamSegmenter`` so that every encoder run (full image or crop) is cached on disk."""

    def __init__(self, seg: Any, folder: Path) -> None:
        import torch

        self.seg = seg
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder_runs = 0
        original = seg._encode

        def encode(rgb: np.ndarray, key: str, image_size: int = 1024, encode_area: str | None = None) -> Any:
            from gt_widget.segment.mobilesam_segmenter import SamImageState, _image_key

            area = seg.encode_area if encode_area is None else encode_area
            variant = "" if (image_size, seg.precision) == (1024, "fp32") else f"_{image_size}_{seg.precision}"
            variant += "" if area == "full" else f"_{area}"
            path = folder / f"{_image_key(rgb)}{variant}.pt"
            if path.exists():
                d = torch.load(path, weights_only=True)
                return SamImageState(
                    rgb,
                    d["embedding"],
                    tuple(d["original_size"]),
                    tuple(d["input_size"]),
                    key,
                    image_size=image_size,
                )
            state = original(rgb, key, image_size, encode_area)
            self.encoder_runs += 1
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # runs sharing the cache never clobber each other
            torch.save(
                {
                    "embedding": state.embedding,
                    "original_size": list(state.original_size),
                    "input_size": list(state.input_size),
                },
                tmp,
            )
            tmp.replace(path)
            return state

        seg._encode = encode


def load_mobilesam_segmenter(weights: Path | None, **flags: Any) -> Any:
    """The segmenter under test (through the public API)."""
    from gt_widget.segment import load_segmenter

    kwargs: dict[str, Any] = dict(flags)
    if weights is not None:
        kwargs["weights"] = weights
    return load_segmenter("mobilesam", **kwargs)


def parse_recipe(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` flags for the segmenter: the package's one rule (``gt_widget.segment.named.parse_flags``)."""
    return parse_flags(items)


def evaluate_set(
    seg: Any,
    samples: list[P.Sample],
    *,
    clicks: bool = True,
    jitter: bool = True,
    grabcut: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the protocol on ``samples``; per-object rows and the summary."""
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for i, (s, image, gt, void) in enumerate(P.iter_loaded(samples)):
        row: dict[str, Any] = {"id": s.id, "area": float(gt.mean())}
        seg.set_image(image)
        pts = P.extreme_points(gt)
        t = time.perf_counter()
        pred = seg.predict(extreme_points=pts)
        row["predict_s"] = time.perf_counter() - t
        row["iou"] = P.iou(pred.mask, gt, void)
        cand_ious = [P.iou(c.mask, gt, void) for c in pred.candidates]
        row["oracle"] = max(cand_ious)
        # per candidate (best first): IoU and score, for the doubt-cue calibration (bench_doubt.py)
        row["cand_ious"] = [round(v, 4) for v in cand_ious]
        row["cand_scores"] = [round(float(c.score), 4) for c in pred.candidates]
        row["cand_overlap"] = [round(P.iou(c.mask, pred.mask), 4) for c in pred.candidates]  # with the chosen
        if jitter:
            pj = P.jitter(pts, gt.shape, P.sample_seed(s.set_name, s.id))
            row["iou_jitter"] = P.iou(seg.predict(extreme_points=pj).mask, gt, void)
        if clicks:

            def step(cl: list[tuple[float, float, bool]], prev: Any, pts: np.ndarray = pts) -> tuple[np.ndarray, Any]:
                p = seg.predict(extreme_points=pts, clicks=cl, previous=prev)
                return p.mask, p

            trace = P.click_trace(step, pred.mask, pred, gt, void)
            row["trace"] = [round(v, 4) for v in trace.ious]
            row["noc85"] = trace.noc(0.85)
            row["noc90"] = trace.noc(0.90)
            row["worse_clicks"] = sum(1 for a, b in zip(trace.ious, trace.ious[1:], strict=False) if b < a - 0.05)
            row["clicks_made"] = len(trace.ious) - 1
        if grabcut is not None:
            grabcut.set_image(image)
            row["grabcut"] = P.iou(grabcut.predict(extreme_points=pts).mask, gt, void)
        rows.append(row)
        if progress:
            el = time.time() - t0
            print(
                f"\r  {s.set_name} {i + 1}/{len(samples)} iou={row['iou']:.3f} ({el:.0f}s)",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if progress:
        print(file=sys.stderr)
    return {"summary": summarize(rows), "rows": rows}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures (percentages, clicks) of per-object ``rows``."""

    def mean(key: str, subset: list[dict[str, Any]] | None = None) -> float | None:
        vals = [r[key] for r in (subset if subset is not None else rows) if key in r]
        return float(np.mean(vals)) if vals else None

    out: dict[str, Any] = {"n": len(rows)}
    for key in ("iou", "iou_jitter", "oracle", "grabcut"):
        m = mean(key)
        if m is not None:
            out[{"iou": "miou", "iou_jitter": "miou_jitter"}.get(key, key)] = round(100 * m, 2)
    if any("noc90" in r for r in rows):
        out["noc85"] = round(mean("noc85") or 0.0, 2)
        out["noc90"] = round(mean("noc90") or 0.0, 2)
        out["never90_pct"] = round(100 * sum(r["noc90"] >= P.MAX_CLICKS for r in rows) / len(rows), 1)
        made = sum(r["clicks_made"] for r in rows)
        out["worse_click_pct"] = round(100 * sum(r["worse_clicks"] for r in rows) / max(made, 1), 1)
    areas = np.array([r["area"] for r in rows])
    q = areas <= np.quantile(areas, 0.25)
    low = [r for r, keep in zip(rows, q, strict=True) if keep]
    m = mean("iou", low)
    if m is not None:
        out["miou_small_quartile"] = round(100 * m, 2)
    small = [r for r in rows if r["area"] < 0.01]
    if small:
        out["miou_under_1pct"] = round(100 * (mean("iou", small) or 0.0), 2)
        out["n_under_1pct"] = len(small)
    out["predict_ms_p50"] = round(1000 * float(np.median([r["predict_s"] for r in rows])), 1)
    return out


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """One row per set and figure: ours vs upstream."""
    keys = [
        ("miou", "mIoU exact"),
        ("miou_jitter", "mIoU jittered ±5px"),
        ("noc85", "NoC@85"),
        ("noc90", "NoC@90"),
        ("never90_pct", "% never reaching 90"),
        ("oracle", "oracle best candidate"),
        ("miou_small_quartile", "mIoU lowest-area quartile"),
        ("miou_under_1pct", "mIoU objects < 1% of image"),
        ("worse_click_pct", "% clicks worsening IoU > 5 pts"),
        ("grabcut", "GrabCut fallback mIoU"),
        ("predict_ms_p50", "first predict p50 (ms)"),
    ]
    print(f"{'set':<10} {'figure':<32} {'ours':>8} {'upstream':>9}")
    for name, res in results.items():
        s = res["summary"]
        for key, label in keys:
            if key in s:
                up = UPSTREAM.get(name, {}).get(key)
                print(f"{name:<10} {label:<32} {s[key]:>8} {up if up is not None else '':>9}")


def fallback_only(args: argparse.Namespace) -> int:
    """GrabCut fallback mIoU (exact, jittered) per set, written into the sets' summaries in ``--out``."""
    from gt_widget.segment import load_segmenter

    seg = load_segmenter("grabcut")
    target = args.out
    payload = json.loads(target.read_text()) if target.exists() else {"sets": {}}
    for name in [s for s in args.sets.split(",") if s]:
        exact, jit = [], []
        for s, image, gt, void in P.iter_loaded(P.load_set(name, args.limit)[args.start :: args.every]):
            seg.set_image(image)
            pts = P.extreme_points(gt)
            exact.append(P.iou(seg.predict(extreme_points=pts).mask, gt, void))
            pj = P.jitter(pts, gt.shape, P.sample_seed(s.set_name, s.id))
            jit.append(P.iou(seg.predict(extreme_points=pj).mask, gt, void))
        summary = payload.setdefault("sets", {}).setdefault(name, {"summary": {}})["summary"]
        summary["grabcut"] = round(100 * float(np.mean(exact)), 2)
        summary["grabcut_jitter"] = round(100 * float(np.mean(jit)), 2)
        summary["grabcut_n"] = len(exact)
        print(f"{name}: GrabCut fallback mIoU {summary['grabcut']} exact, {summary['grabcut_jitter']} jittered")
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(target)
    return 0


def small_instances(args: argparse.Namespace, flags: dict[str, Any]) -> int:
    """DAVIS-345 objects under 1% of the frame, one by one: the default recipe vs zoom off vs upstream's."""
    samples = P.load_instances("davis345", max_area=0.01)[args.start :: args.every]
    recipes = {
        "default": dict(flags),
        "zoom_off": dict(flags, zoom="off"),
        "upstream": {
            "zoom": "off",
            "variants": ("box+points",),
            "full_variants": ("box+points",),
            "select": "iou",
            "boundary": "off",
        },
    }
    out: dict[str, Any] = {"n": len(samples), "max_area": 0.01}
    for label, recipe in recipes.items():
        seg = load_mobilesam_segmenter(args.weights, **recipe)
        DiskCachedSegmenter(seg, CACHE / "davis345")
        res = evaluate_set(seg, samples, clicks=False, jitter=not args.no_jitter)
        out[label] = res["summary"]
        print(f"small instances ({len(samples)}), {label}: {res['summary']}")
    target = args.out
    payload = json.loads(target.read_text()) if target.exists() else {}
    payload["davis345_small_instances"] = out
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(target)
    print(f"wrote {target}")
    return 0


def merge(parts: Sequence[Path], out: Path) -> int:
    """Combine shard JSONs (same recipe, disjoint objects) into one result with recomputed summaries."""
    loaded = [json.loads(p.read_text()) for p in parts]
    recipes = {json.dumps(x["recipe"], sort_keys=True) for x in loaded}
    if len(recipes) != 1:
        print(f"shards used different recipes: {sorted(recipes)}", file=sys.stderr)
        return 2
    sets: dict[str, dict[str, Any]] = {}
    for part in loaded:
        for name, res in part["sets"].items():
            entry = sets.setdefault(name, {"rows": [], "seconds": 0.0})
            entry["rows"] += res["rows"]
            entry["seconds"] += res["summary"].get("seconds", 0.0)
    results = {}
    for name, entry in sets.items():
        order = {s.id: i for i, s in enumerate(P.load_set(name))}
        rows = sorted(entry["rows"], key=lambda r: order.get(r["id"], 0))
        summary = summarize(rows)
        summary["seconds"] = round(entry["seconds"], 1)
        results[name] = {"summary": summary, "rows": rows}
    print_table(results)
    payload = dict(loaded[0], sets=results)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="grabcut,davis345")
    ap.add_argument("--limit", type=int, default=None, help="first N objects of each set (quick runs)")
    ap.add_argument("--every", type=int, default=1, help="every k-th object (quick, spread-out subsets)")
    ap.add_argument("--start", type=int, default=0, help="first object index (with --every)")
    ap.add_argument("--half", choices=("A", "B"), default=None, help="only this half of DAVIS-345 (protocol.py)")
    ap.add_argument("--recipe", nargs="*", default=[], help="segmenter flags, e.g. zoom=small select=iou")
    ap.add_argument("--no-clicks", action="store_true")
    ap.add_argument("--no-jitter", action="store_true")
    ap.add_argument("--no-grabcut", action="store_true")
    ap.add_argument("--precompute", action="store_true", help="only fill the embedding cache")
    ap.add_argument("--weights", type=Path, default=os.environ.get("GT_WIDGET_WEIGHTS"))
    # 1 thread: on a shared 2-core machine, 2 torch threads made the decoder 7x slower (oversubscription)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    ap.add_argument(
        "--small-instances",
        action="store_true",
        help="only DAVIS instances under 1%% of the frame (instances.csv), zoom on vs off; adds them to --out",
    )
    ap.add_argument(
        "--fallback-only",
        action="store_true",
        help="only the GrabCut fallback (exact and jittered points); updates its figures in --out",
    )
    ap.add_argument(
        "--bf16-sim",
        action="store_true",
        help="simulate decoder_precision=bf16 at fp32 speed (benchmarks/bf16_sim.py; CPUs without native bf16)",
    )
    ap.add_argument("--merge", nargs="+", type=Path, default=None, help="merge partial JSONs (--start/--every shards)")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)

    import torch

    torch.set_num_threads(args.threads)
    if args.bf16_sim:
        from benchmarks import bf16_sim

        bf16_sim.install()
    flags = parse_recipe(args.recipe)
    flags.setdefault("threads", args.threads)
    seg = load_mobilesam_segmenter(args.weights, **flags)
    if args.fallback_only:
        return fallback_only(args)
    if args.small_instances:
        return small_instances(args, flags)
    results: dict[str, dict[str, Any]] = {}
    for name in [s for s in args.sets.split(",") if s]:
        samples = P.select_half(P.load_set(name, args.limit), args.half)[args.start :: args.every]
        cached = DiskCachedSegmenter(seg, CACHE / name)
        if args.precompute:
            for i, (_s, image, _gt, _void) in enumerate(P.iter_loaded(samples)):
                seg.set_image(image)
                print(f"\r  {name} {i + 1}/{len(samples)}", end="", file=sys.stderr, flush=True)
            print(f"\n{name}: {cached.encoder_runs} new embeddings", file=sys.stderr)
            continue
        grabcut = None
        if not args.no_grabcut:
            from gt_widget.segment import load_segmenter

            grabcut = load_segmenter("grabcut")
        t = time.time()
        res = evaluate_set(seg, samples, clicks=not args.no_clicks, jitter=not args.no_jitter, grabcut=grabcut)
        res["summary"]["seconds"] = round(time.time() - t, 1)
        res["summary"]["new_encoder_runs"] = cached.encoder_runs
        results[name] = res
    if args.precompute:
        return 0
    print_table(results)
    config = {k: getattr(seg, k) for k in CONFIG_KEYS if hasattr(seg, k)}
    payload = {
        "recipe": flags,
        "segmenter_config": config,
        "bf16_sim": bool(args.bf16_sim),
        "shard": {"start": args.start, "every": args.every, "limit": args.limit, "half": args.half},
        "protocol": "benchmarks/protocol.py (../shared/data/README.md)",
        "upstream": UPSTREAM,
        "sets": {k: {"summary": v["summary"], "rows": v["rows"]} for k, v in results.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
