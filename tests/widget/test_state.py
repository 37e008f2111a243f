"""LabelState: exact brush/polygon pixels, diff-based undo/redo, instance bookkeeping (no widgets)."""

from __future__ import annotations

import numpy as np
import pytest

from gt_widget.errors import LabelError
from gt_widget.widget.state import (
    LabelState,
    Part,
    WidgetError,
    check_labels,
    mask_box,
    paint_part,
    polygon_footprint,
    replace_part,
    stroke_footprint,
)


def _disc(shape: tuple[int, int], x: float, y: float, r: float) -> np.ndarray:
    gy, gx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (gx - x) ** 2 + (gy - y) ** 2 <= r * r


def _full(fp: tuple[tuple[int, int, int, int], np.ndarray] | None, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    if fp is not None:
        (y0, y1, x0, x1), m = fp
        out[y0:y1, x0:x1] = m
    return out


@pytest.mark.parametrize("r", [0.5, 1, 2.5, 7, 12.3])
@pytest.mark.parametrize("center", [(20, 15), (20.4, 15.6), (0, 0), (39, 29)])
def test_single_point_paints_exactly_the_disc(r: float, center: tuple[float, float]) -> None:
    shape = (30, 40)
    got = _full(stroke_footprint([center], r, shape), shape)
    assert np.array_equal(got, _disc(shape, center[0], center[1], r))


def test_stroke_is_union_of_discs_along_the_segment() -> None:
    shape = (50, 60)
    got = _full(stroke_footprint([(5, 5), (50, 40)], 3, shape), shape)
    # every disc centred on the segment is inside; a brute-force capsule equals it exactly
    gy, gx = np.mgrid[0:50, 0:60].astype(float)
    a, b = np.array([5.0, 5.0]), np.array([50.0, 40.0])
    d = b - a
    t = np.clip(((gx - a[0]) * d[0] + (gy - a[1]) * d[1]) / (d @ d), 0, 1)
    ref = (gx - a[0] - t * d[0]) ** 2 + (gy - a[1] - t * d[1]) ** 2 <= 9
    assert np.array_equal(got, ref)
    for s in np.linspace(0, 1, 20):
        p = a + s * d
        assert got[_disc(shape, p[0], p[1], 3)].all()


def test_stroke_outside_image_is_clipped_or_empty() -> None:
    assert stroke_footprint([(-50, -50)], 3, (10, 10)) is None
    fp = stroke_footprint([(-1, 5)], 2, (10, 10))
    assert fp is not None and _full(fp, (10, 10))[5, 0] and _full(fp, (10, 10)).sum() == 4  # (0,4..6),(1,5)


def test_polygon_rectangle_is_exact_and_triangle_close_to_area() -> None:
    shape = (40, 50)
    rect = _full(polygon_footprint([(10, 10), (30, 10), (30, 20), (10, 20)], shape), shape)
    ref = np.zeros(shape, bool)
    ref[10:21, 10:31] = True
    assert np.array_equal(rect, ref)
    tri = _full(polygon_footprint([(0, 0), (39, 0), (0, 39)], shape), shape)
    assert tri[5, 5] and not tri[35, 35]
    assert abs(int(tri.sum()) - 39 * 39 / 2) < 2 * 39 + 2  # boundary pixels only


def test_labels_are_validated() -> None:
    for bad, needle in [([], "empty"), (["a", "a"], "duplicate"), ("cat", "not one string"), ([""], "blank")]:
        with pytest.raises(LabelError, match=needle):
            check_labels(bad)  # type: ignore[arg-type]
    with pytest.raises(LabelError, match="BACKGROUND"):
        check_labels(["BACKGROUND"])


def _stroke(st: LabelState, pts: list[tuple[float, float]], r: float, value: int) -> bool:
    rec = st.begin("brush")
    fp = stroke_footprint(pts, r, st.shape)
    assert fp is not None
    rec.paint(fp[0], fp[1], value)
    return st.commit(rec) is not None


def test_sixty_undo_redo_steps_replay_exactly(rng: np.random.Generator) -> None:
    st = LabelState((64, 80), ["a", "b", "c"])
    snapshots = [st.map.copy()]
    while len(snapshots) < 61:
        x, y = rng.uniform(0, 79), rng.uniform(0, 63)
        end = (x + rng.uniform(-9, 9), y + rng.uniform(-9, 9))
        if _stroke(st, [(x, y), end], rng.uniform(1, 6), int(rng.integers(0, 4))):
            snapshots.append(st.map.copy())
    assert len(st.undo_stack) == 60
    for i in range(60, 0, -1):
        assert np.array_equal(st.map, snapshots[i])
        assert st.undo() is not None
    assert np.array_equal(st.map, snapshots[0]) and st.undo() is None
    for i in range(1, 61):
        assert st.redo() is not None
        assert np.array_equal(st.map, snapshots[i])
    assert st.redo() is None
    # a new edit after undo drops the redo branch
    st.undo()
    _stroke(st, [(1, 1)], 1, 1)
    assert not st.redo_stack


def test_history_stores_small_diffs_not_copies() -> None:
    st = LabelState((4000, 5000), ["a"], max_history=100)
    for i in range(60):
        _stroke(st, [(100 + 50 * i, 200), (100 + 50 * i, 900)], 10, 1)
    # a full copy per step would be 60 * 20 MB; compressed crops are tiny
    assert st.history_bytes() < 2_000_000
    for _ in range(60):
        st.undo()
    assert not st.map.any()


def test_history_limit_drops_oldest() -> None:
    st = LabelState((10, 10), ["a"], max_history=50)
    for i in range(70):
        _stroke(st, [(i % 10, i // 10 % 10)], 0.5, 1)
    assert len(st.undo_stack) == 50


def test_unchanged_edit_is_not_a_step() -> None:
    st = LabelState((10, 10), ["a"])
    _stroke(st, [(5, 5)], 2, 1)
    rec = st.begin("brush")
    fp = stroke_footprint([(5, 5)], 2, st.shape)
    assert fp is not None
    rec.paint(fp[0], fp[1], 1)  # same pixels, same value
    assert st.commit(rec) is None and len(st.undo_stack) == 1


def test_recorder_grows_region_and_keeps_original_values() -> None:
    st = LabelState((30, 30), ["a", "b"])
    st.map[:, :] = 2
    original = st.map.copy()
    rec = st.begin("brush")
    for x in range(2, 28, 3):  # a stroke growing its box step by step, overlapping itself
        fp = stroke_footprint([(x, x)], 3, st.shape)
        assert fp is not None
        rec.paint(fp[0], fp[1], 1)
    edit = st.commit(rec)
    assert edit is not None
    st.undo()
    assert np.array_equal(st.map, original)


def test_replace_part_restores_what_the_old_mask_covered() -> None:
    st = LabelState((40, 40), ["a", "b"])
    st.map[0:40, 0:10] = 2  # label b on the left
    rec = st.begin("auto")
    big = np.zeros((40, 40), bool)
    big[5:30, 5:30] = True  # overwrites part of b
    paint_part(st, rec, big, 1)
    assert rec.box is not None and rec.before is not None
    part = Part(value=1, box=rec.box, before=rec.before.copy(), serial=0)
    st.commit(rec)
    small = np.zeros((40, 40), bool)
    small[20:35, 20:35] = True  # bigger in another direction, smaller overall
    rec = st.begin("click")
    replace_part(st, rec, part, small)
    st.commit(rec)
    expected = np.zeros((40, 40), np.uint8)
    expected[:, 0:10] = 2
    expected[small] = 1
    assert np.array_equal(st.map, expected)
    st.undo()
    assert (st.map[5:30, 5:30] == 1).all() and (st.map[0:5, 0:10] == 2).all()
    assert mask_box(st.map == 1) == (5, 30, 5, 30)


def test_instances_add_relabel_delete_and_undo() -> None:
    st = LabelState((20, 20), ["cat", "dog"], mode="instance")
    rec = st.begin("add")
    assert st.create_instance(rec, "cat") == 1
    st.commit(rec)
    rec = st.begin("add")
    assert st.create_instance(rec, "dog") == 2
    st.commit(rec)
    rec = st.begin("add")
    assert st.create_instance(rec, "cat") == 3
    st.commit(rec)
    assert [i.color for i in st.instances] == ["#2ca02c", "#1f77b4", "#ff7f0e"]
    st.map[0:5] = 1
    st.map[5:10] = 2
    st.map[10:15] = 3
    before = st.map.copy()
    rec = st.begin("delete")
    st.delete_instance(rec, 2)
    st.commit(rec)
    assert [(i.label, i.color) for i in st.instances] == [("cat", "#2ca02c"), ("cat", "#ff7f0e")]
    assert (st.map[5:10] == 0).all() and (st.map[10:15] == 2).all() and (st.map[0:5] == 1).all()
    lm = st.label_map()
    assert (lm[10:15] == 1).all() and (lm[0:5] == 1).all()
    # a new instance takes the first free colour, not a used one
    rec = st.begin("add")
    st.create_instance(rec, "dog")
    st.commit(rec)
    assert st.instances[-1].color == "#1f77b4"
    st.undo()
    st.undo()
    assert np.array_equal(st.map, before) and [i.label for i in st.instances] == ["cat", "dog", "cat"]
    with pytest.raises(WidgetError, match=r"1\.\.3"):
        st.check_instance(4)
    with pytest.raises(WidgetError, match="unknown label"):
        st.create_instance(st.begin("x"), "cow")


def test_frozen_parts_are_small_and_thaw_exactly() -> None:
    from gt_widget.segment.base import Candidate, Prediction
    from gt_widget.widget.state import freeze_part, thaw_part

    h, w = 2000, 3000
    masks = []
    for k in range(6):
        m = np.zeros((h, w), bool)
        m[100 + k : 1500 - k, 200 + 3 * k : 2500] = True
        masks.append(m)
    pred = Prediction(masks[0], 0.9, [Candidate(m, 0.9 - 0.1 * i) for i, m in enumerate(masks)], state="logits")
    before = np.random.default_rng(0).integers(0, 3, (1400, 2300), dtype=np.uint8)
    part = Part(value=2, box=(100, 1500, 200, 2500), before=before, serial=3, extreme_points=[(1.0, 2.0)] * 4)
    part.prediction, part.clicks, part.candidate = pred, [(5.0, 6.0, True)], 2
    frozen = freeze_part(part)
    assert frozen.nbytes < 3_000_000  # 6 full-size masks (36 MB as bool) + a 3 MB crop, compressed
    back = thaw_part(frozen, serial=9)
    assert back.serial == 9 and back.box == part.box and back.clicks == part.clicks and back.candidate == 2
    assert np.array_equal(back.before, before) and back.prediction.state == "logits"
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(back.prediction.candidates, pred.candidates, strict=True))
    assert np.array_equal(back.prediction.mask, masks[0]) and back.prediction.candidates[3].score == pytest.approx(0.6)
