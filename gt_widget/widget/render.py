"""What the browser sees: the view transform (zoom/pan) and the pixels sent to the canvas layers.

The kernel owns the full-resolution image and label map; the browser only receives canvas-sized pictures:
- layer 0, the photo: RGB (ipycanvas sends it as JPEG), resampled kernel-side from an image pyramid, so a
  10000x8000 photo costs one canvas-sized JPEG per view change, never the full image;
- layer 1, the label overlay: lossless palette pictures: runs along rows once the page can draw them
  (``runs.py``: no image decode in the page), else a palette PNG (one byte per pixel: ``palette_png``, ~20x
  faster to encode than the RGBA PNG ipycanvas' ``put_image_data`` would make; RGBA only past 127 map
  values), sampled *nearest* from the label map at each canvas pixel centre when zoomed in (crisp edges; the layer also has
  ``image_smoothing_enabled = False``), and as the largest value of each canvas pixel's block when zoomed
  out (thin strokes on huge images stay visible);
  after an edit only the canvas rectangle of the changed image box is re-sent;
- layer 2, preview: the live preview of the 4th extreme point, a light fill with an outline, sent as the
  canvas rectangle of the mask's bounding box (``preview_index``, sent like the overlay);
- layer 3, interaction: points, clicks, the polygon being drawn and the brush outline (vector commands).

Canvas -> image mapping (what an end-to-end test needs to click a given image pixel): canvas pixel
coordinates ``(cx, cy)`` (as ipycanvas reports mouse events: CSS offset scaled to the canvas' own size)
map to image pixel coordinates ``x = (cx - offset_x) / scale - 0.5``, ``y = (cy - offset_y) / scale - 0.5``;
the inverse is ``cx = offset_x + (x + 0.5) * scale``. ``SegmentationWidget.view`` exposes ``scale`` and the
offsets, and ``image_to_canvas`` / ``canvas_to_image`` do the arithmetic.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
from ipycanvas import Canvas, MultiCanvas, hold_canvas
from ipycanvas.canvas import COMMANDS
from PIL import Image

from gt_widget.palette import hex_to_rgb
from gt_widget.widget import runs

Rect = tuple[int, int, int, int]
"""Canvas rectangle ``(x0, y0, x1, y1)`` in whole canvas pixels, half-open."""

MIN_ZOOM = 0.25
"""Smallest zoom relative to fit-to-canvas."""
MAX_SCALE = 32.0
"""Largest magnification: canvas pixels per image pixel."""


@dataclass
class Viewport:
    """Zoom/pan state. ``scale`` = canvas px per image px; ``offset_x/y`` = canvas position of the image's
    top-left corner (the outer edge of pixel (0, 0))."""

    image_w: int
    image_h: int
    canvas_w: int
    canvas_h: int
    scale: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    @classmethod
    def for_image(cls, image_w: int, image_h: int, max_w: int, max_h: int) -> Viewport:
        """A canvas no larger than ``max_w`` x ``max_h`` with the image's aspect, fitted."""
        s = min(max_w / image_w, max_h / image_h)
        cw = max(1, min(max_w, round(image_w * s)))
        ch = max(1, min(max_h, round(image_h * s)))
        view = cls(image_w, image_h, cw, ch)
        view.fit()
        return view

    @property
    def fit_scale(self) -> float:
        """Scale at which the whole image fits the canvas."""
        return min(self.canvas_w / self.image_w, self.canvas_h / self.image_h)

    def fit(self) -> None:
        """Show the whole image, centred."""
        self.scale = self.fit_scale
        self.offset_x = (self.canvas_w - self.image_w * self.scale) / 2
        self.offset_y = (self.canvas_h - self.image_h * self.scale) / 2

    def to_image(self, cx: float, cy: float) -> tuple[float, float]:
        """Canvas pixel coordinates -> image (x, y) pixel coordinates (pixel centres at integers)."""
        return (cx - self.offset_x) / self.scale - 0.5, (cy - self.offset_y) / self.scale - 0.5

    def to_canvas(self, x: float, y: float) -> tuple[float, float]:
        """Image (x, y) -> canvas pixel coordinates."""
        return self.offset_x + (x + 0.5) * self.scale, self.offset_y + (y + 0.5) * self.scale

    def inside(self, x: float, y: float) -> bool:
        """Whether image point (x, y) lies on the image."""
        return -0.5 <= x <= self.image_w - 0.5 and -0.5 <= y <= self.image_h - 0.5

    def zoom(self, factor: float, center: tuple[float, float] | None = None) -> None:
        """Multiply the scale by ``factor`` keeping canvas point ``center`` (default: canvas centre) fixed."""
        cx, cy = center if center is not None else (self.canvas_w / 2, self.canvas_h / 2)
        new = min(MAX_SCALE, max(self.fit_scale * MIN_ZOOM, self.scale * float(factor)))
        ux, uy = (cx - self.offset_x) / self.scale, (cy - self.offset_y) / self.scale
        self.scale = new
        self.offset_x, self.offset_y = cx - ux * new, cy - uy * new
        self._clamp()

    def pan(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) canvas pixels."""
        self.offset_x += dx
        self.offset_y += dy
        self._clamp()

    def _clamp(self) -> None:
        # keep at least a quarter of the canvas showing image, so the user can never lose it
        w, h = self.image_w * self.scale, self.image_h * self.scale
        mx, my = min(w, self.canvas_w) / 4, min(h, self.canvas_h) / 4
        self.offset_x = min(self.canvas_w - mx, max(mx - w, self.offset_x))
        self.offset_y = min(self.canvas_h - my, max(my - h, self.offset_y))

    def image_rect(self) -> Rect | None:
        """Canvas rectangle covered by the image (clipped to the canvas), None if off-screen."""
        return self.box_rect((0, self.image_h, 0, self.image_w))

    def box_rect(self, box: tuple[int, int, int, int]) -> Rect | None:
        """Canvas rectangle covering image box ``(y0, y1, x0, x1)``, in whole pixels, clipped to the canvas."""
        y0, y1, x0, x1 = box
        cx0 = max(0, math.floor(self.offset_x + x0 * self.scale))
        cy0 = max(0, math.floor(self.offset_y + y0 * self.scale))
        cx1 = min(self.canvas_w, math.ceil(self.offset_x + x1 * self.scale))
        cy1 = min(self.canvas_h, math.ceil(self.offset_y + y1 * self.scale))
        if cx0 >= cx1 or cy0 >= cy1:
            return None
        return cx0, cy0, cx1, cy1

    def sample_indices(self, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """Image row/column index under each canvas pixel centre of ``rect`` (-1 outside the image)."""
        cx0, cy0, cx1, cy1 = rect
        xs = np.floor((np.arange(cx0, cx1) + 0.5 - self.offset_x) / self.scale).astype(np.int64)
        ys = np.floor((np.arange(cy0, cy1) + 0.5 - self.offset_y) / self.scale).astype(np.int64)
        xs[(xs < 0) | (xs >= self.image_w)] = -1
        ys[(ys < 0) | (ys >= self.image_h)] = -1
        return ys, xs


def color_lut(colors: Sequence[str], opacity: float, highlight: int = 0) -> np.ndarray:
    """(256, 4) uint8 RGBA per map value: 0 transparent, i -> ``colors[i - 1]`` at ``opacity``.

    ``highlight`` (a map value, 0 = none) is drawn more opaque (the selected instance).
    """
    lut = np.zeros((256, 4), np.uint8)
    alpha = round(min(1.0, max(0.0, opacity)) * 255)
    for i, color in enumerate(colors):
        lut[i + 1, :3] = hex_to_rgb(color)
        lut[i + 1, 3] = alpha
    if highlight and alpha:
        lut[highlight, 3] = min(255, round(alpha + (255 - alpha) * 0.35))
    return lut


def _block_bounds(c0: int, c1: int, offset: float, scale: float, size: int) -> np.ndarray:
    """For canvas pixels c0..c1-1: the first image pixel whose centre lies in each, plus the end (clipped)."""
    u = (np.arange(c0, c1 + 1, dtype=np.float64) - offset) / scale
    return np.clip(np.ceil(u - 0.5), 0, size).astype(np.int64)


def _block_max(index_map: np.ndarray, view: Viewport, rect: Rect) -> np.ndarray:
    """Per canvas pixel, the largest map value among the image pixels whose centres it covers (zoomed out:
    a 1-pixel stroke on a 10000-pixel-wide image stays visible instead of falling between samples)."""
    cx0, cy0, cx1, cy1 = rect
    bx = _block_bounds(cx0, cx1, view.offset_x, view.scale, view.image_w)
    by = _block_bounds(cy0, cy1, view.offset_y, view.scale, view.image_h)
    out = np.zeros((cy1 - cy0, cx1 - cx0), np.uint8)
    if bx[0] >= bx[-1] or by[0] >= by[-1]:
        return out
    crop = index_map[by[0] : by[-1], bx[0] : bx[-1]]
    valid_x, valid_y = bx[1:] > bx[:-1], by[1:] > by[:-1]
    cols = np.maximum.reduceat(crop, np.minimum(bx[:-1] - bx[0], crop.shape[1] - 1), axis=1)
    cols[:, ~valid_x] = 0
    both = np.maximum.reduceat(cols, np.minimum(by[:-1] - by[0], crop.shape[0] - 1), axis=0)
    both[~valid_y, :] = 0
    return both


def overlay_rgba(index_map: np.ndarray, view: Viewport, rect: Rect, lut: np.ndarray) -> np.ndarray:
    """RGBA (h, w, 4) of canvas ``rect``, transparent outside the image. Zoomed in (scale >= 1) each canvas
    pixel takes the colour of the image pixel under its centre (nearest: crisp edges); zoomed out it takes
    the largest map value it covers, so thin strokes never vanish from the view."""
    return lut[sample_values(index_map, view, rect)]


def sample_values(index_map: np.ndarray, view: Viewport, rect: Rect) -> np.ndarray:
    """The map value shown at each canvas pixel of ``rect`` (see ``overlay_rgba``), 0 outside the image."""
    if view.scale < 1.0:
        return _block_max(index_map, view, rect)
    ys, xs = view.sample_indices(rect)
    vals = index_map[np.maximum(ys, 0)][:, np.maximum(xs, 0)]  # rows, then columns: ~8x faster than np.ix_
    vals[ys < 0, :] = 0
    vals[:, xs < 0] = 0
    return vals


OVERLAY_STYLES: tuple[str, ...] = ("fill+outline", "outline", "hidden")
"""What the label layer shows; the ``o`` key cycles through them."""


def outline_lut(colors: Sequence[str], darken: float = 0.55) -> np.ndarray:
    """(256, 4) RGBA per map value for contours: each colour darkened by ``darken``, opaque."""
    lut = np.zeros((256, 4), np.uint8)
    for i, color in enumerate(colors):
        lut[i + 1, :3] = [round(c * darken) for c in hex_to_rgb(color)]
        lut[i + 1, 3] = 255
    return lut


def styled_overlay(
    index_map: np.ndarray, view: Viewport, rect: Rect, fill: np.ndarray, line: np.ndarray, style: str
) -> np.ndarray:
    """RGBA of canvas ``rect`` in ``style`` (one of ``OVERLAY_STYLES``): the fill and/or a 1-canvas-pixel
    contour (pixels whose 4-neighbour shows another value) in the darker ``line`` colours."""
    cx0, cy0, cx1, cy1 = rect
    if style == "hidden":
        return np.zeros((cy1 - cy0, cx1 - cx0, 4), np.uint8)
    big = (max(0, cx0 - 1), max(0, cy0 - 1), min(view.canvas_w, cx1 + 1), min(view.canvas_h, cy1 + 1))
    vals = sample_values(index_map, view, big)
    pad = np.pad(vals, 1, mode="edge")
    edge = (vals > 0) & (
        (pad[:-2, 1:-1] != vals) | (pad[2:, 1:-1] != vals) | (pad[1:-1, :-2] != vals) | (pad[1:-1, 2:] != vals)
    )
    rgba = fill[vals] if style == "fill+outline" else np.zeros((*vals.shape, 4), np.uint8)
    rgba[edge] = line[vals[edge]]
    ox, oy = cx0 - big[0], cy0 - big[1]
    return np.ascontiguousarray(rgba[oy : oy + cy1 - cy0, ox : ox + cx1 - cx0])


EDGE = 128
"""In a palette overlay, index ``v`` is the fill of map value v and ``EDGE + v`` its contour."""


def styled_overlay_index(index_map: np.ndarray, view: Viewport, rect: Rect, style: str) -> np.ndarray | None:
    """``styled_overlay`` as uint8 (h, w) palette indices (0 transparent, v the fill of map value v,
    ``EDGE`` + v its contour; see ``overlay_palette``); None when a shown value is >= ``EDGE``."""
    cx0, cy0, cx1, cy1 = rect
    if style == "hidden":
        return np.zeros((cy1 - cy0, cx1 - cx0), np.uint8)
    big = (max(0, cx0 - 1), max(0, cy0 - 1), min(view.canvas_w, cx1 + 1), min(view.canvas_h, cy1 + 1))
    vals = sample_values(index_map, view, big)
    if vals.size and int(vals.max()) >= EDGE:
        return None
    pad = np.pad(vals, 1, mode="edge")
    edge = (vals > 0) & (
        (pad[:-2, 1:-1] != vals) | (pad[2:, 1:-1] != vals) | (pad[1:-1, :-2] != vals) | (pad[1:-1, 2:] != vals)
    )
    idx = vals.copy() if style == "fill+outline" else np.zeros_like(vals)
    idx[edge] = vals[edge] + EDGE
    ox, oy = cx0 - big[0], cy0 - big[1]
    return np.ascontiguousarray(idx[oy : oy + cy1 - cy0, ox : ox + cx1 - cx0])


def overlay_palette(fill: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(256, 4) RGBA palette of ``styled_overlay_index``: fill colours, then contour colours from ``EDGE``."""
    pal = np.zeros((256, 4), np.uint8)
    pal[1:EDGE] = fill[1:EDGE]
    pal[EDGE + 1 :] = line[1:EDGE]
    return pal


def palette_png(index: np.ndarray, palette: np.ndarray) -> bytes:
    """Lossless PNG of uint8 (h, w) ``index`` through ``palette`` ((256, 4) RGBA; alpha in a tRNS chunk).

    One byte per pixel and fast deflate: ~1 ms where ipycanvas' RGBA PNG of the same overlay took ~20 ms
    (benchmarks/README.md, issue 13); decoded by the browser to exactly the RGBA of ``palette[index]``."""
    im = Image.fromarray(np.ascontiguousarray(index, np.uint8), "P")
    im.putpalette(palette[:, :3].tobytes(), "RGB")
    out = io.BytesIO()
    im.save(out, "PNG", transparency=palette[:, 3].tobytes(), compress_level=1)
    return out.getvalue()


def put_png(layer: Canvas, png: bytes, x: int, y: int) -> None:
    """Draw encoded image ``png`` at canvas (x, y) of ``layer``: ipycanvas' own putImageData command, as
    ``Canvas.put_image_data`` sends it after encoding (so it joins the ``drawing()`` batch)."""
    layer._canvas_manager.send_draw_command(layer, COMMANDS["putImageData"], [x, y], [png])


class ImagePyramid:
    """The photo at factors 1, 2, 4, ... (area-averaged), so zoomed-out views resample a small copy."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.levels: list[np.ndarray] = [rgb]

    def level(self, scale: float) -> tuple[np.ndarray, int]:
        """Coarsest level still at least as detailed as ``scale`` canvas px per image px, and its factor."""
        f = 1
        while f * 2 * scale <= 1.0 and min(self.levels[-1].shape[:2]) > 64:
            f *= 2
            idx = f.bit_length() - 1
            if idx >= len(self.levels):
                prev = self.levels[-1]
                h, w = prev.shape[:2]
                self.levels.append(cv2.resize(prev, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA))
        return self.levels[f.bit_length() - 1], f


BACKDROP = (236, 236, 236)
"""Canvas colour around the image."""


def photo_rgb(pyramid: ImagePyramid, view: Viewport, rect: Rect) -> np.ndarray:
    """RGB (h, w, 3) of canvas ``rect``, bilinear from the right pyramid level, backdrop outside the image."""
    src, f = pyramid.level(view.scale)
    cx0, cy0, cx1, cy1 = rect
    k = 1.0 / (view.scale * f)
    # destination pixel i (centre cx0 + i + 0.5) -> source pixel-centre coordinate in level f
    m = np.array(
        [[k, 0.0, (cx0 + 0.5 - view.offset_x) * k - 0.5], [0.0, k, (cy0 + 0.5 - view.offset_y) * k - 0.5]], np.float64
    )
    interp = cv2.INTER_NEAREST if view.scale * f >= 3 else cv2.INTER_LINEAR
    return cv2.warpAffine(
        src,
        m,
        (cx1 - cx0, cy1 - cy0),
        flags=interp | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BACKDROP,
    )


RENDER_LOCK = threading.RLock()
"""ipycanvas' ``hold_canvas`` batches through one global manager, so draws from the UI thread and the model
threads must not interleave."""

_DEPTH = [0]
"""Nesting depth of ``drawing()`` (guarded by RENDER_LOCK)."""


@contextmanager
def drawing() -> Iterator[None]:
    """Batch every draw command inside into one comm message (nested uses join the outer batch)."""
    with RENDER_LOCK:
        if _DEPTH[0]:
            _DEPTH[0] += 1
            try:
                yield
            finally:
                _DEPTH[0] -= 1
            return
        _DEPTH[0] = 1
        try:
            with hold_canvas():
                yield
        finally:
            _DEPTH[0] = 0


class CanvasSketch:
    """``tools.base.Sketch`` on an ipycanvas layer."""

    def __init__(self, layer: Canvas) -> None:
        self.layer = layer

    def circle(self, cx: float, cy: float, r: float, fill: str | None = None, stroke: str | None = None) -> None:
        if fill is not None:
            self.layer.fill_style = fill
            self.layer.fill_circle(cx, cy, r)
        if stroke is not None:
            self.layer.stroke_style = stroke
            self.layer.stroke_circle(cx, cy, r)

    def lines(self, points: Sequence[tuple[float, float]], color: str, dashed: bool = False) -> None:
        self.layer.stroke_style = color
        self.layer.set_line_dash([6, 4] if dashed else [])
        self.layer.stroke_lines(list(points))
        self.layer.set_line_dash([])

    def rect(self, x: float, y: float, w: float, h: float, fill: str | None = None, stroke: str | None = None) -> None:
        if fill is not None:
            self.layer.fill_style = fill
            self.layer.fill_rect(x, y, w, h)
        if stroke is not None:
            self.layer.stroke_style = stroke
            self.layer.stroke_rect(x, y, w, h)


PREVIEW_ALPHA = 0.3
"""Opacity of the live preview's fill (its outline is opaque)."""


def preview_index(mask: np.ndarray, view: Viewport, color: str) -> tuple[np.ndarray, np.ndarray, Rect] | None:
    """The preview picture of bool (H, W) ``mask`` as (uint8 indices, (256, 4) RGBA palette, canvas rect): the
    canvas rectangle of its bounding box, a light fill in ``color`` (1) with an opaque outline (2), 0
    transparent; None when the mask is empty or out of view."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    box = (max(0, int(rows[0]) - 1), int(rows[-1]) + 2, max(0, int(cols[0]) - 1), int(cols[-1]) + 2)
    rect = view.box_rect(box)
    if rect is None:
        return None
    rgb = hex_to_rgb(color)
    pal = np.zeros((256, 4), np.uint8)
    pal[1], pal[2] = (*rgb, round(255 * PREVIEW_ALPHA)), (*rgb, 255)
    values = sample_values(np.ascontiguousarray(mask, bool).view(np.uint8), view, rect)
    edge = values.astype(bool) & ~cv2.erode(
        values, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0
    ).astype(bool)
    return np.where(edge, np.uint8(2), values).astype(np.uint8), pal, rect


class Layers:
    """The canvas' named layers: ``photo`` (0), ``overlay`` (1, the labels), ``preview`` (2, the live
    preview), ``interaction`` (3, marks)."""

    def __init__(self, width: int, height: int) -> None:
        self.canvas = MultiCanvas(4, width=width, height=height)
        self.canvas.add_class("gt-widget-canvas")
        self.photo, self.overlay = self.canvas[0], self.canvas[1]
        self.preview, self.interaction = self.canvas[2], self.canvas[3]
        self.sketch = CanvasSketch(self.interaction)
        self._preview_rect: Rect | None = None
        self.runs = False
        """Send palette pictures as runs (``runs.py``): set once the page can draw them."""

    def put_index(self, layer: Canvas, index: np.ndarray, palette: np.ndarray, x: int, y: int) -> None:
        """Draw uint8 (h, w) ``index`` through ``palette`` at canvas (x, y) of ``layer`` (inside ``drawing()``):
        as palette runs when the page draws them, else as a palette PNG."""
        put_png(layer, runs.encode(index, palette) if self.runs else palette_png(index, palette), x, y)

    def draw_preview(self, mask: np.ndarray | None, view: Viewport, color: str) -> None:
        """Show bool (H, W) ``mask`` as the live preview (None: erase it)."""
        with drawing():
            if self._preview_rect is not None:
                x0, y0, x1, y1 = self._preview_rect
                self.preview.clear_rect(x0, y0, x1 - x0, y1 - y0)
                self._preview_rect = None
            picture = preview_index(mask, view, color) if mask is not None else None
            if picture is not None:
                index, palette, rect = picture
                self.preview.image_smoothing_enabled = False
                self.put_index(self.preview, index, palette, rect[0], rect[1])
                self._preview_rect = rect

    def resize(self, view: Viewport) -> None:
        """Fit the canvas to ``view`` (a narrower notebook cell scales it down with CSS)."""
        c = self.canvas
        if (c.width, c.height) != (view.canvas_w, view.canvas_h):
            c.width, c.height = view.canvas_w, view.canvas_h
        c.layout.width = f"{view.canvas_w}px"
        c.layout.max_width = "100%"
        c.layout.height = "auto"

    def draw_photo(self, pyramid: ImagePyramid, view: Viewport) -> None:
        """Repaint the photo layer."""
        with drawing():
            self.photo.clear()
            self.photo.put_image_data(photo_rgb(pyramid, view, (0, 0, view.canvas_w, view.canvas_h)), 0, 0)

    def draw_overlay(
        self,
        index_map: np.ndarray,
        view: Viewport,
        luts: tuple[np.ndarray, np.ndarray],
        style: str,
        box: tuple[int, int, int, int] | None = None,
    ) -> None:
        """Repaint the labels (all, or the canvas rectangle of image ``box`` grown by a pixel for contours)."""
        if box is not None:
            y0, y1, x0, x1 = box
            box = (max(0, y0 - 1), y1 + 1, max(0, x0 - 1), x1 + 1)
        rect = view.image_rect() if box is None else view.box_rect(box)
        layer = self.overlay
        with drawing():
            layer.image_smoothing_enabled = False
            if box is None:
                layer.clear()
            if rect is None:
                return
            x0c, y0c, x1c, y1c = rect
            if box is not None:
                layer.clear_rect(x0c, y0c, x1c - x0c, y1c - y0c)
            index = styled_overlay_index(index_map, view, rect, style)
            if index is None:  # map values past the palette: RGBA (ipycanvas encodes it as PNG)
                rgba = styled_overlay(index_map, view, rect, luts[0], luts[1], style)
                if rgba[..., 3].any():
                    layer.put_image_data(rgba, x0c, y0c)
                return
            palette = overlay_palette(*luts)
            if index.any():
                self.put_index(layer, index, palette, x0c, y0c)

    def begin_interaction(self) -> CanvasSketch:
        """Clear the interaction layer and return the sketch to draw on (inside ``drawing()``)."""
        self.interaction.clear()
        self.interaction.line_width = 2
        return self.sketch
