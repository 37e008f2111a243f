"""Two-stage auto-segment: a fast full-image answer is painted at once, a slower zoomed pass replaces it
in the SAME undo step, and is dropped when the user edits before it arrives."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from gt_widget.segment.base import Prediction, StagedPrediction
from gt_widget.widget import SegmentationWidget
from gt_widget.widget.testing import BoxSegmenter

LABELS = ["cat", "dog"]
EXTREME = [(20, 10), (20, 30), (10, 20), (34, 20)]  # box x 10..34, y 10..30


class ZoomingSegmenter(BoxSegmenter):
    """A ``StagedSegmenter``: its first answer is the box shrunk by 3 px, its refined one (held until
    ``hold`` is released, run by the widget's background thread) the exact box."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        super().__init__()
        self.hold = hold
        self.calls: list[str] = []

    def predict_staged(self, *args: Any, **kwargs: Any) -> StagedPrediction:
        pred = super().predict(*args, **kwargs)
        self.calls.append("first")
        shrunk = pred.candidates[1].mask  # the box shrunk by `shrink` px per side
        first = Prediction(mask=shrunk, score=pred.score, candidates=list(pred.candidates), state=pred.state)

        def refine() -> Prediction:
            self.calls.append("refined")
            if self.hold is not None and not self.hold.wait(timeout=30):
                raise TimeoutError("hold never released")
            return pred

        return StagedPrediction(first, refine)


def _image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (60, 80, 3), dtype=np.uint8)


def _box(x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    m = np.zeros((60, 80), bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


@pytest.fixture
def widget_and_seg() -> Any:
    hold = threading.Event()
    seg = ZoomingSegmenter(hold)
    w = SegmentationWidget(_image(), LABELS, segmenter=seg)
    assert w.wait_idle(10)
    yield w, seg, hold
    hold.set()
    w.close()


def test_fast_answer_first_then_refined_in_one_undo_step(widget_and_seg: Any) -> None:
    w, seg, hold = widget_and_seg
    assert w.auto_segment(EXTREME, wait=False) is None
    # the fast answer is painted while the zoomed pass is still held
    for _ in range(200):
        if (w.label_map == 1).any():
            break
        threading.Event().wait(0.01)
    np.testing.assert_array_equal(w.label_map == 1, _box(12, 32, 12, 28))
    hold.set()
    assert w.wait_idle(10)
    np.testing.assert_array_equal(w.label_map == 1, _box(10, 34, 10, 30))
    assert seg.calls == ["first", "refined"]
    w.undo()  # ONE step takes the whole auto-segment back
    assert not w.label_map.any()
    w.redo()
    np.testing.assert_array_equal(w.label_map == 1, _box(10, 34, 10, 30))


def test_refinement_is_dropped_when_the_user_edits_first(widget_and_seg: Any) -> None:
    w, _seg, hold = widget_and_seg
    w.auto_segment(EXTREME, wait=False)
    for _ in range(200):
        if (w.label_map == 1).any():
            break
        threading.Event().wait(0.01)
    w.brush([(60, 50)], radius=2)  # the user moves on before the zoomed pass lands
    hold.set()
    assert w.wait_idle(10)
    np.testing.assert_array_equal(w.label_map[:40, :50] == 1, _box(12, 32, 12, 28)[:40, :50])
    w.undo()
    w.undo()
    assert not w.label_map.any()


def test_wait_true_returns_the_refined_mask(widget_and_seg: Any) -> None:
    w, _seg, hold = widget_and_seg
    hold.set()
    mask = w.auto_segment(EXTREME, wait=True)
    assert mask is not None
    np.testing.assert_array_equal(mask, _box(10, 34, 10, 30))


def _first_painted(w: Any) -> None:
    for _ in range(200):
        if (w.label_map == 1).any():
            return
        threading.Event().wait(0.01)


def test_refining_mark_and_escape_keeps_the_first_answer(widget_and_seg: Any) -> None:
    w, _seg, hold = widget_and_seg
    w.auto_segment(EXTREME, wait=False)
    _first_painted(w)
    for _ in range(200):  # the interactive job that painted the first answer ends a moment later
        if "refining" in w.toolbar.busy.value:
            break
        threading.Event().wait(0.01)
    assert w.refining and "refining" in w.toolbar.busy.value and "gt-spinner" in w.toolbar.busy.value
    w.handle_key_down("Escape")
    assert not w.refining and "kept the first answer" in w.status
    hold.set()
    assert w.wait_idle(10)
    np.testing.assert_array_equal(w.label_map == 1, _box(12, 32, 12, 28))
    assert w.toolbar.busy.value == "" and w.history == (1, 0)


def test_refined_mask_arriving_after_a_click_is_offered_as_a_candidate(widget_and_seg: Any) -> None:
    w, _seg, hold = widget_and_seg
    w.auto_segment(EXTREME, wait=False)
    _first_painted(w)
    w.corrective_click(40, 20, positive=True, wait=False)  # the user corrects before the refined pass lands
    for _ in range(200):
        if w.history == (2, 0):
            break
        threading.Event().wait(0.01)
    hold.set()
    assert w.wait_idle(10)
    assert w.history == (2, 0) and w.label_map[20, 40] == 1  # the click stays
    assert "candidate" in w.status
    n = len(w.editor.live_part().prediction.candidates)  # type: ignore[union-attr]
    for _ in range(n - 1):
        w.next_candidate()
    np.testing.assert_array_equal(w.label_map == 1, _box(10, 34, 10, 30))  # the refined mask, last candidate
