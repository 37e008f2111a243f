"""Mask geometry behind the recipes: extreme-point roles, consistency, blob removal, hole filling."""

from __future__ import annotations

import numpy as np
import pytest

from gt_widget.segment.recipes import (
    disc_mask,
    distance_to_mask,
    extreme_consistency,
    fill_small_holes,
    keep_components_near,
    mask_bbox,
    order_extreme_points,
)


def _ellipse(h: int = 100, w: int = 140) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx - 70) / 40.0) ** 2 + ((yy - 50) / 25.0) ** 2 <= 1.0


def test_order_extreme_points_assigns_each_role_once(rng: np.random.Generator) -> None:
    top, bottom, left, right = (70, 25), (70, 75), (30, 50), (110, 50)
    for _ in range(5):
        pts = np.array([top, bottom, left, right], float)[rng.permutation(4)]
        np.testing.assert_array_equal(order_extreme_points(pts), [top, bottom, left, right])
    # a point that is both top-most and left-most still takes only one role
    corner = np.array([(0, 0), (5, 9), (9, 5), (4, 4)], float)
    ordered = order_extreme_points(corner)
    assert sorted(map(tuple, ordered)) == sorted(map(tuple, corner))


def test_consistency_prefers_the_object_over_background_in_its_box() -> None:
    obj = _ellipse()
    ys, xs = np.nonzero(obj)
    pts = np.array([[70, ys.min()], [70, ys.max()], [xs.min(), 50], [xs.max(), 50]], float)
    box = mask_bbox(obj)
    assert box is not None
    inverse = np.zeros_like(obj)
    inverse[int(box[1]) : int(box[3]) + 1, int(box[0]) : int(box[2]) + 1] = True
    inverse &= ~obj  # "the background inside the box", upstream's failure
    assert extreme_consistency(obj, pts) > 0.99
    assert extreme_consistency(inverse, pts) < 0.6
    half = obj.copy()
    half[:, 70:] = False
    assert extreme_consistency(half, pts) < extreme_consistency(obj, pts) - 0.2
    assert extreme_consistency(np.zeros_like(obj), pts) == 0.0


def test_distance_to_mask_is_zero_inside_and_euclidean_outside() -> None:
    m = np.zeros((20, 20), bool)
    m[5:10, 5:10] = True
    d = distance_to_mask(m, np.array([[7, 7], [14, 7]], float))
    assert d[0] == 0.0 and d[1] == pytest.approx(5.0, abs=0.1)


def test_keep_components_near_drops_far_blobs_but_never_everything() -> None:
    m = np.zeros((60, 60), bool)
    m[10:20, 10:20] = True
    m[40:45, 40:45] = True
    kept = keep_components_near(m, np.array([[12.0, 12.0]]))
    assert kept[15, 15] and not kept[42, 42]
    fallback = keep_components_near(m, np.array([[30.0, 55.0]]), radius=2)
    assert fallback[15, 15] and not fallback[42, 42]  # none near: the largest blob stays


def test_fill_small_holes_keeps_real_holes() -> None:
    m = disc_mask((101, 101), np.array([[50.0, 50.0]]), 40)
    m[50, 50] = False  # a pinhole
    ring = m & ~disc_mask(m.shape, np.array([[50.0, 50.0]]), 20)
    filled = fill_small_holes(m)
    assert filled[50, 50]
    assert not fill_small_holes(ring)[50, 50]  # a ring's hole is ~25% of its area: kept


def test_local_edit_keeps_a_click_from_redrawing_everything() -> None:
    from gt_widget.segment.mobilesam_segmenter import local_edit

    prev = np.zeros((50, 50), bool)
    prev[10:40, 10:30] = True
    redrawn = np.zeros_like(prev)
    redrawn[10:40, 28:45] = True  # the model "fixed" the right edge but dropped the rest
    click = np.array([42.0, 25.0])
    out = local_edit(prev, redrawn, click, below=0.7)
    assert out[25, 42] and out[25, 15]  # the clicked part is added, the rest of the object stays
    assert np.array_equal(out, prev | redrawn)
    small_change = prev.copy()
    small_change[10:40, 30:32] = True
    assert local_edit(prev, small_change, np.array([31.0, 20.0]), below=0.7) is small_change
    ignored = np.zeros_like(prev)
    ignored[0:5, 0:5] = True  # the click is not in the change: leave it to the click guard
    assert local_edit(prev, ignored, click, below=0.7) is ignored


def test_zoom_crop_snaps_to_a_grid_and_stays_inside() -> None:
    from gt_widget.segment.mobilesam_segmenter import zoom_crop

    crop = zoom_crop(np.array([100.0, 50.0, 140.0, 90.0]), (480, 854), 0.4)
    x0, y0, x1, y1 = crop
    assert x0 % 16 == 0 and y0 % 16 == 0 and x0 <= 100 - 16 and x1 >= 140 + 16 and y1 <= 480
    assert zoom_crop(np.array([102.0, 52.0, 141.0, 88.0]), (480, 854), 0.4) == crop  # jitter reuses it
    assert zoom_crop(np.array([0.0, 0.0, 853.0, 479.0]), (480, 854), 0.4) == (0, 0, 854, 480)
