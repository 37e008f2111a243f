"""Batch pre-labeling throughput: ``gt-widget segment`` over DAVIS-345 frames, box prompts, model load included.

Not a test. Links N DAVIS-345 frames into a temporary folder, writes one box prompt per frame (the GT
union mask's bounding box), and runs the real CLI (``python -m gt_widget.cli segment``) once with the
default recipe and once with ``--fast``. Reports images per minute (wall clock), CPU seconds per image
(all threads, model load included; on a shared machine the load-independent figure) and the load average.
``images/min on 2 free cores`` = 2 x 60 / CPU-s per image: what the run gives when nothing else runs.

    python -m benchmarks.bench_batch [--images 30] [--recipes default,fast]

Prints a table; writes benchmarks/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import protocol as P

RESULTS = Path(__file__).resolve().parent / "results" / "batch.json"


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _prepare(folder: Path, n: int) -> Path:
    samples = P.load_set("davis345")
    idx = np.linspace(0, len(samples) - 1, n).round().astype(int)
    prompts: dict[str, list[dict[str, Any]]] = {}
    for i in idx:
        s = samples[int(i)]
        _img, gt, _void = s.load()
        ys, xs = np.nonzero(gt)
        link = folder / f"{s.id}.jpg"
        link.symlink_to(s.image_path)
        prompts[link.name] = [{"label": "object", "box": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]}]
    path = folder.parent / "prompts.json"
    path.write_text(json.dumps(prompts))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=30)
    ap.add_argument("--recipes", default="default,fast")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gtw-batch-") as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        prompts = _prepare(images, args.images)
        for recipe in [r for r in args.recipes.split(",") if r]:
            cmd = [sys.executable, "-m", "gt_widget.cli", "segment", str(images), "--prompts", str(prompts)]
            cmd += ["--out", str(Path(tmp) / f"out-{recipe}"), "--segmenter", "mobilesam", "--quiet"]
            if recipe == "fast":
                cmd.append("--fast")
            load0 = os.getloadavg()
            cpu0, t0 = _children_cpu(), time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return proc.returncode
            results[recipe] = {
                "images": args.images,
                "wall_s": round(wall, 1),
                "images_per_min": round(60 * args.images / wall, 1),
                "cpu_s_per_image": round(cpu / args.images, 3),
                "images_per_min_2_free_cores": round(2 * 60 / (cpu / args.images), 1),
                "load_before": [round(v, 2) for v in load0],
                "load_after": [round(v, 2) for v in os.getloadavg()],
            }
    print("| recipe | images | wall s | images/min | CPU-s / image | images/min on 2 free cores | load (1 min) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['images']} | {r['wall_s']} | {r['images_per_min']} | {r['cpu_s_per_image']} | "
            f"{r['images_per_min_2_free_cores']} | {r['load_before'][0]} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"prompt": "box (GT bounding box)", "results": results}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
