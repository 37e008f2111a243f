"""Format round trips on DAVIS-345's 549 instance masks (``../shared/data/davis345/instances``).

- masks -> COCO RLE (ours, list and compressed string) -> masks: must be exact; counted.
- masks -> YOLO polygon -> masks: cannot be exact (one polygon per object joins holes and parts with 1-px
  bridges, see ``gt_widget/formats/polygons.py``); IoU measured with two readers: Ultralytics' int32 +
  ``fillPoly`` rule at native resolution (what ``import_yolo`` does), and the same after Ultralytics'
  training-time resampling to 1000 points per polygon.

Nothing here is tuned (no simplification tolerance exists), so figures are reported on both halves of the
instance list (even / odd rows) and on all of it. Writes ``benchmarks/results/formats.json``.

    python -m benchmarks.bench_formats [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.protocol import load_instances
from gt_widget.formats.job import rle_decode, rle_encode, rle_to_string
from gt_widget.formats.polygons import mask_rings, mask_to_polygon, polygon_to_mask

RESULTS = Path(__file__).resolve().parent / "results" / "formats.json"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _summary(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    return {
        "mean_iou": round(float(v.mean()) * 100, 3),
        "median_iou": round(float(np.median(v)) * 100, 3),
        "min_iou": round(float(v.min()) * 100, 3),
        "share_at_least_99": round(float((v >= 0.99).mean()) * 100, 2),
        "n": len(v),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="every 10th instance only")
    args = ap.parse_args(argv)
    samples = load_instances("davis345")
    if args.quick:
        samples = samples[::10]
    load0 = os.getloadavg()[0]
    started = time.perf_counter()
    rows = []
    rle_exact = 0
    for n, s in enumerate(samples):
        mask = np.asarray(Image.open(s.mask_path).convert("L")) > 127
        rle = rle_encode(mask)
        compressed = {"size": rle["size"], "counts": rle_to_string(rle["counts"])}
        rle_exact += int(np.array_equal(rle_decode(rle), mask) and np.array_equal(rle_decode(compressed), mask))
        t0 = time.perf_counter()
        coords = mask_to_polygon(mask)
        t_write = time.perf_counter() - t0
        back = polygon_to_mask(coords, mask.shape)
        resampled = polygon_to_mask(coords, mask.shape, resample=1000)
        rings = mask_rings(mask)
        rows.append(
            {
                "id": s.id,
                "half": "even" if n % 2 == 0 else "odd",
                "iou": _iou(back, mask),
                "iou_resampled": _iou(resampled, mask),
                "lost_px": int((mask & ~back).sum()),
                "added_px": int((back & ~mask).sum()),
                "rings": len(rings),
                "vertices": len(coords) // 2,
                "ms_write": t_write * 1000,
            }
        )
    elapsed = time.perf_counter() - started
    result: dict[str, object] = {
        "data": "DAVIS-345 instances (../shared/data/davis345/instances.csv)",
        "instances": len(rows),
        "coco_rle_exact": rle_exact,
        "yolo": {
            half: {
                "native": _summary([r["iou"] for r in rows if half == "all" or r["half"] == half]),
                "ultralytics_1000_points": _summary(
                    [r["iou_resampled"] for r in rows if half == "all" or r["half"] == half]
                ),
            }
            for half in ("even", "odd", "all")
        },
        "objects_with_holes_or_parts": sum(r["rings"] > 1 for r in rows),
        "pixels_lost_total": sum(r["lost_px"] for r in rows),
        "pixels_added_total": sum(r["added_px"] for r in rows),
        "vertices_median": float(np.median([r["vertices"] for r in rows])),
        "ms_per_mask_to_polygon_median": round(float(np.median([r["ms_write"] for r in rows])), 2),
        "seconds": round(elapsed, 1),
        "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "quick": bool(args.quick),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    yolo = result["yolo"]
    assert isinstance(yolo, dict)
    print(f"DAVIS-345 instances: {len(rows)}; COCO RLE exact: {rle_exact}/{len(rows)}")
    print("| half | YOLO mIoU native | median | min | >=99% | YOLO mIoU, Ultralytics 1000-pt resample |")
    print("|---|---|---|---|---|---|")
    for half in ("even", "odd", "all"):
        a, b = yolo[half]["native"], yolo[half]["ultralytics_1000_points"]
        print(
            f"| {half} | {a['mean_iou']:.2f} | {a['median_iou']:.2f} | {a['min_iou']:.2f} | "
            f"{a['share_at_least_99']:.1f}% | {b['mean_iou']:.2f} |"
        )
    print(
        f"objects with holes/parts: {result['objects_with_holes_or_parts']}; pixels lost {result['pixels_lost_total']}, "
        f"added (bridges) {result['pixels_added_total']}; load average {load0:.2f}; {elapsed:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
