"""A revisited image keeps its prompt log whenever the editor kept its history, redo-only history included.

Undo everything on an image, go to another one and come back: the editor gives the image its history back
(nothing to undo, everything to redo), so a redo there must be recorded in the image's log, after the events
it redoes; a new log would hold a lone "redo" and replay to nothing.
"""

from __future__ import annotations

from pathlib import Path

from gt_widget.promptlog import PromptLog, log_path
from gt_widget.resegment import replay
from gt_widget.widget.testing import BoxSegmenter
from tests.support.sessions import box_session, make_images


def test_redo_after_revisiting_an_image_with_only_redo_history_is_logged_in_its_log(tmp_path: Path) -> None:
    make_images(tmp_path / "in", n=2)
    s = box_session(tmp_path / "in", tmp_path / "out")
    w = s.widget
    w.brush([(5, 5), (40, 5)], radius=3)
    painted = w.label_map.copy()
    assert w.undo() and w.history == (0, 1)
    s.next()
    s.prev()
    assert w.history == (0, 1)  # the editor kept the image's history: only redo is left
    assert w.redo() and (w.label_map == painted).all()
    log = w.prompts.log
    assert log is not None
    assert [e["kind"] for e in log.events] == ["stroke", "undo", "redo"]
    assert s.flush()
    saved = PromptLog.load(log_path(s.job_dir, 0))  # the session's saved log is that one too
    again = replay(saved, w.image, lambda _model: BoxSegmenter())
    assert (again.index_map == w.label_map).all()
    s.close()


def test_a_redone_model_edit_is_still_the_one_a_click_refines(tmp_path: Path) -> None:
    make_images(tmp_path / "in", n=2, size=(80, 60))
    s = box_session(tmp_path / "in", tmp_path / "out")
    w = s.widget
    w.auto_segment([(10, 30), (40, 10), (70, 30), (40, 50)])
    assert w.undo()
    s.next()
    s.prev()
    assert w.history == (0, 1) and w.redo()
    w.corrective_click(40, 54, positive=True)  # corrects the redone auto-segment (its part is live again)
    log = w.prompts.log
    assert log is not None
    model = [e for e in log.events if e["kind"] == "model"]
    assert len(model) == 2 and model[1]["refines"] == model[0]["seq"]
    again = replay(log, w.image, lambda _model: BoxSegmenter())
    assert (again.index_map == w.label_map).all()
    s.close()


def test_a_widget_given_back_an_image_with_only_redo_history_keeps_its_log() -> None:
    import numpy as np

    from gt_widget.widget import SegmentationWidget

    a = np.full((40, 60, 3), 90, np.uint8)
    b = np.full((40, 60, 3), 160, np.uint8)
    w = SegmentationWidget(a, ["cat", "dog"], segmenter=BoxSegmenter())
    w.brush([(5, 5), (40, 5)], radius=3)
    painted = w.label_map.copy()
    assert w.undo()
    w.load_image(b)
    w.load_image(a, initial_value=np.zeros((40, 60), np.uint8))  # its saved labels: nothing, as undone
    assert w.history == (0, 1) and w.redo()
    log = w.prompts.log
    assert log is not None and [e["kind"] for e in log.events] == ["stroke", "undo", "redo"]
    again = replay(log, a, lambda _model: BoxSegmenter())
    assert (again.index_map == painted).all()
    w.close()
