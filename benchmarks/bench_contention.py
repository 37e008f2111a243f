"""Does an interactive request wait behind background encoder work? Kernel side, real MobileSAM.

Not a test. For DAVIS-345 objects small enough to get a refined (zoomed) pass, on an idle machine and
with one core kept busy by a ``while True: pass`` process this benchmark starts itself:

- ``predict``: the click's answer alone (``predict(zoom="off")``, the widget's first stage);
- ``predict | prefetch``: the same call made while another thread runs ``prepare(next image)`` (the
  session's prefetch), measured from the moment that encoder run has started;
- ``predict | refine``: the same while another thread runs the staged ``refine`` (the zoomed pass);
- ``queued (one worker)``: today's widget: one model thread (``gt_widget.widget.worker.ModelWorker``)
  runs the prefetch job, the click's job is queued behind it: click -> answer, from the same moment;
- ``refine``: the refined pass alone (crop encode + decoding), what the user waits for the better mask.

    python -m benchmarks.bench_contention [--objects 8] [--recipe zoom_size=640] [--threads N]

Prints a table; writes benchmarks/results/contention.json (with the load average before/after).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import protocol as P
from benchmarks.bench_quality import parse_recipe

RESULTS = Path(__file__).resolve().parent / "results" / "contention.json"


def _pick(n: int) -> list[P.Sample]:
    """n DAVIS-345 frames whose object box covers < 30% of the image (they get a refined pass)."""
    out = []
    for s in P.load_set("davis345")[::7]:
        _img, gt, _v = s.load()
        ys, xs = np.nonzero(gt)
        if ys.size and (np.ptp(xs) + 1) * (np.ptp(ys) + 1) < 0.3 * gt.size:
            out.append(s)
        if len(out) == n:
            break
    return out


class _EncoderStarted:
    """Sets ``event`` when the image encoder starts on ``thread_name``."""

    def __init__(self, model: Any) -> None:
        self.event = threading.Event()
        self.thread_name = ""
        self.t = 0.0
        model.image_encoder.register_forward_pre_hook(self._hook)

    def arm(self, thread_name: str) -> None:
        self.thread_name = thread_name
        self.event.clear()

    def _hook(self, _m: Any, _inp: Any) -> None:
        if threading.current_thread().name == self.thread_name and not self.event.is_set():
            self.t = time.perf_counter()
            self.event.set()


def _measure(seg: Any, samples: list[P.Sample]) -> dict[str, list[float]]:
    from gt_widget.widget.worker import BACKGROUND, INTERACTIVE, ModelWorker

    started = _EncoderStarted(seg.model)
    out: dict[str, list[float]] = {
        k: [] for k in ("predict", "predict|prefetch", "predict|refine", "queued", "refine", "refine CPU-s")
    }
    loaded = [s.load() for s in samples]
    for i, (image, gt, _void) in enumerate(loaded):
        pts = P.extreme_points(gt)
        seg.set_image(image)
        seg.predict(extreme_points=pts, zoom="off")  # warm the decoder on this image
        t = time.perf_counter()
        seg.predict(extreme_points=pts, zoom="off")
        out["predict"].append(time.perf_counter() - t)
        nxt = np.ascontiguousarray(loaded[(i + 1) % len(loaded)][0][:, ::-1])  # new pixels: a real encoder run
        nxt[0, 0, 0] ^= np.uint8(i + 1)

        # a prefetch on its own thread (contract 1), the click on this one
        started.arm("bench-prefetch")
        th = threading.Thread(target=seg.prepare, args=(nxt,), name="bench-prefetch")
        th.start()
        started.event.wait(120)
        t = time.perf_counter()
        seg.predict(extreme_points=pts, zoom="off")
        out["predict|prefetch"].append(time.perf_counter() - t)
        th.join()

        # the staged refine on its own thread, the click on this one
        staged = seg.predict_staged(extreme_points=pts)
        if staged.refine is not None:
            started.arm("bench-refine")
            refine = staged.refine
            th = threading.Thread(target=refine, name="bench-refine")
            th.start()
            started.event.wait(120)
            t = time.perf_counter()
            seg.predict(extreme_points=pts, zoom="off")
            out["predict|refine"].append(time.perf_counter() - t)
            th.join()
        seg.set_image(image)  # drop the crop: time the refine alone
        state = seg.get_state()
        if state is not None:
            state.crops.clear()  # forget the cached crop so the refine encodes again
        staged = seg.predict_staged(extreme_points=pts)
        if staged.refine is not None:
            t, c = time.perf_counter(), time.process_time()
            staged.refine()
            out["refine"].append(time.perf_counter() - t)
            out["refine CPU-s"].append(time.process_time() - c)  # all threads: load-independent cost

        # today's widget: one model thread, the click's job queued behind the prefetch job
        worker = ModelWorker(name="bench-worker")
        nxt2 = nxt.copy()
        nxt2[0, 0, 1] ^= np.uint8(1)
        started.arm("bench-worker")
        worker.submit(lambda img=nxt2: seg.prepare(img), BACKGROUND)
        started.event.wait(120)
        t = time.perf_counter()
        fut = worker.submit(lambda p=pts: seg.predict(extreme_points=p, zoom="off"), INTERACTIVE)
        fut.result(120)
        out["queued"].append(time.perf_counter() - t)
        worker.close()
        print(f"\r  {i + 1}/{len(loaded)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def _burner() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(arr, 50)), 1), "p90_ms": round(float(np.percentile(arr, 90)), 1)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=8)
    ap.add_argument("--recipe", nargs="*", default=[], help="segmenter flags, e.g. zoom_size=640 threads=2")
    ap.add_argument("--conditions", default="idle,one-core-busy")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from gt_widget.segment import load_segmenter

    flags = parse_recipe(args.recipe)
    seg: Any = load_segmenter("mobilesam", weights=os.environ.get("GT_WIDGET_WEIGHTS"), **flags)
    samples = _pick(args.objects)
    results: dict[str, Any] = {}
    for cond in [c for c in args.conditions.split(",") if c]:
        load0 = os.getloadavg()
        burner = _burner() if cond == "one-core-busy" else None
        try:
            if burner is not None:
                time.sleep(1.0)
            raw = _measure(seg, samples)
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        results[cond] = {
            "load_before": [round(v, 2) for v in load0],
            "load_after": [round(v, 2) for v in os.getloadavg()],
            **{k: _summary(v) for k, v in raw.items()},
            "raw_s": {k: [round(x, 4) for x in v] for k, v in raw.items()},
        }
    _print(results)
    payload = {
        "recipe": flags,
        "precision": seg.precision,
        "zoom_size": seg.zoom_size,
        "threads": seg.threads,
        "objects": [s.id for s in samples],
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.out}")
    return 0


def _print(results: dict[str, Any]) -> None:
    keys = ("predict", "predict|prefetch", "predict|refine", "queued", "refine", "refine CPU-s")
    print("| condition | load (1 min) | " + " | ".join(f"{k} p50 / p90 ms" for k in keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for cond, r in results.items():
        cells = [f"{r[k].get('p50_ms', '-')} / {r[k].get('p90_ms', '-')}" if r[k] else "-" for k in keys]
        print(f"| {cond} | {r['load_before'][0]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
