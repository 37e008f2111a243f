"""A click's ``predict`` beside idle torch threads: why the widget's background thread does not linger.

Not a test. Each thread that runs torch ops keeps its own OpenMP team (libgomp: one pool per thread that
opened a parallel region). When the teams hold more threads than the machine has cores, libgomp's workers
stop spinning between parallel regions and sleep on a futex, so every one of the mask decoder's few
hundred parallel regions pays a wake-up. The widget runs the click's ``predict`` on its model thread and
prefetches / refines on a background thread; before this benchmark's finding, that background thread
stayed alive (idle) for 30 s after each job, keeping its team.

Scenarios, all on a model thread that is not the main thread (as in the widget), real MobileSAM, the
first-stage ``predict_staged`` on GrabCut objects (exact extreme points), with a pause before each call
(``--pause``, a labeler's think time between clicks; 0 = back to back):

- ``alone``: no other thread ever ran torch;
- ``after a background job``: a background thread encoded an image and ended (``linger_s=0``, today);
- ``beside an idle background thread``: the same thread encoded an image and stays alive, idle (before).

    python -m benchmarks.bench_teams [--objects 12] [--pause 0.4] [--threads 2]

Prints a table; writes benchmarks/results/teams.json (with the load average and CPU model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_latency import cpu_name  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "teams.json"


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    """Runs on a fresh thread (the 'model thread'); returns the figures of every scenario."""
    from benchmarks.protocol import extreme_points, load_set
    from gt_widget.segment import load_segmenter

    seg: Any = load_segmenter("mobilesam", threads=args.threads)
    data = []
    for sample in load_set("grabcut")[: args.objects]:
        image, gt, _void = sample.load()
        data.append((image, extreme_points(gt)))

    def run(pause: float) -> dict[str, float]:
        wall, cpu = [], []
        for image, pts in data:
            seg.set_image(image)
            for _ in range(args.repeats):
                if pause:
                    time.sleep(pause)
                t, c = time.perf_counter(), time.process_time()
                seg.predict_staged(extreme_points=pts)
                wall.append((time.perf_counter() - t) * 1e3)
                cpu.append((time.process_time() - c) * 1e3)
        return {
            "wall_ms_p50": round(statistics.median(wall), 1),
            "wall_ms_p90": round(float(np.percentile(wall, 90)), 1),
            "cpu_ms_p50": round(statistics.median(cpu), 1),
        }

    def encode_once() -> None:
        seg.prepare(np.ascontiguousarray(data[0][0][::-1]), cache=False)

    out: dict[str, Any] = {}
    run(0.0)  # warm-up: oneDNN kernels, caches
    for pause in sorted({0.0, args.pause}):
        key = f"pause {pause:g} s"
        out[key] = {"alone": run(pause)}
        done = threading.Thread(target=encode_once, name="bench-background")
        done.start()
        done.join()
        out[key]["after a background job"] = run(pause)
        release = threading.Event()

        def encode_and_idle(release: threading.Event = release) -> None:
            encode_once()
            release.wait()

        idle = threading.Thread(target=encode_and_idle, name="bench-background-idle")
        idle.start()
        time.sleep(2.0)  # its encode is over: the thread (and its OpenMP team) is idle
        out[key]["beside an idle background thread"] = run(pause)
        release.set()
        idle.join()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2, help="predict calls per object and scenario")
    ap.add_argument("--pause", type=float, default=0.4, help="seconds before each call (0: back to back only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    box: dict[str, Any] = {}
    model_thread = threading.Thread(target=lambda: box.update(_measure(args)), name="bench-model")
    model_thread.start()
    model_thread.join()
    print("| pause before each call | scenario | wall ms p50 | wall ms p90 | CPU-ms p50 (process) |")
    print("|---|---|---|---|---|")
    for pause, rows in box.items():
        for scenario, r in rows.items():
            print(f"| {pause} | {scenario} | {r['wall_ms_p50']} | {r['wall_ms_p90']} | {r['cpu_ms_p50']} |")
    result = {
        "what": "predict_staged (first stage, exact extreme points) on a model thread, GrabCut objects; "
        "see the module docstring",
        "objects": args.objects,
        "repeats": args.repeats,
        "threads": args.threads,
        "cpu": cpu_name(),
        "load_average_before": [round(v, 2) for v in load0],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "results": box,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
