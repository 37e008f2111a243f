"""Kernel-side cost of the labeling widget: per-event latency, bytes sent to the browser, undo memory.

Not a test. Measures what the kernel does between a browser event arriving and its canvas message leaving
(the browser's own decode/draw time is measured by benchmarks/bench_browser.py). The model is replaced by
a segmenter that returns a fixed mask instantly, so only the widget's own work is timed.

    .venv/bin/python benchmarks/bench_widget.py [--sizes 640x480,1920x1080,10000x8000] [--repeat 30]

Prints a table and writes benchmarks/results/widget.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ipycanvas.canvas as ipc

from gt_widget.segment.base import Candidate, Prediction
from gt_widget.widget import SegmentationWidget

RESULTS = Path(__file__).resolve().parent / "results" / "widget.json"


class _Wire:
    """Counts the bytes and messages ipycanvas sends (command JSON + image buffers)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.messages = 0
        self._orig = ipc._CanvasManager._send_custom

        def send(mgr: Any, command: Any, buffers: Sequence[Any] = ()) -> None:
            self.messages += 1
            self.bytes += sum(len(memoryview(b).cast("B")) for b in buffers)
            self._orig(mgr, command, list(buffers))

        ipc._CanvasManager._send_custom = send

    def take(self) -> tuple[int, int]:
        out = (self.bytes, self.messages)
        self.bytes = self.messages = 0
        return out


class FixedMaskSegmenter:
    """Returns an ellipse covering the extreme points' box, instantly (the widget's cost alone)."""

    name = "fixed"

    def __init__(self) -> None:
        self._shape: tuple[int, int] | None = None
        self._masks: dict[str, np.ndarray] = {}

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self._shape

    def set_image(self, image: Any) -> None:
        self._shape = (int(image.shape[0]), int(image.shape[1]))

    def predict(self, extreme_points: Any = None, clicks: Any = (), previous: Any = None, box: Any = None) -> Any:
        assert self._shape is not None
        key = repr(extreme_points)
        if key not in self._masks:  # computed once: the benchmark times the widget, not this
            self._masks[key] = self._ellipse(np.asarray(extreme_points, float))
        mask = self._masks[key]
        return Prediction(mask, 0.95, [Candidate(mask, 0.95)])

    def _ellipse(self, pts: np.ndarray) -> np.ndarray:
        assert self._shape is not None
        x0, x1, y0, y1 = pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max()
        h, w = self._shape
        yy = np.arange(h, dtype=np.float32)[:, None]
        xx = np.arange(w, dtype=np.float32)[None, :]
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 + 0.5, (y1 - y0) / 2 + 0.5
        return np.asarray(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0)


def _times(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def bench_size(width: int, height: int, repeat: int, wire: _Wire) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    wire.take()
    t0 = time.perf_counter()
    w = SegmentationWidget(image, ["a", "b", "c"], segmenter=FixedMaskSegmenter())
    load_ms = (time.perf_counter() - t0) * 1000
    w.wait_idle(60)
    load_bytes, _ = wire.take()
    row: dict[str, Any] = {"size": f"{width}x{height}", "load_ms": load_ms, "load_bytes": load_bytes}

    # brush: one mouse move = paint a segment + send the overlay patch and the outline
    w.tool = "brush"
    w.brush_radius = max(3, round(min(width, height) / 80))
    cx, cy = w.view.canvas_w * 0.3, w.view.canvas_h * 0.5
    w.handle_mouse_down(cx, cy)
    wire.take()
    moves, move_bytes = [], []
    for i in range(repeat):
        x = cx + 4 * (i + 1)
        t = time.perf_counter()
        w.handle_mouse_move(x, cy + (i % 5))
        moves.append((time.perf_counter() - t) * 1000)
        move_bytes.append(wire.take()[0])
    t = time.perf_counter()
    w.handle_mouse_up(cx + 4 * repeat, cy)
    row["stroke_end_ms"] = (time.perf_counter() - t) * 1000
    row["brush_move_ms_p50"], row["brush_move_ms_p90"] = _p(moves, 50), _p(moves, 90)
    row["brush_move_bytes_p50"] = _p([float(b) for b in move_bytes], 50)

    # auto-segment of an object covering ~1/9 of the image: predict is instant, so this is paint + send
    pts = [(width / 2, height / 3), (width / 2, 2 * height / 3), (width / 3, height / 2), (2 * width / 3, height / 2)]
    w.auto_segment(pts)  # fills the mask cache
    w.undo()
    wire.take()
    auto = _times(lambda: (w.auto_segment(pts), w.undo()), max(3, repeat // 5))
    row["auto_segment_plus_undo_ms_p50"] = _p(auto, 50)
    w.auto_segment(pts)
    wire.take()
    w.undo()
    row["undo_bytes"] = wire.take()[0]
    w.redo()

    # zoom / full redraw
    wire.take()
    zooms = _times(lambda: w.zoom(1.1), max(3, repeat // 3))
    row["zoom_redraw_ms_p50"] = _p(zooms, 50)
    row["zoom_redraw_bytes"] = wire.take()[0] // max(1, len(zooms))
    w.fit()

    # undo memory: 60 strokes of radius ~ 1/80 image across the image
    w.handle_mouse_up(0, 0)
    for i in range(60):
        x = (i % 10 + 0.5) * width / 10
        w.label = ["a", "b", "c"][i % 3]
        w.brush([(x, height * 0.1), (x, height * 0.9)], radius=max(3, min(width, height) / 80))
    row["history_steps"] = w.history[0]
    row["history_bytes_60_strokes"] = w.editor.state.history_bytes()
    row["label_map_bytes"] = int(np.prod(w.editor.state.shape))
    undo60 = _times(w.undo, 60)
    row["undo_ms_p50"] = _p(undo60, 50)
    w.close()
    return row


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="640x480,1920x1080,10000x8000")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    wire = _Wire()
    rows = []
    for spec in args.sizes.split(","):
        wd, ht = (int(v) for v in spec.lower().split("x"))
        rows.append(bench_size(wd, ht, args.repeat, wire))
        print(f"done {spec}", file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cols = [
        ("size", "size", "{}"),
        ("load ms", "load_ms", "{:.0f}"),
        ("load KB", "load_bytes", "{:.0f}"),
        ("brush move ms p50/p90", None, ""),
        ("move KB", "brush_move_bytes_p50", "{:.1f}"),
        ("auto+undo ms", "auto_segment_plus_undo_ms_p50", "{:.0f}"),
        ("zoom ms", "zoom_redraw_ms_p50", "{:.0f}"),
        ("zoom KB", "zoom_redraw_bytes", "{:.0f}"),
        ("undo ms", "undo_ms_p50", "{:.1f}"),
        ("60-step history KB", "history_bytes_60_strokes", "{:.0f}"),
    ]
    print("| " + " | ".join(c[0] for c in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for _, key, fmt in cols:
            if key is None:
                cells.append(f"{r['brush_move_ms_p50']:.1f} / {r['brush_move_ms_p90']:.1f}")
            elif key.endswith("bytes") or key.endswith("_bytes_p50") or key == "history_bytes_60_strokes":
                cells.append(fmt.format(r[key] / 1024))
            else:
                cells.append(fmt.format(r[key]))
        print("| " + " | ".join(cells) + " |")
    print(f"peak RSS {peak_mb:.0f} MB; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    result = {
        "rows": rows,
        "peak_rss_mb": peak_mb,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "note": "kernel-side only: event handling + encoding of canvas messages; model time excluded",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False, suffix=".tmp") as fh:
        json.dump(result, fh, indent=2)
    Path(fh.name).replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
