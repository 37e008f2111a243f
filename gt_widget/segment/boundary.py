"""Boundary refinement at full resolution: edge-aware filtering of the decoder's logits.

MobileSAM's decoder answers with 256x256 logits for its 1024-px input, so on a full 854x480 frame one
logit covers ~3.3 image pixels and the thresholded, bilinearly upsampled boundary cannot follow an edge
finer than that. ``refine_boundary`` re-decides only the pixels in a thin band around the mask's boundary
with a guided filter (He, Sun and Tang, 2010): the object's soft map (the sigmoid of the upsampled logits)
is fitted, in every small window, by a linear function of the image's colours, so the 0.5 level of the
result snaps to colour edges while flat regions keep the model's answer.

Conventions: masks are bool (H, W); ``logits`` float (H, W) at the same resolution (the model's upsampled
logits, 0 = the decision level); ``image`` uint8 RGB (H, W, 3). Pure numpy / OpenCV, deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class BoundarySettings:
    """``radius``: guided-filter window radius (px); ``eps``: its regulariser on colour variance (image in
    0..1; larger = smoother, less edge-following); ``band``: only pixels within this many px of the
    mask's boundary may change; ``temperature``: logits are divided by it before the sigmoid (larger =
    softer map, the image decides more)."""

    radius: int = 4
    eps: float = 1e-3
    band: int = 3
    temperature: float = 1.0


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window (border replicated), same shape, float32."""
    return np.asarray(cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REPLICATE))


def guided_filter(guide: np.ndarray, p: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter of the float map ``p`` (H, W) with the colour ``guide`` (H, W, 3) float32
    in 0..1; returns float32 (H, W)."""
    r = max(1, int(radius))
    g = guide.astype(np.float32, copy=False)
    p = p.astype(np.float32, copy=False)
    mean_i = _box(g, r)  # (H, W, 3)
    mean_p = _box(p, r)
    mean_ip = _box(g * p[..., None], r)
    cov_ip = mean_ip - mean_i * mean_p[..., None]
    # 3x3 colour covariance per pixel (symmetric: 6 distinct entries)
    idx = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    var: dict[tuple[int, int], np.ndarray] = {}
    for u, v in idx:
        var[u, v] = _box(g[..., u] * g[..., v], r) - mean_i[..., u] * mean_i[..., v]
    s00, s01, s02 = var[0, 0] + eps, var[0, 1], var[0, 2]
    s11, s12, s22 = var[1, 1] + eps, var[1, 2], var[2, 2] + eps
    # inverse of the symmetric 3x3 by cofactors
    c00 = s11 * s22 - s12 * s12
    c01 = s02 * s12 - s01 * s22
    c02 = s01 * s12 - s02 * s11
    c11 = s00 * s22 - s02 * s02
    c12 = s01 * s02 - s00 * s12
    c22 = s00 * s11 - s01 * s01
    det = s00 * c00 + s01 * c01 + s02 * c02
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    cx, cy, cz = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a0 = (c00 * cx + c01 * cy + c02 * cz) / det
    a1 = (c01 * cx + c11 * cy + c12 * cz) / det
    a2 = (c02 * cx + c12 * cy + c22 * cz) / det
    b = mean_p - a0 * mean_i[..., 0] - a1 * mean_i[..., 1] - a2 * mean_i[..., 2]
    ma0, ma1, ma2 = _box(a0, r), _box(a1, r), _box(a2, r)
    q = (ma0 * g[..., 0] + ma1 * g[..., 1] + ma2 * g[..., 2]) + _box(b, r)
    return np.asarray(q, np.float32)


def boundary_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Bool (H, W): pixels within ``width`` px (square neighbourhood) of the mask's boundary, both sides."""
    k = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    m = mask.astype(np.uint8)
    return np.asarray(cv2.dilate(m, k) != cv2.erode(m, k))


def _runs(occupied: np.ndarray, merge_gap: int) -> list[tuple[int, int]]:
    """[start, stop) runs of True in the 1-D ``occupied``, runs closer than ``merge_gap`` merged."""
    idx = np.flatnonzero(occupied)
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) > merge_gap)
    starts = np.concatenate(([idx[0]], idx[cut + 1]))
    stops = np.concatenate((idx[cut], [idx[-1]])) + 1
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


STRIP = 48
"""Rows per strip of the band processed at once (see ``refine_boundary``)."""
MERGE_GAP = 48
"""Band columns of one strip closer than this are filtered in one rectangle."""


def refine_boundary(
    mask: np.ndarray, logits: np.ndarray, image: np.ndarray, settings: BoundarySettings | None = None
) -> np.ndarray:
    """``mask`` with the pixels near its boundary re-decided by a guided filter of the logits.

    Where ``mask`` disagrees with ``logits > 0`` (an edit applied after the model, e.g. the click guard's
    local edit) the soft map takes the mask's value, so such edits are kept.

    The result is that of ``guided_filter`` run on the whole frame (border replicated at the image's
    edges; see ``tests/segment/test_boundary.py``), computed only near the band: the band is cut into
    strips of ``STRIP`` rows and, in each, runs of columns; each piece is filtered on its rectangle grown
    by the filter's support (2 x radius: two box filters of radius r), clipped to the image. Box means
    only see that support, so the pieces give the full-frame values; the cost follows the outline.
    """
    s = settings or BoundarySettings()
    mask = np.asarray(mask, bool)
    if mask.shape != logits.shape or image.shape[:2] != mask.shape:
        raise ValueError(f"mask {mask.shape}, logits {logits.shape} and image {image.shape[:2]} must match")
    if s.band <= 0:
        return mask
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return mask
    cols = np.flatnonzero(mask.any(axis=0))
    bw = int(s.band)
    # the band lies within `band` px of the mask's bounding box; 2 x band of context makes it exact
    my0, my1 = max(int(rows[0]) - 2 * bw, 0), min(int(rows[-1]) + 2 * bw + 1, h)
    mx0, mx1 = max(int(cols[0]) - 2 * bw, 0), min(int(cols[-1]) + 2 * bw + 1, w)
    band = boundary_band(mask[my0:my1, mx0:mx1], bw)
    r = max(1, int(s.radius))
    sup = 2 * r
    inv_t = max(s.temperature, 1e-6)
    out = mask.copy()
    for sy0 in range(0, band.shape[0], STRIP):
        strip = band[sy0 : sy0 + STRIP]
        for cx0, cx1 in _runs(np.asarray(strip.any(axis=0)), MERGE_GAP):
            ry0, ry1 = my0 + sy0, my0 + sy0 + strip.shape[0]  # target rows / cols (image coordinates)
            rx0, rx1 = mx0 + cx0, mx0 + cx1
            y0, y1 = max(ry0 - sup, 0), min(ry1 + sup, h)  # + the filter's support, clipped
            x0, x1 = max(rx0 - sup, 0), min(rx1 + sup, w)
            lg = np.asarray(logits[y0:y1, x0:x1], np.float32)
            mk = mask[y0:y1, x0:x1]
            p = 1.0 / (1.0 + np.exp(-np.clip(lg / inv_t, -30.0, 30.0)))
            p = np.where((lg > 0) == mk, p, mk.astype(np.float32))
            guide = np.asarray(image[y0:y1, x0:x1, :3], np.float32) * (1.0 / 255.0)
            q = guided_filter(guide, p, r, float(s.eps))[ry0 - y0 : ry1 - y0, rx0 - x0 : rx1 - x0]
            b = strip[:, cx0:cx1]
            region = out[ry0:ry1, rx0:rx1]
            region[b] = q[b] > 0.5
    return out
