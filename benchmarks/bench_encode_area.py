"""Encode only the image's own area (``encode_area``) vs the full padded square: CPU-s and box mIoU.

Per DAVIS-345 frame (every ``--every``-th of each protocol half): one encode per mode on one torch
thread (``time.process_time``), then the fast recipe (``zoom="off"``) with the GT bounding box as the
prompt; IoU of the first mask with the GT (void ignored). Decide on half A, report half B::

    nice -n 19 python -m benchmarks.bench_encode_area [--every 3]

Writes ``benchmarks/results/encode_area.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import protocol as P

MODES = ("full", "real", "real-zeros")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=3, help="every N-th frame of each half")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from gt_widget.segment.mobilesam import load_mobilesam
    from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

    model = load_mobilesam(os.environ["GT_WIDGET_WEIGHTS"])
    segs = {m: MobileSamSegmenter(model, zoom="off", threads=1, encode_area=m) for m in MODES}
    samples = P.load_set("davis345")
    warm = samples[0].load()[0]
    for seg in segs.values():  # the blank embedding and first-call allocations stay out of the timings
        seg.predict_on(seg.prepare(warm, background=False, cache=False), box=[10, 10, 200, 200])
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for half in ("A", "B"):
        chosen = P.select_half(samples, half)[:: args.every]
        res: dict[str, dict[str, list[float]]] = {m: {"cpu_s": [], "iou": []} for m in MODES}
        for s in chosen:
            image, gt, void = s.load()
            ys, xs = np.nonzero(gt)
            box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
            for m, seg in segs.items():
                t0 = time.process_time()
                st = seg.prepare(image, background=False, cache=False)
                res[m]["cpu_s"].append(time.process_time() - t0)
                pred = seg.predict_on(st, box=box)
                res[m]["iou"].append(P.iou(pred.mask, gt, void))
        out[half] = res
        print(f"half {half}: {len(chosen)} frames (every {args.every}-th), load {os.getloadavg()[0]:.1f}")
        for m in MODES:
            print(
                f"  {m:11s} encode {np.mean(res[m]['cpu_s']):.3f} CPU-s (median {np.median(res[m]['cpu_s']):.3f})"
                f"  box mIoU {100 * np.mean(res[m]['iou']):.2f}",
                flush=True,
            )
    path = Path(__file__).parent / "results" / "encode_area.json"
    path.write_text(json.dumps({"every": args.every, "precision": segs["full"].precision, "halves": out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
