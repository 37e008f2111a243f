"""Random edit sequences through the widget's API: undo all / redo all replays every state exactly, ids stay
contiguous, and every state's Ground Truth answer decodes back to the same maps (hypothesis)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gt_widget.errors import PromptError
from gt_widget.groundtruth import formats
from gt_widget.widget import SegmentationWidget
from gt_widget.widget.testing import BoxSegmenter

H, W = 24, 32
LABELS = ["a", "b", "c"]
xs = st.integers(0, W - 1)
ys = st.integers(0, H - 1)
point = st.tuples(xs, ys)

op = st.one_of(
    st.tuples(st.just("brush"), st.lists(point, min_size=1, max_size=3), st.integers(1, 4)),
    st.tuples(st.just("erase"), st.lists(point, min_size=1, max_size=3), st.integers(1, 4)),
    st.tuples(st.just("polygon"), st.lists(point, min_size=3, max_size=5)),
    st.tuples(st.just("auto"), point, point),
    st.tuples(st.just("click"), point, st.booleans()),
    st.tuples(st.just("candidate")),
    st.tuples(st.just("label"), st.sampled_from(LABELS)),
    st.tuples(st.just("add_instance"), st.sampled_from(LABELS)),
    st.tuples(st.just("delete_instance"), st.integers(1, 4)),
    st.tuples(st.just("relabel_instance"), st.integers(1, 4), st.sampled_from(LABELS)),
    st.tuples(st.just("select_instance"), st.integers(1, 4)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("undo")),
    st.tuples(st.just("redo")),
)


def _apply(w: SegmentationWidget, o: tuple[Any, ...]) -> None:
    kind = o[0]
    n = len(w.instances)
    if kind == "brush":
        w.brush(o[1], radius=o[2])
    elif kind == "erase":
        w.erase(o[1], radius=o[2])
    elif kind == "polygon":
        w.polygon(o[1])
    elif kind == "auto":
        (x0, y0), (x1, y1) = o[1], o[2]
        before = w.label_map.copy()
        try:
            w.auto_segment([(x0, y0), (x1, y1), ((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)])
        except PromptError:  # degenerate points (e.g. all the same pixel) are refused and change nothing
            assert (w.label_map == before).all()
    elif kind == "click":
        if o[2] or w.editor.live_part() is not None:
            w.corrective_click(*o[1], positive=o[2])
    elif kind == "candidate":
        w.next_candidate()
    elif kind == "label":
        w.label = o[1]
    elif kind == "clear":
        w.clear()
    elif kind == "undo":
        w.undo()
    elif kind == "redo":
        w.redo()
    elif w.mode == "instance":
        if kind == "add_instance":
            w.add_instance(o[1])
        elif kind == "delete_instance" and o[1] <= n:
            w.delete_instance(w.instance_ids[o[1] - 1])
        elif kind == "relabel_instance" and o[1] <= n:
            w.relabel_instance(w.instance_ids[o[1] - 1], o[2])
        elif kind == "select_instance" and o[1] <= n:
            w.select_instance(w.instance_ids[o[1] - 1])


def _snap(w: SegmentationWidget) -> tuple[bytes, tuple[tuple[str, str], ...], tuple[int, ...]]:
    m, inst = w.snapshot()
    return m.tobytes(), tuple((i.label, i.color) for i in inst), tuple(w.instance_ids)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mode=st.sampled_from(["semantic", "instance"]), ops=st.lists(op, min_size=1, max_size=25))
def test_random_edits_replay_through_undo_and_redo(mode: str, ops: list[tuple[Any, ...]]) -> None:
    image = np.zeros((H, W, 3), np.uint8)
    w = SegmentationWidget(image, LABELS, mode=mode, segmenter=BoxSegmenter(shrink=1, click_radius=2))
    try:
        for o in ops:
            _apply(w, o)
            m, inst = w.snapshot()
            assert int(m.max()) <= (len(inst) if mode == "instance" else len(LABELS))
            if mode == "instance":
                assert len({i.color for i in inst}) == len(inst)
        # drop the redo branch, then walk the whole history back and forth
        states = [_snap(w)]
        while w.undo():
            states.append(_snap(w))
        for expected in reversed(states[:-1]):
            assert w.redo()
            assert _snap(w) == expected
        ans = w.to_answer()
        back = formats.read_answer(ans, LABELS)
        if mode == "instance":
            assert isinstance(back, formats.InstanceResult)
            assert np.array_equal(back.instance_map, w.instance_map)
        else:
            assert isinstance(back, formats.SemanticResult)
            assert np.array_equal(back.label_map, w.label_map)
    finally:
        w.close()
