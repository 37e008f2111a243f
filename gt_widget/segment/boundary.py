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
    a = np.stack([a0, a1, a2], axis=-1)
    q = (_box(a, r) * g).sum(axis=-1) + _box(b, r)
    return np.asarray(q, np.float32)


def boundary_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Bool (H, W): pixels within ``width`` px (square neighbourhood) of the mask's boundary, both sides."""
    k = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    m = mask.astype(np.uint8)
    return np.asarray(cv2.dilate(m, k) != cv2.erode(m, k))


def refine_boundary(
    mask: np.ndarray, logits: np.ndarray, image: np.ndarray, settings: BoundarySettings | None = None
) -> np.ndarray:
    """``mask`` with the pixels near its boundary re-decided by a guided filter of the logits.

    Where ``mask`` disagrees with ``logits > 0`` (an edit applied after the model, e.g. the click guard's
    local edit) the soft map takes the mask's value, so such edits are kept. Only the bounding box of the
    band (plus the filter radius) is filtered, so the cost follows the object's outline, not the image.
    """
    s = settings or BoundarySettings()
    mask = np.asarray(mask, bool)
    if mask.shape != logits.shape or image.shape[:2] != mask.shape:
        raise ValueError(f"mask {mask.shape}, logits {logits.shape} and image {image.shape[:2]} must match")
    if not mask.any() or mask.all() or s.band <= 0:
        return mask
    band = boundary_band(mask, int(s.band))
    ys = np.flatnonzero(band.any(axis=1))
    xs = np.flatnonzero(band.any(axis=0))
    r = max(1, int(s.radius))
    h, w = mask.shape
    y0, y1 = max(int(ys[0]) - r, 0), min(int(ys[-1]) + r + 1, h)
    x0, x1 = max(int(xs[0]) - r, 0), min(int(xs[-1]) + r + 1, w)
    lg = np.asarray(logits[y0:y1, x0:x1], np.float32)
    mk = mask[y0:y1, x0:x1]
    p = 1.0 / (1.0 + np.exp(-np.clip(lg / max(s.temperature, 1e-6), -30.0, 30.0)))
    p = np.where((lg > 0) == mk, p, mk.astype(np.float32))
    guide = np.asarray(image[y0:y1, x0:x1, :3], np.float32) * (1.0 / 255.0)
    q = guided_filter(guide, p, r, float(s.eps))
    out = mask.copy()
    b = band[y0:y1, x0:x1]
    region = out[y0:y1, x0:x1]
    region[b] = q[b] > 0.5
    return out
