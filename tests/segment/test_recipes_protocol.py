"""The benchmark protocol itself (benchmarks/protocol.py): extreme points, jitter, IoU, corrective clicks."""

from __future__ import annotations

import numpy as np

from benchmarks import protocol as P


def test_extreme_points_break_ties_with_the_median_pixel() -> None:
    m = np.zeros((10, 12), bool)
    m[2, 3:8] = True  # top row: x 3..7 -> median 5
    m[3:8, 1:10] = True  # left column x=1: y 3..7 -> 5; right x=9 -> 5; bottom row y=7 x 1..9 -> 5
    np.testing.assert_array_equal(P.extreme_points(m), [[5, 2], [5, 7], [1, 5], [9, 5]])
    m2 = np.zeros((5, 5), bool)
    m2[1, 1:3] = True  # an even tie picks the lower middle pixel, a real foreground pixel
    assert tuple(P.extreme_points(m2)[0]) == (1, 1)


def test_jitter_is_seeded_bounded_and_inside_the_image() -> None:
    pts = np.array([[0.0, 0.0], [99.0, 49.0], [50.0, 25.0], [3.0, 47.0]])
    a = P.jitter(pts, (50, 100), seed=7)
    np.testing.assert_array_equal(a, P.jitter(pts, (50, 100), seed=7))
    assert not np.array_equal(a, P.jitter(pts, (50, 100), seed=8))
    assert np.all(np.abs(a - pts) <= 5.0)
    assert a[:, 0].min() >= 0 and a[:, 0].max() <= 99 and a[:, 1].min() >= 0 and a[:, 1].max() <= 49


def test_iou_ignores_void() -> None:
    gt = np.zeros((4, 4), bool)
    gt[:2] = True
    pred = gt.copy()
    pred[2] = True
    void = np.zeros_like(gt)
    assert P.iou(pred, gt, void) == 8 / 12
    void[2] = True
    assert P.iou(pred, gt, void) == 1.0


def test_next_click_targets_the_interior_of_the_largest_error() -> None:
    gt = np.zeros((40, 40), bool)
    gt[5:35, 5:35] = True
    pred = gt.copy()
    pred[5:35, 20:35] = False  # a big miss on the right half
    pred[0:3, 0:3] = True  # a small false alarm
    x, y, positive = P.next_click(pred, gt, np.zeros_like(gt)) or (0, 0, False)
    assert positive and 24 <= x <= 30 and 12 <= y <= 27  # on the miss's centre line
    assert P.next_click(gt, gt, np.zeros_like(gt)) is None


def test_click_trace_counts_the_four_extreme_points_and_caps_at_20() -> None:
    gt = np.zeros((20, 20), bool)
    gt[5:15, 5:15] = True
    empty = np.zeros_like(gt)
    never = P.click_trace(lambda clicks, st: (empty, st), empty, None, gt, empty)
    assert never.noc(0.9) == P.MAX_CLICKS and len(never.ious) == P.MAX_CLICKS - 4 + 1
    at_once = P.click_trace(lambda clicks, st: (gt, st), gt, None, gt, empty)
    assert at_once.noc(0.85) == 4 and at_once.noc(0.9) == 4
    second = P.click_trace(lambda clicks, st: (gt, st), empty, None, gt, empty)
    assert second.noc(0.9) == 5
