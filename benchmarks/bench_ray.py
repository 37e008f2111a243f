"""Pre-labeling throughput: the local engine and the Ray engine with 1 and 2 workers, and Ray's overhead.

Inputs: the first N DAVIS-345 frames (854x480), one object each (the first instance, prompted by its 4
extreme points), MobileSAM with the default recipe. Every engine runs the same images into a fresh folder
(``resume=False``). Threads: the local engine runs MobileSAM on every CPU (``threads=os.cpu_count()``); each
Ray actor runs on its share, cluster CPUs / workers (``ray_engine.worker_share``: 2 threads for 1 worker, 1
each for 2 workers on 2 CPUs), so "local" vs "ray, 1 worker" isolates Ray. Ray's per-image overhead is measured apart from the model with the
deterministic ``BoxSegmenter`` (reads the image, no model): (ray time - local time) / images.
Ray is started once (``start_local_ray(num_cpus=os.cpu_count())``, 127.0.0.1) and its start time reported separately.
Writes ``benchmarks/results/ray.json``; record the load average with the figures (``uptime``).

    python -m benchmarks.bench_ray [--images 12]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.protocol import DATA, extreme_points

RESULTS = Path(__file__).resolve().parent / "results" / "ray.json"


def _inputs(folder: Path, count: int) -> dict[str, list[dict[str, Any]]]:
    """Links to the first ``count`` DAVIS frames and prompts (first instance, extreme points)."""
    root = DATA / "davis345"
    prompts: dict[str, list[dict[str, Any]]] = {}
    with (root / "instances.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if len(prompts) >= count or f"{row['frame']}.jpg" in prompts:
                continue
            mask = np.asarray(Image.open(root / row["mask"]).convert("L")) > 127
            name = f"{row['frame']}.jpg"
            (folder / name).symlink_to(root / row["image"])
            pts = [[float(x), float(y)] for x, y in extreme_points(mask)]
            prompts[name] = [{"label": "object", "extreme_points": pts}]
    return prompts


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=12, help="DAVIS frames to pre-label (default 12)")
    ap.add_argument("--overhead-images", type=int, default=40, help="images for the no-model overhead run")
    ap.add_argument("--quick", action="store_true", help="4 images, 12 for the overhead")
    args = ap.parse_args(argv)
    if args.quick:
        args.images, args.overhead_images = 4, 12
    import ray
    import torch

    from gt_widget.segment import load_segmenter
    from gt_widget.segment.batch import prelabel
    from gt_widget.segment.ray_engine import start_local_ray, worker_share, worker_threads
    from gt_widget.widget.testing import BoxSegmenter

    work = Path(tempfile.mkdtemp(prefix="gt-bench-ray-"))
    try:
        images = work / "images"
        images.mkdir()
        prompts = _inputs(images, args.images)
        many = work / "many"
        many.mkdir()
        many_prompts = {}
        for k in range(args.overhead_images):
            src = sorted(images.iterdir())[k % len(prompts)]
            (many / f"{k:03d}_{src.name}").symlink_to(src.resolve())
            many_prompts[f"{k:03d}_{src.name}"] = prompts[src.name]
        factory = functools.partial(load_segmenter, "mobilesam")
        loads = {"start": os.getloadavg()[0]}
        run = functools.partial(prelabel, progress=False, resume=False)
        cpus = os.cpu_count() or 1

        torch.set_num_threads(cpus)
        seg = factory(threads=cpus)
        local = _timed(lambda: run(images, prompts, work / "local", segmenter=seg))
        loads["after_local"] = os.getloadavg()[0]
        local_box = _timed(lambda: run(many, many_prompts, work / "local-box", segmenter=BoxSegmenter()))

        ray_start = _timed(lambda: start_local_ray(num_cpus=cpus))
        try:
            ray1 = _timed(
                lambda: run(images, prompts, work / "ray1", segmenter_factory=factory, engine="ray", workers=1)
            )
            loads["after_ray_1_worker"] = os.getloadavg()[0]
            ray2 = _timed(
                lambda: run(images, prompts, work / "ray2", segmenter_factory=factory, engine="ray", workers=2)
            )
            loads["after_ray_2_workers"] = os.getloadavg()[0]
            ray_box = _timed(
                lambda: run(
                    many, many_prompts, work / "ray-box", segmenter_factory=BoxSegmenter, engine="ray", workers=1
                )
            )
            ray_box_actor_start = _timed(
                lambda: run(
                    many,
                    {k: v for k, v in list(many_prompts.items())[:1]},
                    work / "ray-1img",
                    segmenter_factory=BoxSegmenter,
                    engine="ray",
                    workers=1,
                )
            )
        finally:
            ray.shutdown()
        loads["end"] = os.getloadavg()[0]
        same = all(
            (work / "local" / "gt-widget-prelabel" / "masks" / p.name).read_bytes() == p.read_bytes()
            for d in ("ray1", "ray2")
            for p in (work / d / "gt-widget-prelabel" / "masks").iterdir()
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n, m = args.images, args.overhead_images
    per_image_overhead = (ray_box - ray_box_actor_start) / max(m - 1, 1) - local_box / m
    result = {
        "images": n,
        "image_size": "854x480 (DAVIS-345)",
        "segmenter": "mobilesam, default recipe",
        "cpus": cpus,
        "torch_threads": {
            "local": cpus,
            "ray_1_worker": worker_threads(worker_share(cpus, 1)),
            "ray_2_workers": worker_threads(worker_share(cpus, 2)),
        },
        "images_per_min": {
            "local": round(60 * n / local, 2),
            "ray_1_worker": round(60 * n / ray1, 2),
            "ray_2_workers": round(60 * n / ray2, 2),
        },
        "seconds": {"local": round(local, 1), "ray_1_worker": round(ray1, 1), "ray_2_workers": round(ray2, 1)},
        "ray_start_seconds": round(ray_start, 1),
        "ray_run_fixed_cost_seconds": round(ray_box_actor_start, 2),
        "ray_overhead_ms_per_image": round(1000 * per_image_overhead, 1),
        "overhead_images": m,
        "ray_outputs_equal_local": same,
        "loadavg_1min": {k: round(v, 2) for k, v in loads.items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print("| engine | images/min | seconds |")
    print("|---|---|---|")
    for key, secs in (("local", local), ("ray_1_worker", ray1), ("ray_2_workers", ray2)):
        print(f"| {key} | {result['images_per_min'][key]:.1f} | {secs:.1f} |")  # type: ignore[index]
    print(
        f"Ray start {ray_start:.1f} s; fixed cost per run (actor start + model-free 1 image) {ray_box_actor_start:.1f} s; "
        f"per-image overhead {1000 * per_image_overhead:.0f} ms; outputs equal local: {same}; load average {loads}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
