"""The canvas side of the widget: the view (zoom/pan), what each layer shows, and canvas events -> tools.

Owns the ``render.Layers``, the ``Viewport``, the photo pyramid, the overlay style and opacity, and the
pointer position. Drawing reads the editor's state; pointer events go to the active tool of the host
(``SegmentationWidget``), which edits through the editor. Coordinates: canvas pixels as ipycanvas reports
them; image pixels through ``Viewport``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gt_widget.widget.render import OVERLAY_STYLES, ImagePyramid, Layers, Viewport, color_lut, drawing, outline_lut
from gt_widget.widget.state import Box, WidgetError
from gt_widget.widget.tools import Pointer

if TYPE_CHECKING:
    from gt_widget.widget.widget import SegmentationWidget


class Screen:
    """View state and layer drawing for one widget (callers hold the widget's lock)."""

    def __init__(self, host: SegmentationWidget, max_canvas: tuple[int, int]) -> None:
        self.host = host
        self.max_canvas = max_canvas
        self.layers = Layers(*max_canvas)
        self.canvas = self.layers.canvas
        self.view = Viewport.for_image(1, 1, *max_canvas)
        self.pyramid = ImagePyramid(np.zeros((1, 1, 3), np.uint8))
        self.opacity = 0.5
        self.overlay = OVERLAY_STYLES[0]
        self.mouse: tuple[float, float] | None = None
        self._wire()

    def _wire(self) -> None:
        c, h = self.canvas, self.host
        c.on_mouse_down(h.handle_mouse_down)
        c.on_mouse_move(h.handle_mouse_move)
        c.on_mouse_up(h.handle_mouse_up)
        c.on_mouse_out(lambda cx, cy: h.handle_pointer("out", cx, cy))
        c.on_mouse_wheel(lambda dx, dy: self.zoom_at_mouse(2.0 ** (-float(dy) / 500.0)))
        c.on_key_down(h.handle_key_down)
        c.on_touch_start(lambda t: h.handle_pointer("down", *t[0]) if t else None)
        c.on_touch_move(lambda t: h.handle_pointer("move", *t[0]) if t else None)
        c.on_touch_end(lambda t: h.handle_mouse_up(*(self.mouse or (0.0, 0.0))))
        c.on_touch_cancel(lambda t: h.handle_mouse_up(*(self.mouse or (0.0, 0.0))))
        c.on_client_ready(self.redraw)

    def show(self, rgb: np.ndarray) -> None:
        """A new image: fitted view, resized canvas (drawing follows with ``redraw``)."""
        h, w = rgb.shape[:2]
        self.pyramid = ImagePyramid(rgb)
        self.view = Viewport.for_image(w, h, *self.max_canvas)
        self.layers.resize(self.view)

    # ------------------------------------------------------------------ view

    def zoom(self, factor: float, center: tuple[float, float] | None = None) -> None:
        """Zoom by ``factor`` keeping image point ``center`` fixed (default: the canvas centre)."""
        f = float(factor)
        if not f > 0 or math.isinf(f):
            raise WidgetError(f"zoom factor must be a positive number, got {factor!r}")
        self.view.zoom(f, self.view.to_canvas(*center) if center is not None else None)
        self.redraw()

    def zoom_at_mouse(self, factor: float) -> None:
        """Zoom by ``factor`` at the pointer."""
        with self.host._lock:
            self.view.zoom(factor, self.mouse)
            self.redraw()

    def fit(self) -> None:
        """Show the whole image."""
        self.view.fit()
        self.redraw()

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by (dx, dy) canvas pixels."""
        self.view.pan(float(dx), float(dy))
        self.redraw()

    def set_overlay(self, style: str) -> None:
        """Show the labels as one of ``render.OVERLAY_STYLES``."""
        if style not in OVERLAY_STYLES:
            raise WidgetError(f"overlay style must be one of {list(OVERLAY_STYLES)}, got {style!r}")
        self.overlay = style
        self.draw_overlay()

    def set_opacity(self, value: float) -> None:
        """Fill opacity 0..1 (showing the labels again if they were hidden)."""
        v = float(value)
        if not 0.0 <= v <= 1.0 or math.isnan(v):
            raise WidgetError(f"opacity must be between 0 and 1, got {value!r}")
        self.opacity = v
        self.set_overlay(OVERLAY_STYLES[0] if self.overlay == "hidden" else self.overlay)

    # ------------------------------------------------------------------ drawing

    def draw_overlay(self, box: Box | None = None) -> None:
        """Repaint the labels (all, or image ``box``)."""
        st = self.host.editor.state
        colors = st.colors()
        fill = color_lut(colors, self.opacity, st.selected if st.mode == "instance" else 0)
        self.layers.draw_overlay(st.map, self.view, (fill, outline_lut(colors)), self.overlay, box)

    def draw_preview(self, mask: np.ndarray | None) -> None:
        """Show bool (H, W) ``mask`` as the live preview in the current label's colour (None: erase it)."""
        self.layers.draw_preview(mask, self.view, self.host.editor.paint_color())

    def redraw(self) -> None:
        """Repaint every layer (a client (re)connected, or the view changed)."""
        with self.host._lock, drawing():
            self.layers.draw_photo(self.pyramid, self.view)
            self.draw_overlay()
            shown = self.host.requests.shown
            self.draw_preview(shown.mask if shown is not None else None)
            self.draw_interaction()

    def draw_interaction(self) -> None:
        """Repaint the interaction layer: the model's prompts and the active tool's marks."""
        host = self.host
        with host._lock, drawing():
            sketch = self.layers.begin_interaction()
            host.requests.draw(sketch)
            host.tools[host.tool].draw(host, sketch)

    # ------------------------------------------------------------------ pointer -> tool

    def pointer(self, kind: str, cx: float, cy: float, button: int = 0, shift: bool = False) -> None:
        """Route a pointer event ("down", "move", "up", "out") to the active tool; one batched message."""
        host = self.host
        trace = host.assist.trace
        if trace.on:
            trace.received = trace.now()
        with drawing():
            self.mouse = None if kind == "out" else (cx, cy)
            x, y = self.view.to_image(cx, cy)
            armed = kind == "down" and host.commands.take_negative_once()
            p = Pointer(cx, cy, x, y, button, shift or armed)
            tool = host.tools[host.tool]
            if kind == "down":
                if tool.needs_image and not self.view.inside(x, y):
                    host.say("that click is outside the image")
                    return
                tool.down(host, p)
            elif kind == "move":
                tool.move(host, p)
            else:
                tool.up(host, p, out=kind == "out")
