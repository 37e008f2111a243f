"""Masks <-> YOLO segmentation polygons, one polygon per object, as Ultralytics reads them.

The YOLO segmentation label format (docs.ultralytics.com/datasets/segment/) is one line per object,
``<class> x1 y1 x2 y2 ...``, coordinates normalised to [0, 1] by the image width and height. Ultralytics
reads a line back into a mask by scaling to pixels, casting to int32 and ``cv2.fillPoly`` of that one
polygon (``ultralytics.data.utils.polygon2mask``; during training after resampling every polygon to 1000
points, ``ultralytics.utils.ops.resample_segments``). An object with holes or several parts therefore has
to be one polygon: as Ultralytics' own COCO converter does (``merge_multi_segment``), we join the rings
with zero-width bridges walked there and back, which cancel in the fill, so holes stay empty and parts
stay separate; the only trace is the 1-pixel bridge line that ``fillPoly`` paints.

Pixel convention: a contour vertex is the centre of a boundary pixel, (x, y); we write ``(x + 0.5) / W``
so that Ultralytics' int32 cast (truncation) lands on x exactly, for any float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from gt_widget.errors import FormatError


def mask_rings(mask: np.ndarray) -> list[np.ndarray]:
    """Outer boundaries and hole boundaries of a bool (H, W) mask as (N, 2) int (x, y) arrays, largest outer
    ring first (OpenCV ``findContours``, ``RETR_CCOMP``, chain-approximated: only corner pixels kept)."""
    m = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8))
    if m.ndim != 2:
        raise FormatError(f"a mask must be 2-D (H, W), got shape {m.shape}")
    contours, _hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    rings = [c.reshape(-1, 2).astype(np.int64) for c in contours if len(c)]
    if not rings:
        return []
    areas = [abs(cv2.contourArea(r.astype(np.float32))) + len(r) for r in rings]
    first = int(np.argmax(areas))
    return [rings[first], *[r for i, r in enumerate(rings) if i != first]]


def join_rings(rings: Sequence[np.ndarray]) -> np.ndarray:
    """One closed (N, 2) path visiting every ring. The rings are linked by a minimum spanning tree of their
    closest-point distances (short bridges, so little is painted); each bridge is walked there and back, so
    it cancels in an even-odd or non-zero fill."""
    rings = [np.asarray(r) for r in rings]
    if not rings:
        return np.zeros((0, 2), np.int64)
    n = len(rings)
    # closest pair of vertices between every two rings
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for a in range(n):
        for b in range(a + 1, n):
            d = ((rings[a][:, None, :] - rings[b][None, :, :]) ** 2).sum(-1)
            flat = int(np.argmin(d))
            best[(a, b)] = (float(d.flat[flat]), flat // d.shape[1], flat % d.shape[1])
    # Prim's algorithm from ring 0; children[a][i] = rings hung off vertex i of ring a, entered at vertex j
    children: list[dict[int, list[tuple[int, int]]]] = [{} for _ in range(n)]
    in_tree = {0}
    while len(in_tree) < n:
        _cost, a, b, i, j = min(
            (best[(min(a, b), max(a, b))][0], a, b, *_ends(best, a, b))
            for a in in_tree
            for b in range(n)
            if b not in in_tree
        )
        children[a].setdefault(i, []).append((b, j))
        in_tree.add(b)

    def walk(ring: int, start: int) -> list[np.ndarray]:
        r = rings[ring]
        out: list[np.ndarray] = []
        for k in [*range(start, len(r)), *range(0, start + 1)]:  # around the ring, back to its entry vertex
            out.append(r[k][None])
            for child, entry in children[ring].pop(k, []):
                out.extend(walk(child, entry))
                out.append(r[k][None])  # back along the bridge
        return out

    return np.concatenate(walk(0, 0))


def _ends(best: dict[tuple[int, int], tuple[float, int, int]], a: int, b: int) -> tuple[int, int]:
    """(vertex on ring a, vertex on ring b) of the closest pair between rings a and b."""
    _d, i, j = best[(min(a, b), max(a, b))]
    return (i, j) if a < b else (j, i)


def mask_to_polygon(mask: np.ndarray) -> list[float]:
    """The YOLO polygon of one object's bool (H, W) mask: [x1, y1, x2, y2, ...] normalised (module doc);
    empty when the mask is empty."""
    h, w = np.asarray(mask).shape[:2]
    path = join_rings(mask_rings(mask))
    if len(path) == 0:
        return []
    if len(path) < 3:  # a 1- or 2-pixel object: repeat a vertex so the line still has 3 points
        path = np.concatenate([path, path[-1:], path[-1:]])[:3]
    xy = (path.astype(np.float64) + 0.5) / np.array([w, h], np.float64)
    return [float(v) for v in np.clip(xy, 0.0, 1.0).ravel()]


def polygon_to_mask(coords: Sequence[float], shape: tuple[int, int], *, resample: int | None = None) -> np.ndarray:
    """Bool (H, W) mask of one YOLO polygon, by Ultralytics' reading rule (scale, optional resampling to
    ``resample`` points by vertex index as ``resample_segments`` does, int32 cast, ``cv2.fillPoly``)."""
    h, w = shape
    pts = np.asarray(coords, np.float64)
    if pts.size < 6 or pts.size % 2:
        raise FormatError(f"a YOLO polygon needs an even number (>= 6) of coordinates, got {pts.size}")
    xy = pts.reshape(-1, 2) * np.array([w, h], np.float64)
    if resample:
        closed = np.concatenate([xy, xy[:1]])
        t = np.linspace(0, len(closed) - 1, resample)
        idx = np.arange(len(closed))
        xy = np.stack([np.interp(t, idx, closed[:, 0]), np.interp(t, idx, closed[:, 1])], axis=1)
    out = np.zeros((h, w), np.uint8)
    cv2.fillPoly(out, [xy.astype(np.int32)], color=1)
    return out.astype(bool)


def format_line(class_index: int, coords: Sequence[float], digits: int = 6) -> str:
    """One label-file line: ``<class> x1 y1 ...`` with ``digits`` decimals (6: 0.01 px on a 10000 px side)."""
    return " ".join([str(int(class_index)), *(f"{v:.{digits}f}" for v in coords)])


def parse_line(line: str, where: str) -> tuple[int, list[float]]:
    """(class index, coordinates) of one label-file line; ``FormatError`` naming ``where`` when malformed."""
    parts = line.split()
    try:
        cls = int(parts[0])
        coords = [float(v) for v in parts[1:]]
    except (ValueError, IndexError):
        raise FormatError(f"{where}: expected '<class> x1 y1 x2 y2 ...', got {line[:60]!r}") from None
    if len(coords) == 4:
        raise FormatError(f"{where}: a box line (detection), not a segmentation polygon; export with segments")
    if len(coords) < 6 or len(coords) % 2 or any(not 0.0 <= v <= 1.0 for v in coords):
        raise FormatError(f"{where}: a polygon needs >= 3 normalised (0..1) x y pairs, got {len(coords)} values")
    return cls, coords
