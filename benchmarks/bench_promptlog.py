"""The prompt log's cost per edit: JSON bytes and recording time of a model edit and of a stroke.

Model edits are recorded with real MobileSAM masks of DAVIS-345 frames (854x480: 4 extreme points, then
corrective clicks refining them); strokes are brush polylines of 20 points. Recording time includes the
mask fingerprint (sha256 of the packed mask), the only per-edit work that grows with the image.

    python -m benchmarks.bench_promptlog
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks import protocol as P
from benchmarks.bench_quality import CACHE, DiskCachedSegmenter, load_mobilesam_segmenter

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    from gt_widget.promptlog import PromptLog

    seg = load_mobilesam_segmenter(Path(os.environ["GT_WIDGET_WEIGHTS"]) if "GT_WIDGET_WEIGHTS" in os.environ else None)
    DiskCachedSegmenter(seg, CACHE / "davis345")
    samples = P.load_set("davis345")[::69][:5]
    model_bytes: list[int] = []
    model_us: list[float] = []
    stroke_bytes: list[int] = []
    stroke_us: list[float] = []
    load0 = os.getloadavg()[0]
    for s, image, gt, _void in P.iter_loaded(samples):
        seg.set_image(image)
        log = PromptLog(image.shape[1], image.shape[0], ["object"], source_ref=str(s.image_path))
        pts = P.extreme_points(gt)
        pred = seg.predict(extreme_points=pts)
        clicks: list[tuple[float, float, bool]] = []
        refines = None
        for _ in range(3):
            size = len(log.to_json())
            t = time.perf_counter()
            refines = log.record_model_edit(
                seg, pred.mask, value=1, label="object", extreme_points=pts, clicks=clicks, refines=refines
            )
            model_us.append(1e6 * (time.perf_counter() - t))
            model_bytes.append(len(log.to_json()) - size)
            click = P.next_click(pred.mask, gt, np.zeros_like(gt))
            if click is None:
                break
            clicks.append(click)
            pred = seg.predict(extreme_points=pts, clicks=clicks, previous=pred)
        rng = np.random.default_rng(0)
        for _ in range(5):
            line = np.cumsum(rng.uniform(-4, 4, (20, 2)), axis=0) + np.array([400.0, 240.0])
            size = len(log.to_json())
            t = time.perf_counter()
            log.record_stroke("brush", line.tolist(), value=1, label="object", radius=6.0)
            stroke_us.append(1e6 * (time.perf_counter() - t))
            stroke_bytes.append(len(log.to_json()) - size)
    out = {
        "model_edit_bytes_mean": round(float(np.mean(model_bytes)), 1),
        "model_edit_record_us_p50": round(float(np.median(model_us)), 1),
        "stroke_20pt_bytes_mean": round(float(np.mean(stroke_bytes)), 1),
        "stroke_record_us_p50": round(float(np.median(stroke_us)), 1),
        "model_edits": len(model_bytes),
        "strokes": len(stroke_bytes),
        "image": "DAVIS-345 854x480",
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }
    for k, v in out.items():
        print(f"{k:<28} {v}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "promptlog.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULTS / 'promptlog.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
