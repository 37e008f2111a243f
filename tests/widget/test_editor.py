"""The editor core without ipywidgets: edit rules, honest undo, the model's part, fill, kept histories."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from gt_widget.segment.base import Candidate, Prediction
from gt_widget.widget.editor import Editor, ModelRequest, Target, flood_region

SHAPE = (40, 50)


def _box(x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def _editor(mode: str = "semantic") -> Editor:
    ed = Editor(["person", "car"], mode)
    ed.load(ed.new_state(SHAPE, None, []))
    return ed


def _pred(mask: np.ndarray, score: float = 0.95, *others: np.ndarray) -> Prediction:
    cands = [Candidate(mask, score)] + [Candidate(o, 0.5) for o in others]
    return Prediction(mask, score, cands)


def test_the_editor_core_imports_no_ui_and_no_threads() -> None:
    """editor.py and the state it edits import neither ipywidgets/ipycanvas nor threading."""
    import gt_widget.widget.editor as editor_module
    import gt_widget.widget.state as state_module

    for module in (editor_module, state_module):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] in ("ipywidgets", "ipycanvas", "threading")}, imported


def test_a_model_answer_that_changes_nothing_is_still_one_undo_step() -> None:
    """Finding 3: auto-segmenting a patch inside a person with the same label recorded no step, so the
    next undo deleted the whole person."""
    ed = _editor()
    person = _box(5, 30, 5, 35)
    out = ed.apply_prediction(_pred(person), ModelRequest(ed.capture_target(), [(0, 0)] * 4, []))
    assert out.changed and len(ed.state.undo_stack) == 1
    patch = _box(10, 15, 10, 15)
    out = ed.apply_prediction(_pred(patch), ModelRequest(ed.capture_target(), [(0, 0)] * 4, []))
    assert not out.changed and out.recorded
    assert out.message == "nothing changed: those pixels are already 'person'"
    assert len(ed.state.undo_stack) == 2
    ed.undo()  # takes back the patch (nothing), never the person
    assert np.array_equal(ed.state.map == 1, person)
    ed.undo()
    assert not ed.state.map.any()


@pytest.mark.parametrize("action", ["brush", "polygon", "fill", "eraser"])
def test_every_manual_action_is_exactly_one_step_even_without_change(action: str) -> None:
    ed = _editor()
    ed.brush([(20, 20)], 30)  # everything is person now
    before = len(ed.state.undo_stack)
    if action == "brush":
        out = ed.brush([(10, 10), (20, 10)], 3)
    elif action == "polygon":
        out = ed.polygon([(5, 5), (20, 5), (10, 20)])
    elif action == "fill":
        out = ed.fill(3, 3)
    else:
        ed.clear()
        before += 1
        out = ed.brush([(10, 10)], 3, erase=True)
    assert not out.changed and "nothing changed" in out.message
    assert len(ed.state.undo_stack) == before + 1


def test_fill_takes_the_closed_region_only() -> None:
    ed = _editor()
    ring = _box(10, 30, 10, 30) & ~_box(12, 28, 12, 28)
    ed.state.map[ring] = 2  # a car outline
    out = ed.fill(20, 20)  # inside the ring
    assert out.changed
    assert np.array_equal(ed.state.map == 1, _box(12, 28, 12, 28))
    assert (ed.state.map[ring] == 2).all() and ed.state.map[0, 0] == 0
    ed.undo()
    assert not (ed.state.map == 1).any()
    ed.label = "car"
    ed.fill(0, 0)  # the outside joins the ring's label, the hole stays
    assert (ed.state.map == 2).sum() == SHAPE[0] * SHAPE[1] - 17 * 17


def test_flood_region_is_4_connected_and_refuses_outside_points() -> None:
    m = np.zeros((5, 5), np.uint8)
    m[np.eye(5, dtype=bool)] = 1  # a diagonal: 4-connectivity splits it into 5 regions
    box, crop = flood_region(m, 0, 0)  # type: ignore[misc]
    assert box == (0, 1, 0, 1) and crop.all()
    assert flood_region(m, 7, 1) is None


def test_a_refinement_after_an_edit_becomes_a_candidate() -> None:
    ed = _editor()
    first = _box(10, 20, 10, 20)
    ed.apply_prediction(_pred(first, 0.9, _box(11, 19, 11, 19)), ModelRequest(Target("person"), [(0, 0)] * 4, []))
    part = ed.live_part()
    assert part is not None
    refined = ModelRequest(Target("person"), [(0, 0)] * 4, [], replace=True, part=part, merge=True, serial=part.serial)
    # the user corrects the mask first (a click replaces the same part: its serial moves on)
    click = ModelRequest(Target("person"), [(0, 0)] * 4, [(15, 15, False)], replace=True, part=part)
    ed.apply_prediction(_pred(first & ~_box(14, 16, 14, 16)), click)
    out = ed.apply_prediction(_pred(_box(9, 21, 9, 21)), refined)
    assert not out.recorded and "candidate" in out.message
    assert len(ed.state.undo_stack) == 2  # the click was not overwritten or merged away
    assert not ed.state.map[15, 15]
    idx, _ = ed.next_candidate()
    assert idx == 1 and (ed.state.map[9:22, 9:22] == 1).all()


def test_a_refinement_in_time_joins_the_first_answers_step() -> None:
    ed = _editor()
    ed.apply_prediction(_pred(_box(10, 20, 10, 20)), ModelRequest(Target("person"), [(0, 0)] * 4, []))
    part = ed.live_part()
    assert part is not None
    req = ModelRequest(Target("person"), [(0, 0)] * 4, [], replace=True, part=part, merge=True, serial=part.serial)
    ed.apply_prediction(_pred(_box(8, 22, 8, 22)), req)
    assert len(ed.state.undo_stack) == 1 and (ed.state.map == 1).sum() == 15 * 15
    ed.undo()
    assert not ed.state.map.any()


def test_negative_click_knows_which_pixels_were_there_before() -> None:
    ed = _editor()
    ed.brush([(15, 15)], 3)  # person painted by hand
    ed.apply_prediction(_pred(_box(10, 30, 10, 30)), ModelRequest(Target("person"), [(0, 0)] * 4, []))
    assert ed.kept_before_part(15, 15) and not ed.kept_before_part(25, 25)


def test_pixels_labeled_outside_the_parts_box_count_as_labeled_before() -> None:
    """Finding 6 in the browser: a stroke beside the object (outside the part's box) kept its label after a
    negative click and the status said "mask corrected"."""
    ed = _editor()
    ed.brush([(40, 15)], 2)  # person painted by hand, beside the object
    ed.apply_prediction(_pred(_box(10, 30, 10, 30)), ModelRequest(Target("person"), [(0, 0)] * 4, []))
    assert ed.kept_before_part(40, 15) and not ed.kept_before_part(45, 45) and not ed.kept_before_part(-3, 500)


def test_instance_policy_keeps_queued_answers_together_and_status_is_current() -> None:
    ed = _editor("instance")
    t1 = ed.capture_target()
    t2 = ed.capture_target()  # made before the first answer: same new instance
    ed.apply_prediction(_pred(_box(1, 5, 1, 5)), ModelRequest(t1, [(0, 0)] * 4, []))
    ed.apply_prediction(_pred(_box(20, 25, 20, 25)), ModelRequest(t2, [(0, 0)] * 4, []))
    assert len(ed.state.instances) == 1 and ed.state.map[22, 22] == 1
    k = ed.add_instance("car")
    assert ed.instance_status() == f"2 instance(s); instance {k} (car) selected"
    ed.relabel_instance(1, "car")
    ed.select_instance(1)
    assert ed.instance_status() == "2 instance(s); instance 1 (car) selected"


def test_histories_bring_back_an_images_undo_steps_while_labels_match() -> None:
    ed = Editor(["a"])
    ed.open("img1", SHAPE)
    ed.brush([(5, 5)], 2)
    ed.brush([(15, 5)], 2)
    saved = ed.state.map.copy()
    ed.open("img2", SHAPE)
    assert ed.state.undo_stack == []
    state, kept = ed.open("img1", SHAPE, saved)
    assert kept == 2 and np.array_equal(state.map, saved)
    ed.undo()
    assert ed.state.map[5, 15] == 0 and ed.state.map[5, 5] == 1
    changed = saved.copy()
    changed[0, 0] = 1  # labels changed elsewhere (another tool wrote the file): no stale history
    _state, kept = ed.open("img1", SHAPE, changed)
    assert kept == 0


def test_histories_are_bounded_by_bytes() -> None:
    ed = Editor(["a"])
    ed.histories.max_bytes = 3 * SHAPE[0] * SHAPE[1] + 100
    for i in range(6):
        ed.open(f"img{i}", SHAPE)
    assert len(ed.histories._states) <= 3
