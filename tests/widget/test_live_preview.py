"""Live preview of the 4th extreme point (issue 13): pointer moves after 3 points preview the mask, newest
position wins, stale answers are never drawn, and the click commits what is shown."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from gt_widget.segment.base import Prediction
from gt_widget.widget import SegmentationWidget
from gt_widget.widget.testing import BoxSegmenter

LABELS = ["cat", "dog"]
THREE = [(20.0, 10.0), (20.0, 30.0), (10.0, 20.0)]  # top, bottom, left; the pointer gives the right one


class GatedSegmenter(BoxSegmenter):
    """Records the 4th point of every prediction; ``hold`` (when set up) blocks predictions until released."""

    def __init__(self, precision: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold: threading.Event | None = None
        self.started = threading.Event()
        self.fourth: list[tuple[float, float]] = []
        if precision is not None:
            self.precision = precision

    def predict(
        self,
        extreme_points: Sequence[Sequence[float]] | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        previous: Prediction | None = None,
        box: Sequence[float] | None = None,
    ) -> Prediction:
        if extreme_points is not None:
            self.fourth.append((float(extreme_points[3][0]), float(extreme_points[3][1])))
        self.started.set()
        if self.hold is not None and not self.hold.wait(timeout=30):
            raise TimeoutError("hold never released")
        return super().predict(extreme_points, clicks, previous, box)


def _image() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 255, (60, 80, 3), dtype=np.uint8)


def _box(x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    m = np.zeros((60, 80), bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


@pytest.fixture
def rig() -> Any:
    seg = GatedSegmenter()
    w = SegmentationWidget(_image(), LABELS, segmenter=seg)
    assert w.wait_idle(10)
    drawn: list[np.ndarray | None] = []
    real = w.screen.draw_preview

    def record(mask: np.ndarray | None) -> None:
        drawn.append(None if mask is None else mask.copy())
        real(mask)

    w.screen.draw_preview = record  # type: ignore[method-assign]
    for x, y in THREE:
        w.handle_pointer("down", *w.image_to_canvas(x, y))
        w.handle_pointer("up", *w.image_to_canvas(x, y))
    yield w, seg, drawn
    if seg.hold is not None:
        seg.hold.set()
    w.close()


def _move(w: SegmentationWidget, x: float, y: float) -> tuple[float, float]:
    cx, cy = w.image_to_canvas(x, y)
    w.handle_pointer("move", cx, cy)
    return w.canvas_to_image(cx, cy)


def test_moves_preview_the_newest_position_and_skip_the_ones_in_between(rig: Any) -> None:
    w, seg, drawn = rig
    seg.predict_delay = 0.03
    for x in range(30, 42):  # 12 moves faster than the model answers
        _move(w, x, 20)
    assert w.wait_idle(10)
    assert w.requests.shown is not None
    assert w.requests.shown.points[3] == pytest.approx(w.canvas_to_image(*w.image_to_canvas(41, 20)))
    np.testing.assert_array_equal(w.requests.shown.mask, _box(10, 41, 10, 30))
    assert 1 <= seg.predict_calls < 12  # stale positions were dropped, not queued
    assert seg.fourth[-1][0] == pytest.approx(41)
    assert np.count_nonzero(w.label_map) == 0  # a preview never edits the labels
    assert drawn and drawn[-1] is not None


def test_a_stale_answer_is_never_drawn_over_a_newer_one(rig: Any) -> None:
    w, seg, drawn = rig
    seg.hold = threading.Event()
    _move(w, 30, 20)
    assert seg.started.wait(5)  # the answer for x=30 is being computed ...
    w.preview_extreme(None)  # ... when the pointer leaves: it must never be drawn
    _move(w, 35, 20)  # a newer position waits in the slot
    seg.hold.set()
    assert w.wait_idle(10)
    masks = [m for m in drawn if m is not None]
    assert len(masks) == 1
    np.testing.assert_array_equal(masks[0], _box(10, 35, 10, 30))
    assert seg.fourth == [pytest.approx((30, 20)), pytest.approx((35, 20))]


def test_click_where_the_preview_was_computed_commits_it_without_predicting_again(rig: Any) -> None:
    w, seg, drawn = rig
    cx, cy = w.image_to_canvas(36, 20)
    w.handle_pointer("move", cx, cy)
    assert w.wait_idle(10)
    preview = w.requests.shown
    assert preview is not None
    calls = seg.predict_calls
    w.handle_pointer("down", cx, cy)  # the pointer did not move: commit what is shown
    assert w.wait_idle(10)
    assert seg.predict_calls == calls
    np.testing.assert_array_equal(w.label_map == 1, preview.mask)
    assert w.requests.shown is None and drawn[-1] is None  # the committed overlay replaces the preview


def test_click_after_the_pointer_moved_predicts_for_the_click(rig: Any) -> None:
    w, seg, _drawn = rig
    _move(w, 36, 20)
    assert w.wait_idle(10)
    calls = seg.predict_calls
    w.handle_pointer("down", *w.image_to_canvas(40, 20))  # moved since the preview (no move event seen)
    assert w.wait_idle(10)
    assert seg.predict_calls == calls + 1
    np.testing.assert_array_equal(w.label_map == 1, _box(10, 40, 10, 30))


def test_preview_needs_three_points_and_escape_erases_it(rig: Any) -> None:
    w, seg, drawn = rig
    _move(w, 36, 20)
    assert w.wait_idle(10) and w.requests.shown is not None
    w.handle_key_down("Escape")
    assert w.requests.shown is None and drawn[-1] is None
    calls = seg.predict_calls
    _move(w, 38, 20)  # no points placed any more: no preview
    assert w.wait_idle(10)
    assert seg.predict_calls == calls and w.requests.shown is None


def test_previews_are_throttled_to_leave_the_model_thread_idle_half_the_time(rig: Any) -> None:
    w, seg, _drawn = rig
    seg.predict_delay = 0.02
    t0 = time.monotonic()
    x = 30.0
    while time.monotonic() - t0 < 0.6:  # hover for 0.6 s, a move every 5 ms
        x = 30.0 + (x - 29.0) % 12
        _move(w, x, 20)
        time.sleep(0.005)
    assert w.wait_idle(10)
    elapsed = time.monotonic() - t0
    # each preview takes >= 20 ms and is followed by >= max(50 ms, its duration) of rest
    assert seg.predict_calls <= elapsed / 0.07 + 1


def test_status_names_the_precision_the_segmenter_computes_in() -> None:
    w = SegmentationWidget(_image(), LABELS, segmenter=GatedSegmenter(precision="bf16"))
    try:
        assert w.wait_idle(10)
        w.auto_segment([*THREE, (36, 20)])
        assert "bf16" in w.status
    finally:
        w.close()


def test_click_while_its_preview_is_computed_commits_that_answer(rig: Any) -> None:
    w, seg, drawn = rig
    seg.hold = threading.Event()
    cx, cy = w.image_to_canvas(36, 20)
    w.handle_pointer("move", cx, cy)
    assert seg.started.wait(5)  # the preview for this very point is running ...
    w.handle_pointer("down", cx, cy)  # ... when the click lands there
    calls = len(seg.fourth)
    seg.hold.set()
    assert w.wait_idle(10)
    assert len(seg.fourth) == calls  # no second prediction: the click took the preview's answer
    np.testing.assert_array_equal(w.label_map == 1, _box(10, 36, 10, 30))
    assert all(m is None for m in drawn)  # never drawn as a preview after the click


def test_hop_trace_books_a_committed_preview_run_as_the_clicks_model_time(rig: Any) -> None:
    """The click that commits a running preview waits for that model run: the trace must say so (model start
    before the click was queued), not book the whole run as a queue wait with a 0 ms model (issue 13)."""
    w, seg, _drawn = rig
    w.assist.trace.on = True
    seg.hold = threading.Event()
    cx, cy = w.image_to_canvas(36, 20)
    w.handle_pointer("move", cx, cy)
    assert seg.started.wait(5)  # the preview for this very point is running ...
    w.handle_pointer("down", cx, cy)  # ... when the click lands there
    seg.hold.set()
    assert w.wait_idle(10)
    (auto,) = [r for r in w.assist.trace.records if r["kind"] == "auto"]
    assert auto["reused_preview"] is True
    assert auto["model_start"] <= auto["queued"] < auto["model_end"] <= auto["applied"]
    assert auto["dequeued"] >= auto["model_end"]  # the click's own job ran after the preview's run
