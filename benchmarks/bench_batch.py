"""Batch pre-labeling throughput: ``gt-widget segment`` over DAVIS-345 frames, model load included.

Not a test. Links N DAVIS-345 frames into a temporary folder, writes one prompt per frame -- the GT mask's
bounding box (``box``) or its 4 extreme points (``extreme``, the protocol's) -- and runs the real CLI
(``python -m gt_widget.cli segment``) per recipe (default, ``--fast``) and prompt kind. Reports images per
minute (wall clock), CPU seconds per image (all threads, model load included; on a shared machine the
load-independent figure), the load average, and the mean IoU of the written label maps with the GT (so a
faster run that writes worse masks shows). ``images/min on 2 free cores`` = 2 x 60 / CPU-s per image: what
the run gives when nothing else runs. ``--busy`` keeps one core busy with a ``while True: pass`` process
that the benchmark starts itself (wall clock then shows what the run gets from the one core left).

The fast recipe needs the blank (all-padding) embedding, kept on disk after the first run on a machine
(``gt_widget.segment.mobilesam.blank_cache``, in ``$GT_WIDGET_CACHE`` or ~/.cache/gt_widget). Each row says
whether it was there before the run (``blank_cache_warm``); ``--blank cold`` empties that cache before every
run, ``--blank both`` runs each recipe cold and then warm.

    python -m benchmarks.bench_batch [--images 30] [--recipes default,fast] [--prompts box,extreme] [--busy]
                                     [--blank asis|cold|both]

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


def _prepare(folder: Path, n: int) -> tuple[dict[str, Path], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Link the frames; write ``prompts-box.json`` and ``prompts-extreme.json``; return them and the GT
    (mask, void) per link name."""
    samples = P.load_set("davis345")
    idx = np.linspace(0, len(samples) - 1, n).round().astype(int)
    boxes: dict[str, list[dict[str, Any]]] = {}
    extremes: dict[str, list[dict[str, Any]]] = {}
    truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for i in idx:
        s = samples[int(i)]
        _img, gt, void = s.load()
        ys, xs = np.nonzero(gt)
        link = folder / f"{s.id}.jpg"
        link.symlink_to(s.image_path)
        boxes[link.name] = [{"label": "object", "box": [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]}]
        extremes[link.name] = [{"label": "object", "extreme_points": P.extreme_points(gt).tolist()}]
        truth[link.name] = (gt, void)
    paths = {"box": folder.parent / "prompts-box.json", "extreme": folder.parent / "prompts-extreme.json"}
    paths["box"].write_text(json.dumps(boxes))
    paths["extreme"].write_text(json.dumps(extremes))
    return paths, truth


def _mean_iou(job_dir: Path, truth: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean IoU (protocol's, void ignored) of the written label maps (``masks/<index>_<stem>.png``) with the GT."""
    from PIL import Image

    ious = []
    for png in sorted((job_dir / "masks").glob("*.png")):
        name = png.stem.split("_", 1)[1] + ".jpg"
        gt, void = truth[name]
        ious.append(P.iou(np.asarray(Image.open(png)) > 0, gt, void))
    return float(np.mean(ious)) if ious else 0.0


def _blank_key() -> str | None:
    """The blank-embedding cache key a ``gt-widget segment`` run on this machine uses (1024 px, the
    precision ``choose_precision`` picks, the verified weights, optimized model)."""
    from gt_widget.segment.mobilesam import blank_cache, load_mobilesam
    from gt_widget.segment.mobilesam.runtime import choose_precision

    return blank_cache.blank_key(load_mobilesam(), 1024, choose_precision())


def _blank_warm(key: str | None) -> bool:
    """Whether a valid blank embedding for ``key`` is on disk now."""
    from gt_widget.segment.mobilesam import blank_cache

    return key is not None and blank_cache.load_blank(key, 1024) is not None


def _empty_blank_cache() -> int:
    """Delete every stored blank embedding (any key); returns how many."""
    from gt_widget.segment.mobilesam import blank_cache

    gone = 0
    for path in blank_cache.blank_dir().glob("blank-*.pt"):
        path.unlink(missing_ok=True)
        gone += 1
    return gone


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=30)
    ap.add_argument("--recipes", default="default,fast")
    ap.add_argument("--prompts", default="box,extreme", help="prompt kinds: box, extreme (comma-separated)")
    ap.add_argument("--workers", type=int, default=None, help="passed to gt-widget segment (default: its own)")
    ap.add_argument("--busy", action="store_true", help="keep one core busy with a CPU burner during the runs")
    ap.add_argument(
        "--blank",
        choices=["asis", "cold", "both"],
        default="asis",
        help="blank-embedding disk cache: as it is (default), emptied before each run (cold), or cold then warm",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    results: dict[str, Any] = {}
    states = {"asis": [""], "cold": ["cold"], "both": ["cold", "warm"]}[args.blank]
    blank_key = _blank_key()
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        with tempfile.TemporaryDirectory(prefix="gtw-batch-") as tmp:
            images = Path(tmp) / "images"
            images.mkdir()
            prompt_files, truth = _prepare(images, args.images)
            for kind in [k for k in args.prompts.split(",") if k]:
                for recipe, state in [(r, st) for r in args.recipes.split(",") if r for st in states]:
                    name = f"{recipe}-{kind}" + (f"-{state}" if state else "")
                    out = Path(tmp) / f"out-{name}"
                    if state == "cold":
                        _empty_blank_cache()
                    warm = _blank_warm(blank_key)
                    cmd = [sys.executable, "-m", "gt_widget.cli", "segment", str(images)]
                    cmd += ["--prompts", str(prompt_files[kind]), "--out", str(out), "--segmenter", "mobilesam"]
                    cmd += ["--quiet"] + (["--fast"] if recipe == "fast" else [])
                    cmd += ["--workers", str(args.workers)] if args.workers else []
                    load0 = os.getloadavg()
                    cpu0, t0 = _children_cpu(), time.perf_counter()
                    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
                    if proc.returncode != 0:
                        print(proc.stdout, proc.stderr, file=sys.stderr)
                        return proc.returncode
                    results[name] = {
                        "recipe": recipe,
                        "prompt": kind,
                        "blank_cache_warm": warm,
                        "images": args.images,
                        "busy_core": args.busy,
                        "wall_s": round(wall, 1),
                        "images_per_min": round(60 * args.images / wall, 1),
                        "cpu_s_per_image": round(cpu / args.images, 3),
                        "images_per_min_2_free_cores": round(2 * 60 / (cpu / args.images), 1),
                        "mean_iou": round(100 * _mean_iou(out / "gt-widget-prelabel", truth), 2),
                        "load_before": [round(v, 2) for v in load0],
                        "load_after": [round(v, 2) for v in os.getloadavg()],
                    }
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
    print(
        "| recipe | prompt | blank cache | images | wall s | images/min | CPU-s / image | images/min on 2 free cores "
        "| mIoU | load (1 min) before / after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results.values():
        print(
            f"| {r['recipe']} | {r['prompt']} | {'warm' if r['blank_cache_warm'] else 'cold'} | {r['images']} | "
            f"{r['wall_s']} | {r['images_per_min']} | "
            f"{r['cpu_s_per_image']} | {r['images_per_min_2_free_cores']} | {r['mean_iou']} | "
            f"{r['load_before'][0]} / {r['load_after'][0]} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prompts = {"box": "GT bounding box", "extreme": "GT extreme points (protocol)"}
    taken = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    doc = {"taken": taken, "prompts": prompts, "busy_core": args.busy, "blank": args.blank, "results": results}
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
