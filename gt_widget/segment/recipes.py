"""Mask geometry shared by the segmenters: extreme-point bookkeeping, consistency scores, clean-up.

Conventions: points are (x, y) pixels of the original image; masks are bool (H, W). Nothing here runs a
model; every function is cheap (numpy / OpenCV / scipy on one mask) and deterministic.
"""

from __future__ import annotations

from itertools import permutations

import cv2
import numpy as np

_PERMS = np.array(list(permutations(range(4))), np.intp)


def order_extreme_points(points: np.ndarray) -> np.ndarray:
    """The 4 points reordered as (top, bottom, left, right).

    Points come in any order; we pick the assignment that maximises
    ``-y_top + y_bottom - x_left + x_right`` (so a point that is both top-most and left-most still goes
    to exactly one role).
    """
    pts = np.asarray(points, np.float64).reshape(4, 2)
    cand = pts[_PERMS]  # (24, 4, 2): roles top, bottom, left, right
    gain = -cand[:, 0, 1] + cand[:, 1, 1] - cand[:, 2, 0] + cand[:, 3, 0]
    return cand[int(np.argmax(gain))]


def mask_bbox(mask: np.ndarray) -> np.ndarray | None:
    """Inclusive XYXY box of the True pixels, or None for an empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return np.array([xs[0], ys[0], xs[-1], ys[-1]], np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two inclusive XYXY pixel boxes."""
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter / (area_a + area_b - inter))


def extreme_consistency(mask: np.ndarray, points: np.ndarray, tolerance: float = 4.0) -> float:
    """How well ``mask`` agrees with 4 extreme points, in 0..1 (1 = perfectly).

    Three cues: the mask's bounding box should equal the points' box (box IoU); each point should lie on
    the mask (distance to the nearest mask pixel, soft-thresholded at ``tolerance`` px, so clicks a few
    pixels off are not punished); and the mask should extend *inwards* from each point (fraction of a
    short ray from the point towards the box's inside that is on the mask), which is what tells the
    object from "the background inside the box" -- both touch the points, only the object lies inward.
    """
    box = mask_bbox(mask)
    if box is None:
        return 0.0
    pts = order_extreme_points(np.asarray(points, np.float64).reshape(4, 2))
    target = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
    dist = distance_to_mask(mask, pts)
    near = np.exp(-np.maximum(dist - tolerance, 0.0) / max(tolerance, 1.0))
    side = max(target[2] - target[0], target[3] - target[1], 1.0)
    length = max(2.5 * tolerance, 0.05 * side)
    inward = inward_cover(mask, pts, length)
    return box_iou(box, target) * float(np.mean(0.5 * near + 0.5 * inward))


def inward_cover(mask: np.ndarray, ordered: np.ndarray, length: float) -> np.ndarray:
    """For (top, bottom, left, right) points: fraction of the ``length``-px ray going inwards (down, up,
    right, left) from each point that lies on ``mask``."""
    h, w = mask.shape
    steps = np.arange(0.0, max(length, 1.0) + 1e-9, 1.0)
    out = np.empty(4)
    for i, (d, (x, y)) in enumerate(zip(((0, 1), (0, -1), (1, 0), (-1, 0)), ordered, strict=True)):
        xs = np.clip(np.rint(x + d[0] * steps).astype(np.intp), 0, w - 1)
        ys = np.clip(np.rint(y + d[1] * steps).astype(np.intp), 0, h - 1)
        out[i] = float(mask[ys, xs].mean())
    return out


def distance_to_mask(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) from each (x, y) point to the nearest True pixel of ``mask`` (0 inside)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    h, w = mask.shape
    xi = np.clip(np.rint(pts[:, 0]).astype(np.intp), 0, w - 1)
    yi = np.clip(np.rint(pts[:, 1]).astype(np.intp), 0, h - 1)
    if not mask.any():
        return np.full(len(pts), float(np.hypot(h, w)))
    # distance transform of the background: 0 on the mask, growing away from it
    dt = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    return np.asarray(dt[yi, xi], np.float64)


def keep_components_near(mask: np.ndarray, points: np.ndarray, radius: float = 6.0) -> np.ndarray:
    """Drop the connected blobs of ``mask`` that come within ``radius`` px of none of ``points``.

    Stray blobs far from every extreme point / positive click are almost always background the model
    grabbed; if no blob is near any point the largest one is kept (never return an empty mask for a
    non-empty one).
    """
    if not mask.any():
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    h, w = mask.shape
    keep = np.zeros(n, bool)
    r = int(np.ceil(radius))
    for x, y in pts:
        x0, x1 = max(int(x) - r, 0), min(int(x) + r + 1, w)
        y0, y1 = max(int(y) - r, 0), min(int(y) + r + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        keep[np.unique(labels[y0:y1, x0:x1])] = True
    keep[0] = False
    if not keep.any():
        keep[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))] = True
    return np.asarray(keep[labels])


def fill_small_holes(mask: np.ndarray, max_fraction: float = 0.01) -> np.ndarray:
    """Fill holes smaller than ``max_fraction`` of the mask's area (real holes, e.g. a ring, stay)."""
    from scipy import ndimage  # imported here: scipy.ndimage costs ~0.3 CPU-s at start-up, off by default

    if not mask.any():
        return mask
    filled = ndimage.binary_fill_holes(mask)
    holes = filled & ~mask
    if not holes.any():
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=4)
    limit = max_fraction * float(mask.sum())
    small = np.zeros(n, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] <= limit
    return np.asarray(mask | small[labels])


def disc_mask(shape: tuple[int, int], points: np.ndarray, radius: float) -> np.ndarray:
    """Bool (H, W) with a filled disc of ``radius`` px around each (x, y) point."""
    out = np.zeros(shape, np.uint8)
    r = max(round(radius), 0)
    for x, y in np.asarray(points, np.float64).reshape(-1, 2):
        cv2.circle(out, (round(x), round(y)), r, 1, thickness=-1)
    return out.astype(bool)
