"""The prompt log's cost per edit: JSON bytes and recording time of a model edit and of a stroke.

Model edits are recorded with real MobileSAM masks of DAVIS-345 frames (854x480: 4 extreme points, then
corrective clicks refining them); strokes are brush polylines of 20 points; accept-all passes record the
frame's real proposals (8 x 8 grid, every proposal scoring >= 0.9) in instance mode, so each also carries
the instances it created; clear / relabel / delete are the instance-mode events without pixels. Recording
time includes the mask fingerprints (sha256 of the packed mask), the only per-edit work that grows with
the image. Proposals (the slow part, not timed) are computed for the first ``--proposal-frames`` frames.
The ``initial`` event (the labels an image started with, a PNG of the map) is measured on the same frames'
real DAVIS object masks (every object of the frame, one value each, semantic and instance mode) and on
those maps scaled to 1920x1080 (nearest neighbour: the same layout at full-HD size); for comparison, the
JSON size of the map as plain run lengths ([value, count] pairs, row-major).

    python -m benchmarks.bench_promptlog
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks import protocol as P
from benchmarks.bench_quality import CACHE, DiskCachedSegmenter, load_mobilesam_segmenter

RESULTS = Path(__file__).resolve().parent / "results"


def _object_map(sample_id: str) -> np.ndarray:
    """uint8 (H, W) map of a DAVIS-345 frame: object k of the frame (instances.csv order) = k."""
    import csv

    from PIL import Image

    root = P.DATA / "davis345"
    with (root / "instances.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["frame"] == sample_id]
    out: np.ndarray | None = None
    for k, r in enumerate(rows, start=1):
        m = np.asarray(Image.open(root / r["mask"])) > 0
        out = np.zeros(m.shape, np.uint8) if out is None else out
        out[m] = k
    assert out is not None, sample_id
    return out


def _initial_cost(maps: Sequence[np.ndarray]) -> dict[str, Any]:
    """Bytes and record time of an ``initial`` event of each map (semantic and instance) at its size and at
    1920x1080, with the run-length JSON size beside it."""
    import cv2

    from gt_widget.promptlog import PromptLog

    sizes: dict[str, list[float]] = {}
    for m0 in maps:
        for size_name, m in (
            ("854x480", m0),
            ("1920x1080", cv2.resize(m0, (1920, 1080), interpolation=cv2.INTER_NEAREST)),
        ):
            n = int(m.max())
            labels = [f"object{k}" for k in range(1, n + 1)]
            instances = [SimpleNamespace(label=lab, color=f"#{k:06x}") for k, lab in enumerate(labels, start=1)]
            for mode in ("semantic", "instance"):
                log = PromptLog(m.shape[1], m.shape[0], labels, mode=mode)  # type: ignore[arg-type]
                size = len(log.to_json())
                t = time.perf_counter()
                log.record_initial(m, instances)
                us = 1e6 * (time.perf_counter() - t)
                sizes.setdefault(f"{mode}_{size_name}_bytes", []).append(len(log.to_json()) - size)
                sizes.setdefault(f"{mode}_{size_name}_record_us", []).append(us)
            flat = m.ravel()
            cuts = np.flatnonzero(np.diff(flat)) + 1
            starts = np.r_[0, cuts]
            runs = np.stack([flat[starts], np.diff(np.r_[starts, flat.size])], 1).tolist()
            sizes.setdefault(f"runs_{size_name}_bytes", []).append(len(json.dumps(runs, separators=(",", ":"))))
    return {
        f"initial_{k}_p50" if k.endswith("_us") else f"initial_{k}_mean": round(
            float(np.median(v) if k.endswith("_us") else np.mean(v)), 1
        )
        for k, v in sizes.items()
    } | {"initial_objects_per_frame": [int(m.max()) for m in maps]}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    import argparse

    from gt_widget.promptlog import PromptLog
    from gt_widget.segment.proposals import ProposalSettings, propose

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proposal-frames", type=int, default=2, help="frames whose proposals are computed (slow)")
    args = ap.parse_args(argv)

    seg = load_mobilesam_segmenter(Path(os.environ["GT_WIDGET_WEIGHTS"]) if "GT_WIDGET_WEIGHTS" in os.environ else None)
    DiskCachedSegmenter(seg, CACHE / "davis345")
    samples = P.load_set("davis345")[::69][:5]
    model_bytes: list[int] = []
    model_us: list[float] = []
    stroke_bytes: list[int] = []
    stroke_us: list[float] = []
    accept_bytes: list[float] = []  # per accepted proposal
    accept_us: list[float] = []  # per accepted proposal
    accepted_n: list[int] = []
    small_bytes: list[int] = []  # clear / relabel / delete
    small_us: list[float] = []
    load0 = os.getloadavg()[0]
    initial = _initial_cost([_object_map(s.id) for s in samples])
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
        if len(accepted_n) < args.proposal_frames:
            grid = ProposalSettings(points_per_side=8)
            chosen = sorted((p for p in propose(seg, 8, settings=grid) if p.score >= 0.9), key=lambda p: -p.area)
            ilog = PromptLog(image.shape[1], image.shape[0], ["object"], mode="instance")
            colors = [f"#{k:06x}" for k in range(1, len(chosen) + 1)]
            born = [{"value": k, "label": "object", "color": c} for k, c in enumerate(colors, start=1)]
            ilog.model_id(seg)  # the model's description is stored once per log, not per edit
            size = len(ilog.to_json())
            t = time.perf_counter()
            ilog.record_proposals(
                seg,
                [p.mask for p in chosen],
                list(range(1, len(chosen) + 1)),
                label="object",
                threshold=0.9,
                points_per_side=8,
                settings=asdict(grid),
                points=[p.point for p in chosen],
                scores=[p.score for p in chosen],
                new_instances=born,
            )
            us = 1e6 * (time.perf_counter() - t)
            n = max(1, len(chosen))
            accepted_n.append(len(chosen))
            accept_us.append(us / n)
            accept_bytes.append((len(ilog.to_json()) - size) / n)
            ops = (partial(ilog.record_relabel, 1, "object"), partial(ilog.record_delete, 1), ilog.record_clear)
            for op in ops:
                size = len(ilog.to_json())
                t = time.perf_counter()
                op()
                small_us.append(1e6 * (time.perf_counter() - t))
                small_bytes.append(len(ilog.to_json()) - size)
    out = {
        "model_edit_bytes_mean": round(float(np.mean(model_bytes)), 1),
        "model_edit_record_us_p50": round(float(np.median(model_us)), 1),
        "stroke_20pt_bytes_mean": round(float(np.mean(stroke_bytes)), 1),
        "stroke_record_us_p50": round(float(np.median(stroke_us)), 1),
        "accept_all_bytes_per_proposal_mean": round(float(np.mean(accept_bytes)), 1) if accept_bytes else None,
        "accept_all_record_us_per_proposal_mean": round(float(np.mean(accept_us)), 1) if accept_us else None,
        "accept_all_proposals_per_pass": accepted_n,
        "clear_relabel_delete_bytes_mean": round(float(np.mean(small_bytes)), 1) if small_bytes else None,
        "clear_relabel_delete_record_us_p50": round(float(np.median(small_us)), 1) if small_us else None,
        **initial,
        "model_edits": len(model_bytes),
        "strokes": len(stroke_bytes),
        "image": "DAVIS-345 854x480",
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }
    for k, v in out.items():
        print(f"{k:<40} {v}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "promptlog.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {RESULTS / 'promptlog.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
