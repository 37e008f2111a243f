"""Peak memory of a labeling session that visits many huge images (issue: it grew ~0.7 GB per image).

Not a test. Makes one synthetic image of ``--megapixels`` (default 99, 11500 x 8600; random blocks so PNG
decoding is real work) and copies it to ``--images`` files (default 10), then, in a fresh child process,
opens a ``LabelingSession`` (BoxSegmenter: the model's own memory is measured by bench_latency), and on each
image paints a brush stroke and an auto-segment, saves, and moves on. Reports the resident set after each
image and the child's peak (``ru_maxrss``). Target: peak <= 2.5 GB over 10 images of 99 MP.

    python -m benchmarks.bench_session_memory [--images 10] [--megapixels 99] [--quick]

Prints a table and writes benchmarks/results/session_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "session_memory.json"


def _rss_gb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def child(folder: Path) -> dict[str, Any]:
    """Visit every image of ``folder`` in a session (runs in the child process)."""
    from gt_widget.widget import LabelingSession
    from gt_widget.widget.memory import MEMORY_BUDGET_BYTES
    from gt_widget.widget.testing import BoxSegmenter

    start = _rss_gb()
    session = LabelingSession(folder, ["cat", "dog"], folder / "out", segmenter=BoxSegmenter())
    per_image: list[dict[str, float]] = []
    t0 = time.monotonic()
    for i in range(len(session)):
        if i:
            session.next()
        w = session.widget
        h, wd = w.image.shape[:2]
        w.brush([(200 + 40 * k, 300) for k in range(30)], radius=40)
        w.label = "dog"
        x0, x1, y0, y1 = wd // 4, wd // 2, h // 4, h // 2
        w.auto_segment([(x0, (y0 + y1) // 2), (x1, (y0 + y1) // 2), ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1)])
        w.label = "cat"
        session.flush()
        per_image.append(
            {
                "image": i + 1,
                "rss_gb": round(_rss_gb(), 3),
                "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            }
        )
        print(json.dumps(per_image[-1]), file=sys.stderr, flush=True)
    labeled = session.labeled_count
    session.close()
    return {
        "rss_at_start_gb": round(start, 3),
        "per_image": per_image,
        "peak_gb": per_image[-1]["peak_gb"],
        "labeled": labeled,
        "seconds": round(time.monotonic() - t0, 1),
        "memory_budget_bytes": MEMORY_BUDGET_BYTES,
    }


def make_images(folder: Path, count: int, megapixels: float) -> tuple[int, int]:
    """``count`` copies of one synthetic RGB PNG of about ``megapixels``; returns (width, height)."""
    from PIL import Image

    height = int((megapixels * 1e6 / (4 / 3)) ** 0.5)
    width = int(height * 4 / 3)
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 255, (height // 64 + 1, width // 64 + 1, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(blocks, 64, axis=0), 64, axis=1)[:height, :width]
    first = folder / "img00.png"
    Image.fromarray(image).save(first, compress_level=1)
    del image
    for i in range(1, count):
        shutil.copyfile(first, folder / f"img{i:02d}.png")
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    """Make the images, run the child, print and write the result."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--megapixels", type=float, default=99.0)
    ap.add_argument("--quick", action="store_true", help="3 images of 12 MP")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return 0
    count, mp = (3, 12.0) if args.quick else (args.images, args.megapixels)
    with tempfile.TemporaryDirectory() as tmp:
        width, height = make_images(Path(tmp), count, mp)
        load_before = os.getloadavg()[0]
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_session_memory", "--child", tmp],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        run = json.loads(proc.stdout.strip().splitlines()[-1])
    result = {
        "taken": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "images": count,
        "image_size": f"{width}x{height}",
        "megapixels": round(width * height / 1e6, 1),
        **run,
    }
    print(f"\n{count} images of {width}x{height} ({result['megapixels']} MP): peak {run['peak_gb']:.2f} GB")
    print("| image | RSS after (GB) | peak so far (GB) |\n|---|---|---|")
    for row in run["per_image"]:
        print(f"| {row['image']} | {row['rss_gb']:.2f} | {row['peak_gb']:.2f} |")
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
