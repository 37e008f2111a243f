"""``SegmentationWidget``: Ground Truth's image-segmentation labeling UI as a Jupyter widget.

Who owns what: the **kernel** owns everything (image, label/instance maps, undo history, the model, which
runs on a background thread); the **browser** shows three ipycanvas layers (photo, label overlay,
interaction) that the kernel repaints, and sends mouse/key events back. Every tool is also a Python method,
so notebooks, tests and headless demos drive exactly the code the mouse drives.

Conventions: coordinates are (x, y) pixels of the original image (pixel centres at integers); masks are
bool (H, W); ``label_map`` is uint8 (H, W), 0 = BACKGROUND, i = ``labels[i - 1]``; ``instance_map`` is uint8
(H, W), 0 = none, k = ``instances[k - 1]`` (1-based ids). Canvas <-> image mapping: see ``gt_widget.widget.render``.

Threads: model calls (embedding, auto-segment, clicks) run on one worker thread (``worker.ModelWorker``);
their results are applied and drawn from that thread under the widget's lock (ipykernel sends comm
messages from any thread). ``observe_changes`` callbacks run in the thread that committed the edit.
"""

from __future__ import annotations

import hashlib
import html
import math
import os
import threading
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import ipywidgets as widgets
import numpy as np
from ipycanvas import MultiCanvas, hold_canvas

from gt_widget.errors import GtWidgetError, PromptError
from gt_widget.groundtruth import formats
from gt_widget.groundtruth.formats import Instance
from gt_widget.imageio import ImageSource, load_image
from gt_widget.palette import PALETTE
from gt_widget.segment.base import Prediction, Segmenter, click_polarity, validate_extreme_points, validate_points
from gt_widget.widget import initial, keys
from gt_widget.widget.render import ImagePyramid, Rect, Viewport, color_lut, overlay_rgba, photo_rgb
from gt_widget.widget.state import (
    Box,
    LabelState,
    Mode,
    Part,
    Recorder,
    WidgetError,
    check_brush_radius,
    check_labels,
    freeze_part,
    paint_part,
    polygon_footprint,
    replace_part,
    stroke_footprint,
    thaw_part,
)
from gt_widget.widget.worker import BACKGROUND, INTERACTIVE, ModelWorker

Tool = Literal["auto", "click", "brush", "eraser", "polygon", "pan"]
TOOLS: tuple[str, ...] = ("auto", "click", "brush", "eraser", "polygon", "pan")
_TOOL_BUTTONS = [("Auto", "auto"), ("Click ±", "click"), ("Brush", "brush"), ("Eraser", "eraser")]
_TOOL_BUTTONS += [("Polygon", "polygon"), ("Pan", "pan")]

RENDER_LOCK = threading.RLock()
"""ipycanvas' ``hold_canvas`` batches through one global manager, so draws from the UI thread and the model
thread must not interleave."""

_DRAW_DEPTH = 0
"""Nesting depth of ``_drawing`` (guarded by RENDER_LOCK)."""

CLOSE_DISTANCE = 8.0
"""A polygon closes when clicked within this many canvas pixels of its first vertex."""


@dataclass
class _Target:
    """Where a queued model result goes, fixed when the user clicked (not when the model answers): a label,
    and in instance mode the instance's colour (its stable identity; ids shift on delete), or None for "a new
    instance", shared by every request made before that instance exists (so a missed part queued right
    behind the first auto-segment joins the same object)."""

    label: str
    color: str | None = None


class _Cached:
    """A prefetched image: decoded pixels and, when the segmenter can save it, its per-image model state."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.model_state: Any = None


def _path_key(image: ImageSource) -> str | None:
    if isinstance(image, (str, os.PathLike)):
        p = Path(image)
        try:
            st = p.stat()
        except OSError:
            return None
        return f"path:{p.resolve()}:{st.st_mtime_ns}:{st.st_size}"
    return None


def _content_key(rgb: np.ndarray) -> str:
    return "rgb:" + hashlib.blake2b(rgb.data, digest_size=16).hexdigest() + f":{rgb.shape}"


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, GtWidgetError) else f"{type(exc).__name__}: {exc}"


class SegmentationWidget(widgets.VBox):  # type: ignore[misc]
    """Label one image at a time with auto-segment (4 extreme points), clicks, brush, eraser and polygon.

    ``image``: anything ``gt_widget.imageio.load_image`` takes. ``labels``: non-empty list of unique names.
    ``mode``: "semantic" (a label per pixel) or "instance" (objects, each with its own colour).
    ``segmenter``: a ``gt_widget.segment.base.Segmenter``; None loads ``gt_widget.segment.load_segmenter()``
    lazily on the model thread. ``initial_value``: a previous result (see ``gt_widget.widget.initial``).
    ``canvas_size``: the largest canvas (width, height) in pixels; the image is fitted into it.
    """

    def __init__(
        self,
        image: ImageSource,
        labels: Sequence[str],
        mode: str = "semantic",
        segmenter: Segmenter | None = None,
        initial_value: Any = None,
        *,
        canvas_size: tuple[int, int] = (900, 600),
        brush_radius: int | None = None,
        max_history: int = 100,
        unsure_score: float = 0.8,
        unsure_margin: float = 0.05,
        worker_id: str = "local-notebook",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._labels = check_labels(labels)
        if mode not in ("semantic", "instance"):
            raise WidgetError(f"mode must be 'semantic' or 'instance', got {mode!r}")
        if segmenter is not None and not callable(getattr(segmenter, "predict", None)):
            raise WidgetError("segmenter must follow gt_widget.segment.base.Segmenter (set_image and predict)")
        self._mode: Mode = "instance" if mode == "instance" else "semantic"
        self._lock = threading.RLock()
        self._segmenter: Segmenter | None = segmenter
        self._segmenter_error: str | None = None
        self._max_canvas = (int(canvas_size[0]), int(canvas_size[1]))
        self._max_history = max_history
        self._unsure_score = unsure_score
        self._unsure_margin = unsure_margin
        self._worker_id = worker_id
        self._worker = ModelWorker(on_busy=self._on_busy)
        self._callbacks: list[Callable[[SegmentationWidget], None]] = []
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._gen = 0
        self._embedded_gen = -1
        self._model_note = ""
        self._tool: str = "auto"
        self._label = self._labels[0]
        self._opacity = 0.5
        self._overlay_visible = True
        self._fixed_radius = brush_radius
        self._brush_radius = int(brush_radius or 8)
        self._polarity_positive = True
        self._negative_once = False
        self._pending: list[tuple[float, float]] = []
        self._polygon: list[tuple[float, float]] = []
        self._stroke: tuple[Recorder, int, tuple[float, float]] | None = None
        self._drag: tuple[float, float, float, float] | None = None
        self._mouse: tuple[float, float] | None = None
        self._part: Part | None = None
        self._pending_target: _Target | None = None
        self._inflight: dict[object, tuple[int, list[tuple[float, float, str]]]] = {}
        self._status = ""
        self._sync_flag = threading.local()  # per thread: the model thread syncing never mutes a user's change
        self._build_ui()
        self.load_image(image, initial_value=initial_value)

    # =========================================================================== UI construction

    def _build_ui(self) -> None:
        self.canvas = MultiCanvas(3, width=self._max_canvas[0], height=self._max_canvas[1])
        self.canvas.add_class("gt-widget-canvas")
        self.canvas.on_mouse_down(self.handle_mouse_down)
        self.canvas.on_mouse_move(self.handle_mouse_move)
        self.canvas.on_mouse_up(self.handle_mouse_up)
        self.canvas.on_mouse_out(self.handle_mouse_out)
        self.canvas.on_mouse_wheel(self.handle_mouse_wheel)
        self.canvas.on_key_down(self.handle_key_down)
        self.canvas.on_touch_start(self._touch_start)
        self.canvas.on_touch_move(self._touch_move)
        self.canvas.on_touch_end(self._touch_end)
        self.canvas.on_touch_cancel(self._touch_end)
        self.canvas.on_client_ready(self.redraw)
        lay = widgets.Layout
        self._label_picker = widgets.Dropdown(
            options=[(f"{i + 1}  {n}" if i < 9 else n, n) for i, n in enumerate(self._labels)],
            value=self._label,
            description="Label",
            layout=lay(width="220px"),
        )
        self._label_picker.observe(lambda ch: self._ui_set("label", ch["new"]), "value")
        self._legend = widgets.HTML(self._legend_html())
        self._tools = widgets.ToggleButtons(
            options=_TOOL_BUTTONS,
            value="auto",
            tooltips=[
                "auto-segment: 4 extreme points (a)",
                "corrective clicks (c); x toggles +/-",
                "brush (b)",
                "eraser (e)",
                "polygon (p)",
                "pan (h / space)",
            ],
            style={"button_width": "72px"},
        )
        self._tools.add_class("gt-widget-tools")
        self._tools.observe(lambda ch: self._ui_set("tool", ch["new"]), "value")
        self._polarity = widgets.ToggleButton(value=False, description="+ add", tooltip="click polarity (x)")
        self._polarity.layout.width = "90px"
        self._polarity.observe(lambda ch: self._ui_set("polarity", not ch["new"]), "value")
        self._brush = widgets.IntSlider(
            value=self._brush_radius, min=1, max=200, description="Brush", continuous_update=False
        )
        self._brush.layout.width = "240px"
        self._brush.observe(lambda ch: self._ui_set("brush", ch["new"]), "value")
        self._opacity_slider = widgets.FloatSlider(
            value=self._opacity, min=0.0, max=1.0, step=0.05, description="Opacity", continuous_update=False
        )
        self._opacity_slider.layout.width = "240px"
        self._opacity_slider.observe(lambda ch: self._ui_set("opacity", ch["new"]), "value")

        def button(desc: str, tip: str, fn: Callable[[], Any], width: str = "auto") -> widgets.Button:
            b = widgets.Button(description=desc, tooltip=tip, layout=lay(width=width))
            b.on_click(lambda _b: self._guard(fn))
            return b

        self._undo_b = button("Undo", "undo (z, ctrl+z)", self.undo)
        self._redo_b = button("Redo", "redo (y, ctrl+shift+z)", self.redo)
        zin = button("+", "zoom in (+)", lambda: self.zoom(1.25), "36px")
        zout = button("−", "zoom out (-)", lambda: self.zoom(0.8), "36px")
        fit = button("Fit", "fit to the canvas (f)", self.fit)
        clear = button("Clear", "clear all labels (undoable)", self.clear)
        self._cand_b = button("Next candidate", "cycle the model's candidate masks (n)", self.next_candidate)
        self._cand_b.disabled = True
        self._help_b = widgets.ToggleButton(value=False, description="Help", tooltip="keyboard shortcuts (?)")
        self._help_b.observe(lambda ch: self._show_help(ch["new"]), "value")
        self._help = widgets.HTML(keys.help_html(self._mode), layout=lay(display="none"))
        self._help.add_class("gt-widget-help")
        self._status_w = widgets.HTML("")
        self._status_w.add_class("gt-widget-status")
        self._busy_w = widgets.HTML("")
        self._busy_w.add_class("gt-widget-busy")
        rows: list[widgets.Widget] = [
            widgets.HBox([self._label_picker, self._legend]),
            widgets.HBox([self._tools, self._polarity]),
            widgets.HBox([self._brush, self._opacity_slider]),
            widgets.HBox([self._undo_b, self._redo_b, zin, zout, fit, clear, self._cand_b, self._help_b]),
        ]
        self._instance_list = widgets.Select(options=[], rows=5, description="Instances")
        self._instance_list.observe(lambda ch: self._ui_set("instance", ch["new"]), "value")
        if self._mode == "instance":
            add = button("Add instance", "add an instance of the current label (i)", lambda: self.add_instance())
            dele = button("Delete", "delete the selected instance (Delete)", self._delete_selected)
            rel = button("Relabel", "give the selected instance the current label", self._relabel_selected)
            rows.append(widgets.HBox([self._instance_list, widgets.VBox([add, rel, dele])]))
        rows += [widgets.HBox([self._busy_w, self._status_w]), self.canvas, self._help]
        self.children = rows
        self.add_class("gt-widget")

    def _legend_html(self) -> str:
        items = []
        for i, name in enumerate(self._labels[:12]):
            key = f"{i + 1} " if i < 9 else ""
            if self._mode == "instance":  # instances, not labels, have colours (palette order)
                items.append(f'<span style="margin-right:8px;white-space:nowrap">{key}{html.escape(name)}</span>')
                continue
            items.append(
                f'<span style="margin-right:8px;white-space:nowrap"><span style="display:inline-block;width:12px;'
                f'height:12px;background:{PALETTE[i]};border:1px solid #555;vertical-align:middle"></span> '
                f"{key}{html.escape(name)}</span>"
            )
        more = f" ... +{len(self._labels) - 12}" if len(self._labels) > 12 else ""
        return "<div>" + "".join(items) + more + "</div>"

    def _show_help(self, show: bool) -> None:
        self._help.layout.display = "block" if show else "none"

    def _ui_set(self, what: str, value: Any) -> None:
        """A toolbar control changed (ignored while we are syncing the controls from Python)."""
        if getattr(self._sync_flag, "on", False):
            return
        if what == "label":
            self._guard(lambda: setattr(self, "label", value))
        elif what == "tool":
            self._guard(lambda: setattr(self, "tool", value))
        elif what == "polarity":
            self._polarity_positive = bool(value)
            self._sync_controls()
        elif what == "brush":
            self.brush_radius = int(value)
        elif what == "opacity":
            self.opacity = float(value)
        elif what == "instance" and value:
            self._guard(lambda: self.select_instance(int(value)))

    @contextmanager
    def _syncing_controls(self) -> Iterator[None]:
        prev = getattr(self._sync_flag, "on", False)
        self._sync_flag.on = True
        try:
            yield
        finally:
            self._sync_flag.on = prev

    def _sync_controls(self) -> None:
        with self._syncing_controls():
            self._label_picker.value = self._label
            self._tools.value = self._tool
            self._polarity.value = not self._polarity_positive
            self._polarity.description = "+ add" if self._polarity_positive else "− remove"
            self._brush.max = max(self._brush.max, self._brush_radius)
            self._brush.value = self._brush_radius
            self._opacity_slider.value = self._opacity
            st = self._state
            self._undo_b.disabled = not st.undo_stack
            self._redo_b.disabled = not st.redo_stack
            part = self._live_part()
            n = len(part.prediction.candidates) if part is not None and part.prediction is not None else 0
            self._cand_b.disabled = n < 2
            self._cand_b.description = (
                f"Next candidate ({part.candidate + 1}/{n})" if part and n >= 2 else "Next candidate"
            )
            self._cand_b.button_style = "warning" if part is not None and n >= 2 and self._unsure(part) else ""
            if self._mode == "instance":
                opts = [(f"{k + 1}  {inst.label}  {inst.color}", k + 1) for k, inst in enumerate(st.instances)]
                if list(self._instance_list.options) != opts:
                    self._instance_list.options = opts
                value = st.selected if st.selected else None
                if self._instance_list.value != value:
                    self._instance_list.value = value

    def _guard(self, fn: Callable[[], Any]) -> None:
        """Run a UI action; a GtWidgetError becomes the status line instead of a traceback."""
        try:
            fn()
        except GtWidgetError as exc:
            self._set_status(f"⚠ {exc}")

    def _set_status(self, text: str) -> None:
        self._status = text
        self._status_w.value = f"<span>{html.escape(text)}</span>"

    def _note(self, text: str) -> None:
        """What the model is doing (shown by the busy indicator while it is busy)."""
        self._model_note = text
        if text and self._busy_w.value:
            self._on_busy(True)

    def _on_busy(self, busy: bool) -> None:
        if busy:
            note = self._model_note or "model working"
            self._busy_w.value = (
                f'<span title="the model is working; your clicks are queued">⏳ {html.escape(note)}</span>'
            )
        else:
            self._busy_w.value = ""

    # =========================================================================== images

    def load_image(self, image: ImageSource, initial_value: Any = None) -> None:
        """Show ``image`` (clearing labels and undo history, or loading ``initial_value``) and start computing
        its embedding in the background."""
        pkey = _path_key(image)
        cached = self._cache.get(pkey) if pkey else None
        rgb = cached.rgb if cached is not None else load_image(image)
        ckey = _content_key(rgb)
        if cached is None:
            cached = self._cache.get(ckey)
        h, w = rgb.shape[:2]
        state = LabelState((h, w), self._labels, self._mode, max_history=self._max_history)
        init_map: np.ndarray | None = None
        init_instances: list[Instance] = []
        if initial_value is not None:
            init_map, init_instances = initial.decode(initial_value, self._labels, self._mode, (h, w))
        state.reset(init_map, init_instances)
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._rgb = rgb
            self._pyramid = ImagePyramid(rgb)
            self._state = state
            self._initial_packed = zlib.compress(state.map.tobytes(), 1) if initial_value is not None else None
            self._loaded_at = datetime.now(timezone.utc)
            self._part = None
            self._pending_target = None
            self._pending.clear()
            self._polygon.clear()
            self._stroke = None
            self._drag = None
            self._view = Viewport.for_image(w, h, *self._max_canvas)
            if self._fixed_radius is None:
                self._brush_radius = max(2, round(min(h, w) / 80))
            self._brush.max = max(200, self._brush_radius)
            if (self.canvas.width, self.canvas.height) != (self._view.canvas_w, self._view.canvas_h):
                self.canvas.width, self.canvas.height = self._view.canvas_w, self._view.canvas_h
            # a narrower notebook cell scales the canvas down (CSS); ipycanvas rescales mouse positions
            self.canvas.layout.width = f"{self._view.canvas_w}px"
            self.canvas.layout.max_width = "100%"
            self.canvas.layout.height = "auto"
            if self._label not in self._labels:
                self._label = self._labels[0]
            self._set_status(f"{w}x{h} image. {self._tool_hint()}")
            self._sync_controls()
            self.redraw()
        self._note("computing the image embedding")
        entry = cached
        keys_for = [k for k in (pkey, ckey) if k]
        self._worker.submit(lambda: self._embed(gen, rgb, entry, keys_for), INTERACTIVE)

    def _ensure_segmenter(self) -> Segmenter:
        if self._segmenter is not None:
            return self._segmenter
        if self._segmenter_error is not None:
            raise WidgetError(self._segmenter_error)
        try:
            from gt_widget.segment import load_segmenter

            self._note("loading the segmentation model")
            self._on_busy(True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._segmenter = load_segmenter()
            for w in caught:  # e.g. "MobileSAM unavailable, using GrabCut": the user must see it
                self._set_status(f"⚠ {w.message}")
        except Exception as exc:
            self._segmenter_error = (
                f"no segmentation model: {_message(exc)}. Brush, eraser and polygon still work; pass "
                "segmenter=... or fix the model to use auto-segment"
            )
            raise WidgetError(self._segmenter_error) from None
        return self._segmenter

    def _embed(self, gen: int, rgb: np.ndarray, entry: _Cached | None, cache_keys: list[str]) -> None:
        """Model thread: make the segmenter ready for image ``gen`` (restoring a prefetched state if any)."""
        if gen != self._gen:
            return  # another image was loaded meanwhile
        try:
            seg = self._ensure_segmenter()
            self._note("computing the image embedding")
            if entry is not None and entry.model_state is not None and hasattr(seg, "set_state"):
                seg.set_state(entry.model_state)
            else:
                seg.set_image(rgb)
                if hasattr(seg, "get_state"):
                    done = entry or _Cached(rgb)
                    done.model_state = seg.get_state()
                    for k in cache_keys:
                        self._remember(k, done)
            self._embedded_gen = gen
            if gen == self._gen:
                self._note("")
        except Exception as exc:
            if gen == self._gen:
                self._set_status(f"⚠ {_message(exc)}")
            raise

    def _ready(self, gen: int) -> Segmenter:
        """Model thread: the segmenter, embedded for image ``gen`` (retrying a failed embedding)."""
        seg = self._ensure_segmenter()
        if self._embedded_gen != gen:
            self._embed(gen, self._rgb, None, [])
        self._note("segmenting")
        return seg

    def _remember(self, key: str, entry: _Cached) -> None:
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > 6:
            self._cache.popitem(last=False)

    def prefetch(self, image: ImageSource) -> None:
        """Decode ``image`` and compute its embedding in the background (low priority), so that a later
        ``load_image(image)`` is instant. Needs a segmenter with ``get_state``/``set_state`` to keep the
        embedding (or ``prepare``, which encodes without changing the current image); otherwise only the
        decoding is saved."""
        pkey = _path_key(image)

        def job() -> None:
            rgb = load_image(image)
            ckey = _content_key(rgb)
            if (pkey and pkey in self._cache) or ckey in self._cache:
                return
            entry = _Cached(rgb)
            try:
                seg = self._ensure_segmenter()
            except WidgetError:
                seg = None
            prepare = getattr(seg, "prepare", None)
            if seg is not None and callable(prepare):
                entry.model_state = prepare(rgb)  # encodes without touching the current image
            elif seg is not None and hasattr(seg, "get_state") and hasattr(seg, "set_state"):
                current = seg.get_state()
                seg.set_image(rgb)
                entry.model_state = seg.get_state()
                if current is not None:
                    seg.set_state(current)
            for k in (pkey, ckey):
                if k:
                    self._remember(k, entry)

        self._worker.submit(job, BACKGROUND)

    # =========================================================================== properties

    @property
    def labels(self) -> list[str]:
        """The label names (index i + 1 in ``label_map``)."""
        return list(self._labels)

    @property
    def mode(self) -> Mode:
        """ "semantic" or "instance"."""
        return self._mode

    @property
    def image(self) -> np.ndarray:
        """The current image, RGB uint8 (H, W, 3)."""
        return self._rgb

    @property
    def view(self) -> Viewport:
        """The zoom/pan transform (canvas px <-> image px); see ``gt_widget.widget.render``."""
        return self._view

    def image_to_canvas(self, x: float, y: float) -> tuple[float, float]:
        """Canvas pixel position of image point (x, y) in the current view."""
        return self._view.to_canvas(x, y)

    def canvas_to_image(self, cx: float, cy: float) -> tuple[float, float]:
        """Image point under canvas pixel position (cx, cy)."""
        return self._view.to_image(cx, cy)

    @property
    def tool(self) -> str:
        """The active tool: "auto", "click", "brush", "eraser", "polygon" or "pan"."""
        return self._tool

    @tool.setter
    def tool(self, value: str) -> None:
        if value not in TOOLS:
            raise WidgetError(f"unknown tool {value!r}; choose one of {list(TOOLS)}")
        with self._lock:
            changed = self._finish_stroke()
            self._tool = value
            self._pending.clear()
            self._polygon.clear()
            self._set_status(self._tool_hint())
            self._sync_controls()
            self._draw_interaction()
        if changed:
            self._notify()

    @property
    def label(self) -> str:
        """The current label (what brush/auto-segment paint; in instance mode, the label of new instances)."""
        return self._label

    @label.setter
    def label(self, value: str) -> None:
        self._state.label_index(value)
        with self._lock:
            self._label = value
            st = self._state
            if self._mode == "instance" and st.selected and st.instances[st.selected - 1].label != value:
                self._set_status(
                    f"the next paint starts a new {value!r} instance; 'Relabel' gives instance {st.selected} "
                    "this label instead"
                )
            self._sync_controls()
            self._draw_interaction()

    @property
    def opacity(self) -> float:
        """Overlay opacity, 0..1."""
        return self._opacity

    @opacity.setter
    def opacity(self, value: float) -> None:
        v = float(value)
        if not 0.0 <= v <= 1.0 or math.isnan(v):
            raise WidgetError(f"opacity must be between 0 and 1, got {value!r}")
        with self._lock:
            self._opacity = v
            self._overlay_visible = True
            self._sync_controls()
            self._redraw_overlay()

    @property
    def brush_radius(self) -> int:
        """Brush / eraser radius in image pixels."""
        return self._brush_radius

    @brush_radius.setter
    def brush_radius(self, value: int) -> None:
        if check_brush_radius(value) < 1:
            raise WidgetError(f"brush radius must be at least 1 pixel, got {value!r}")
        with self._lock:
            self._brush_radius = int(value)
            self._sync_controls()
            self._draw_interaction()

    @property
    def busy(self) -> bool:
        """Whether the model is working for the current image (embedding, segmenting)."""
        return self._worker.busy

    @property
    def status(self) -> str:
        """The status line's text."""
        return self._status

    def wait_idle(self, timeout: float | None = 60) -> bool:
        """Block until background model work (prefetch included) is done; False on timeout."""
        if self._worker.on_worker_thread():
            raise WidgetError(
                "wait_idle was called on the model thread (from an observe_changes callback), where it would "
                "wait for itself; call it from the notebook instead"
            )
        return self._worker.wait_idle(timeout)

    def observe_changes(self, callback: Callable[[SegmentationWidget], None]) -> None:
        """Call ``callback(widget)`` after every committed edit (in the thread that made it)."""
        self._callbacks.append(callback)

    def _notify(self) -> None:
        for cb in list(self._callbacks):
            try:
                cb(self)
            except Exception as exc:
                self._set_status(f"⚠ a change observer failed: {_message(exc)}")
                warnings.warn(f"observe_changes callback failed: {exc!r}", RuntimeWarning, stacklevel=2)

    # ------------------------------------------------------------------ maps

    @property
    def label_map(self) -> np.ndarray:
        """uint8 (H, W): 0 = BACKGROUND, i = ``labels[i - 1]`` (instance mode: each instance's label)."""
        with self._lock:
            return self._state.label_map()

    @property
    def instance_map(self) -> np.ndarray:
        """uint8 (H, W): 0 = none, k = ``instances[k - 1]`` (instance mode only)."""
        if self._mode != "instance":
            raise WidgetError("instance_map exists only in instance mode; use label_map in semantic mode")
        with self._lock:
            return self._state.map.copy()

    @property
    def instance_masks(self) -> list[np.ndarray]:
        """Bool (H, W) mask of each instance, in instance order (instance mode only)."""
        imap = self.instance_map
        return [imap == k + 1 for k in range(len(self._state.instances))]

    @property
    def instances(self) -> list[Instance]:
        """The instances (label, colour), id k = position k - 1 (instance mode; [] in semantic mode)."""
        with self._lock:
            return [Instance(i.label, i.color) for i in self._state.instances]

    def snapshot(self) -> tuple[np.ndarray, list[Instance]]:
        """(map copy, instances) taken atomically, safe while the model thread edits: the label map and
        [] in semantic mode, the instance map and its instances in instance mode (for autosaving)."""
        with self._lock:
            st = self._state
            return st.map.copy(), [Instance(i.label, i.color) for i in st.instances]

    @property
    def selected_instance(self) -> int:
        """The selected instance id (0 = none: the next paint creates one)."""
        return self._state.selected

    @property
    def history(self) -> tuple[int, int]:
        """(undo steps, redo steps) available."""
        return len(self._state.undo_stack), len(self._state.redo_stack)

    # =========================================================================== edits (Python API)

    def _target(self, rec: Recorder, erase: bool = False) -> int:
        """Map value the next paint writes: 0 erases; a label index; the selected instance when it has the
        current label, else a new instance of the current label."""
        if erase:
            return 0
        st = self._state
        if self._mode == "semantic":
            return st.label_index(self._label)
        if st.selected and st.instances[st.selected - 1].label == self._label:
            return st.selected
        return st.create_instance(rec, self._label)  # none selected, or another label was chosen

    KEPT_PARTS = 10
    """How many recent model edits keep their part, so undo / redo can bring back a refinable mask."""

    def _keep_part(self, part: Part) -> None:
        """Make ``part`` the live part and remember a copy on the edit just committed."""
        st = self._state
        part.serial = st.serial
        if not st.undo_stack:
            return
        st.undo_stack[-1].part = freeze_part(part)
        seen = 0
        for edit in reversed(st.undo_stack):  # bound memory: only the last few keep their part
            if edit.part is not None:
                seen += 1
                if seen > self.KEPT_PARTS:
                    edit.part = None

    def _capture_target(self) -> _Target:
        """The target of a model request made now (see ``_Target``)."""
        st = self._state
        if self._mode == "semantic":
            return _Target(self._label)
        if st.selected and st.instances[st.selected - 1].label == self._label:
            return _Target(self._label, st.instances[st.selected - 1].color)
        if self._pending_target is None or self._pending_target.label != self._label:
            self._pending_target = _Target(self._label)
        return self._pending_target

    def _resolve_target(self, rec: Recorder, target: _Target) -> int:
        """Map value for ``target`` at the time the result is applied (creating its instance if needed)."""
        st = self._state
        if self._mode == "semantic":
            return st.label_index(target.label)
        for k, inst in enumerate(st.instances):
            if target.color is not None and inst.color == target.color:
                st.selected = k + 1
                return k + 1
        k = st.create_instance(rec, target.label)
        target.color = st.instances[k - 1].color
        return k

    def _commit(self, rec: Recorder, redraw: Box | Literal["all"] | None) -> bool:
        edit = self._state.commit(rec)
        if edit is None:
            return False
        with self._drawing():
            if redraw == "all" or edit.meta_before is not None:
                self._redraw_overlay()
            elif edit.box is not None:
                self._redraw_overlay(edit.box)
            self._draw_interaction()
        self._sync_controls()
        return True

    def _check_points(self, points: Sequence[Sequence[float]], what: str) -> list[tuple[float, float]]:
        arr = validate_points(points, self._state.shape, what)
        return [(float(x), float(y)) for x, y in arr]

    def brush(self, points: Sequence[Sequence[float]], radius: float | None = None) -> None:
        """Paint the current label (instance) along ``points`` with a round brush; one call = one undo step."""
        self._paint_stroke(points, radius, erase=False)

    def erase(self, points: Sequence[Sequence[float]], radius: float | None = None) -> None:
        """Erase (set to BACKGROUND) along ``points``; one call = one undo step."""
        self._paint_stroke(points, radius, erase=True)

    def _paint_stroke(self, points: Sequence[Sequence[float]], radius: float | None, erase: bool) -> None:
        pts = self._check_points(points, "brush")
        if not pts:
            raise PromptError("a brush stroke needs at least one (x, y) point")
        r = check_brush_radius(self._brush_radius if radius is None else radius)
        with self._lock:
            self._finish_stroke()
            rec = self._state.begin("eraser" if erase else "brush")
            value = self._target(rec, erase)
            fp = stroke_footprint(pts, r, self._state.shape)
            if fp is not None:
                rec.paint(fp[0], fp[1], value)
            changed = self._commit(rec, fp[0] if fp else None)
        if changed:
            self._notify()

    def polygon(self, vertices: Sequence[Sequence[float]]) -> None:
        """Fill the polygon ``vertices`` (>= 3 (x, y) points) with the current label; one undo step."""
        pts = self._check_points(vertices, "polygon")
        if len(pts) < 3:
            raise PromptError(f"a polygon needs at least 3 vertices, got {len(pts)}")
        with self._lock:
            self._finish_stroke()
            rec = self._state.begin("polygon")
            value = self._target(rec)
            fp = polygon_footprint(pts, self._state.shape)
            if fp is not None:
                rec.paint(fp[0], fp[1], value)
            changed = self._commit(rec, fp[0] if fp else None)
            self._polygon.clear()
        if changed:
            self._notify()

    def clear(self) -> None:
        """Remove every label (and, in instance mode, every instance); one undo step."""
        with self._lock:
            self._finish_stroke()
            st = self._state
            rec = st.begin("clear")
            h, w = st.shape
            rec.touch((0, h, 0, w))
            st.map[:] = 0
            if self._mode == "instance":
                st.instances.clear()
                st.selected = 0
            changed = self._commit(rec, "all")
        if changed:
            self._notify()

    def undo(self) -> bool:
        """Undo one step (a stroke, an auto-segment, a click...); False when there is nothing to undo."""
        return self._history_step(redo=False)

    def redo(self) -> bool:
        """Redo one undone step; False when there is nothing to redo."""
        return self._history_step(redo=True)

    def _history_step(self, redo: bool) -> bool:
        with self._lock:
            self._finish_stroke()
            edit = self._state.redo() if redo else self._state.undo()
            if edit is None:
                self._set_status("nothing to redo" if redo else "nothing to undo")
                return False
            self._pending_target = None
            # the mask the model made just before this point in history becomes refinable again
            top = self._state.undo_stack[-1] if self._state.undo_stack else None
            kept = top.part if top is not None else None
            self._part = thaw_part(kept, self._state.serial) if kept is not None else None
            with self._drawing():
                if edit.meta_before is not None or edit.box is None:
                    self._redraw_overlay()
                else:
                    self._redraw_overlay(edit.box)
                self._draw_interaction()
            self._sync_controls()
            self._set_status(("redid " if redo else "undid ") + (edit.what or "edit"))
        self._notify()
        return True

    # ------------------------------------------------------------------ instances

    def add_instance(self, label: str | None = None) -> int:
        """Start a new instance of ``label`` (default: the current label) and select it; returns its id."""
        with self._lock:
            name = self._label if label is None else label
            st = self._state
            if self._mode != "instance":
                raise WidgetError("add_instance needs instance mode: create the widget with mode='instance'")
            st.label_index(name)
            rec = st.begin("add instance")
            k = st.create_instance(rec, name)
            self._label = name
            self._part = None
            self._pending_target = None
            self._commit(rec, "all")
            self._set_status(f"instance {k} ({name}) added: paint or auto-segment it")
        self._notify()
        return k

    def select_instance(self, k: int) -> None:
        """Make instance ``k`` (1-based) the one that painting and auto-segment add to."""
        with self._lock:
            k = self._state.check_instance(k)
            self._state.selected = k
            self._label = self._state.instances[k - 1].label
            self._part = None
            self._pending_target = None
            self._sync_controls()
            with self._drawing():
                self._redraw_overlay()
                self._draw_interaction()

    def relabel_instance(self, k: int, label: str) -> None:
        """Give instance ``k`` another label (its colour stays); one undo step."""
        with self._lock:
            k = self._state.check_instance(k)
            self._state.label_index(label)
            rec = self._state.begin("relabel instance")
            old = self._state.instances[k - 1]
            self._state.instances[k - 1] = Instance(label, old.color)
            changed = self._commit(rec, "all")
        if changed:
            self._notify()

    def delete_instance(self, k: int) -> None:
        """Delete instance ``k`` and its pixels; later instances' ids shift down by one; one undo step."""
        with self._lock:
            k = self._state.check_instance(k)
            rec = self._state.begin("delete instance")
            self._state.delete_instance(rec, k)
            self._part = None
            self._pending_target = None
            self._commit(rec, "all")
        self._notify()

    def _delete_selected(self) -> None:
        if not self._state.selected:
            raise WidgetError("select an instance first (in the list, or with , and .)")
        self.delete_instance(self._state.selected)

    def _relabel_selected(self) -> None:
        if not self._state.selected:
            raise WidgetError("select an instance first (in the list, or with , and .)")
        self.relabel_instance(self._state.selected, self._label_picker.value)

    # ------------------------------------------------------------------ model tools

    def _live_part(self) -> Part | None:
        part = self._part
        if part is None or part.serial != self._state.serial:
            return None
        return part

    def _unsure(self, part: Part) -> bool:
        return part.unsure

    def _judge(self, pred: Prediction) -> bool:
        """Is the model unsure? Its score is below ``unsure_score``, or another candidate scores within
        ``unsure_margin`` of it while differing clearly from it (IoU < 0.9: near-duplicates don't count)."""
        if pred.score < self._unsure_score:
            return True
        chosen = np.asarray(pred.mask, bool)
        area = int(chosen.sum())
        for cand in pred.candidates:
            if cand.mask is pred.mask or pred.score - cand.score >= self._unsure_margin:
                continue
            other = np.asarray(cand.mask, bool)
            inter = int(np.count_nonzero(chosen & other))
            union = area + int(other.sum()) - inter
            if union and inter / union < 0.9:
                return True
        return False

    def auto_segment(self, points: Sequence[Sequence[float]], wait: bool = True) -> np.ndarray | None:
        """Segment the object whose 4 extreme points (x, y) are given, painting it in the current label (or
        adding it to the selected instance; a new one if none). 4 points on a part the last mask missed ADD
        to it (union). ``wait=False`` queues the work and returns at once (the UI's way); with ``wait=True``
        returns the model's mask (bool HxW)."""
        pts = validate_extreme_points(points, self._state.shape)
        ext = [(float(x), float(y)) for x, y in pts]
        with self._lock:
            gen = self._gen
            target = self._capture_target()

        def job() -> np.ndarray | None:
            seg = self._ready(gen)
            staged = _two_stage(seg, ext)
            # A segmenter with a slow zoomed second pass answers in two stages: the full-image answer is
            # shown at once, the zoomed one replaces it when ready (same undo step; dropped if the user
            # edited meanwhile). See MobileSamSegmenter.needs_zoom.
            pred = _fast_predict(seg, ext) if staged else seg.predict(extreme_points=ext)
            self._apply_prediction(gen, pred, target, ext, [], replace=False)
            if not staged:
                return np.asarray(pred.mask, bool)
            with self._lock:
                part = self._live_part()
            if part is None:
                return np.asarray(pred.mask, bool)
            if wait:
                return refine(seg, part)
            self._worker.submit(lambda: refine(seg, part), INTERACTIVE)
            return np.asarray(pred.mask, bool)

        def refine(seg: Segmenter, part: Part) -> np.ndarray | None:
            with self._lock:
                if gen != self._gen or self._live_part() is not part:
                    return None  # the user moved on (click, stroke, undo, new image): keep what they see
                self._note("refining (zoomed pass)")
            pred = seg.predict(extreme_points=ext)
            self._apply_prediction(gen, pred, target, ext, [], replace=True, part=part, merge=True)
            return np.asarray(pred.mask, bool)

        return self._run(job, wait, gen, [(x, y, "extreme") for x, y in ext])

    def corrective_click(self, x: float, y: float, positive: bool = True, wait: bool = True) -> np.ndarray | None:
        """Refine the last auto-segmented mask: a positive click adds the region at (x, y), a negative one
        removes it. Without a mask to refine, a positive click segments the object under it."""
        ((cx, cy),) = self._check_points([(x, y)], "click")
        positive = click_polarity(positive)  # "false" is refused, not taken as positive
        click = (cx, cy, positive)
        with self._lock:
            gen = self._gen
            target = self._capture_target()
        if not positive and self._live_part() is None and not self._worker.busy:
            raise PromptError("a negative click needs a mask to correct: auto-segment the object first")

        def job() -> np.ndarray | None:
            seg = self._ready(gen)
            with self._lock:
                part = self._live_part()
                ext = list(part.extreme_points or []) if part is not None else []
                clicks = (list(part.clicks) if part is not None else []) + [click]
                previous = part.prediction if part is not None else None
            if part is None and not positive:
                raise PromptError("a negative click needs a mask to correct: auto-segment the object first")
            pred = seg.predict(extreme_points=ext or None, clicks=clicks, previous=previous)
            self._apply_prediction(gen, pred, target, ext or None, clicks, replace=part is not None, part=part)
            return np.asarray(pred.mask, bool)

        return self._run(job, wait, gen, [(cx, cy, "+" if positive else "-")])

    def next_candidate(self) -> int:
        """Show the model's next candidate mask for the last auto-segment/click (one undo step); returns the
        candidate's index, or -1 when there is no alternative."""
        with self._lock:
            part = self._live_part()
            pred = part.prediction if part is not None else None
            if part is None or pred is None or len(pred.candidates) < 2:
                self._set_status("no other candidate masks for the last auto-segment")
                return -1
            idx = (part.candidate + 1) % len(pred.candidates)
            cand = pred.candidates[idx]
            rec = self._state.begin("next candidate")
            replace_part(self._state, rec, part, np.asarray(cand.mask, bool))
            part.candidate = idx
            self._commit(rec, part.box)
            self._keep_part(part)
            self._sync_controls()
            self._set_status(f"candidate {idx + 1} of {len(pred.candidates)} (score {cand.score:.2f})")
        self._notify()
        return idx

    def _run(
        self,
        request: Callable[[], np.ndarray | None],
        wait: bool,
        gen: int,
        markers: list[tuple[float, float, str]],
    ) -> np.ndarray | None:
        """Queue a model request; its points stay drawn until it is applied (or fails)."""
        token = object()
        with self._lock:
            self._inflight[token] = (gen, markers)
            self._draw_interaction()

        def job() -> np.ndarray | None:
            try:
                return request()
            finally:
                with self._lock:
                    self._inflight.pop(token, None)
                    self._draw_interaction()

        if wait and self._worker.on_worker_thread():
            return job()  # called from a change observer on the model thread: waiting would deadlock
        if self._worker.busy:
            self._set_status("model busy: your input is queued and will be applied when it is ready")
        elif self._embedded_gen == self._gen:
            self._note("segmenting")
        fut = self._worker.submit(job, INTERACTIVE)
        if not wait:

            def report(f: Any) -> None:
                exc = f.exception() if not f.cancelled() else None
                if exc is not None:
                    self._set_status(f"⚠ {_message(exc)}")

            fut.add_done_callback(report)
            return None
        try:
            return fut.result()
        except GtWidgetError:
            raise
        except Exception as exc:
            raise WidgetError(f"the segmentation model failed: {_message(exc)}") from exc

    def _apply_prediction(
        self,
        gen: int,
        pred: Prediction,
        target: _Target,
        ext: list[tuple[float, float]] | None,
        clicks: list[tuple[float, float, bool]],
        replace: bool,
        part: Part | None = None,
        merge: bool = False,
    ) -> None:
        """Model thread: paint a prediction (a new part, or replacing ``part`` if it is still live).

        ``merge``: a refinement of ``part``'s own prediction; it joins the undo step that painted it and is
        dropped when ``part`` is no longer live.
        """
        mask = np.asarray(pred.mask, bool)
        unsure = self._judge(pred)  # outside the lock: compares full-size candidate masks
        with self._lock:
            if gen != self._gen:
                return  # the image changed while the model worked: these points belonged to the old one
            st = self._state
            if mask.shape != st.shape:
                raise WidgetError(f"the segmenter returned a {mask.shape} mask for a {st.shape} image")
            rec = st.begin("corrective click" if clicks else "auto-segment")
            live = self._live_part()
            if merge and (part is None or live is not part):
                return
            if replace and part is not None and live is part:
                box = replace_part(st, rec, part, mask)
                new_part = part
            else:
                value = self._resolve_target(rec, target)
                box_or_none = paint_part(st, rec, mask, value)
                box = box_or_none if box_or_none is not None else (0, 0, 0, 0)
                before = rec.before if rec.before is not None else np.zeros((0, 0), np.uint8)
                new_part = Part(value=value, box=rec.box or box, before=before.copy(), serial=-1)
            new_part.extreme_points = ext
            new_part.clicks = list(clicks)
            new_part.prediction = pred
            new_part.candidate = 0
            new_part.unsure = unsure
            if self._commit(rec, box) and merge:
                st.merge_last_two()
            self._keep_part(new_part)
            self._part = new_part if new_part.box[1] > new_part.box[0] else None
            if self._part is not None and self._unsure(self._part) and len(pred.candidates) >= 2:
                self._set_status(
                    f"the model is unsure (score {pred.score:.2f}): press n or 'Next candidate' to see "
                    f"{len(pred.candidates) - 1} alternative(s)"
                )
            elif clicks and not _click_honoured(mask, clicks[-1]):
                # SAM refines the whole mask from a click and may leave the clicked pixel as it was (the
                # benchmark-best recipe keeps it that way: forcing it costs NoC); say so instead of hiding it
                x, y, positive = clicks[-1]
                self._set_status(
                    f"the model kept ({x:.0f}, {y:.0f}) {'outside' if positive else 'inside'} the mask: click "
                    "again nearby, or paint it with the brush (b) / eraser (e)"
                )
            else:
                self._set_status(f"mask added (score {pred.score:.2f}). {self._tool_hint()}")
            self._sync_controls()
            self._draw_interaction()
        self._notify()

    # ------------------------------------------------------------------ view

    def zoom(self, factor: float, center: Sequence[float] | None = None) -> None:
        """Zoom by ``factor`` (> 1 magnifies) keeping image point ``center`` (x, y) fixed (default: the
        canvas centre)."""
        f = float(factor)
        if not f > 0 or math.isinf(f):
            raise WidgetError(f"zoom factor must be a positive number, got {factor!r}")
        with self._lock:
            c = self._view.to_canvas(float(center[0]), float(center[1])) if center is not None else None
            self._view.zoom(f, c)
            self.redraw()

    def fit(self) -> None:
        """Show the whole image."""
        with self._lock:
            self._view.fit()
            self.redraw()

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by (dx, dy) canvas pixels."""
        with self._lock:
            self._view.pan(float(dx), float(dy))
            self.redraw()

    # =========================================================================== outputs

    def initial_value_modified(self) -> bool | None:
        """Whether the labels differ from ``initial_value`` (None when there was none)."""
        if self._initial_packed is None:
            return None
        with self._lock:
            return zlib.decompress(self._initial_packed) != self._state.map.tobytes()

    def to_answer(self) -> dict[str, Any]:
        """What ``crowd-semantic-segmentation`` / ``crowd-instance-segmentation`` submits under its name."""
        with self._lock:
            st = self._state
            if self._mode == "instance":
                return formats.instance_answer(st.map, list(st.instances))
            return formats.semantic_answer(st.map, self._labels, initial_value_modified=self.initial_value_modified())

    def to_worker_response(self, worker_id: str | None = None) -> dict[str, Any]:
        """The worker-response JSON Ground Truth writes to annotations/worker-response/ (§1.3)."""
        element = formats.INSTANCE_ELEMENT_NAME if self._mode == "instance" else formats.SEMANTIC_ELEMENT_NAME
        return formats.worker_response(
            self.to_answer(),
            element_name=element,
            worker_id=worker_id or self._worker_id,
            acceptance_time=self._loaded_at,
        )

    def consolidated_png(self) -> bytes:
        """The consolidated 8-bit palette PNG (value = internal-color-map key, §1.6)."""
        with self._lock:
            st = self._state
            return formats.consolidated_png(st.map, st.colors())

    # =========================================================================== rendering

    @contextmanager
    def _drawing(self) -> Iterator[None]:
        """Batch every draw command inside into one comm message (nested uses join the outer batch)."""
        global _DRAW_DEPTH
        with RENDER_LOCK:
            if _DRAW_DEPTH:
                _DRAW_DEPTH += 1
                try:
                    yield
                finally:
                    _DRAW_DEPTH -= 1
                return
            _DRAW_DEPTH = 1
            try:
                with hold_canvas():
                    yield
            finally:
                _DRAW_DEPTH = 0

    def _lut(self) -> np.ndarray:
        st = self._state
        opacity = self._opacity if self._overlay_visible else 0.0
        return color_lut(st.colors(), opacity, st.selected if self._mode == "instance" else 0)

    def redraw(self) -> None:
        """Repaint every layer (a client (re)connected, or the view changed)."""
        with self._lock:
            view = self._view
            photo = photo_rgb(self._pyramid, view, (0, 0, view.canvas_w, view.canvas_h))
            with self._drawing():
                layer = self.canvas[0]
                layer.clear()
                layer.put_image_data(photo, 0, 0)
                self._redraw_overlay()
                self._draw_interaction()

    def _redraw_overlay(self, box: Box | None = None) -> None:
        view = self._view
        rect: Rect | None = view.image_rect() if box is None else view.box_rect(box)
        layer = self.canvas[1]
        with self._drawing():
            layer.image_smoothing_enabled = False
            if box is None:
                layer.clear()
            if rect is None:
                return
            rgba = overlay_rgba(self._state.map, view, rect, self._lut())
            x0, y0, x1, y1 = rect
            if box is not None:
                layer.clear_rect(x0, y0, x1 - x0, y1 - y0)
            if rgba[..., 3].any():
                layer.put_image_data(rgba, x0, y0)

    def _draw_interaction(self) -> None:
        view = self._view
        layer = self.canvas[2]
        color = self._paint_color()
        with self._drawing():
            layer.clear()
            layer.line_width = 2
            part = self._live_part()
            if part is not None:
                for x, y in part.extreme_points or []:
                    cx, cy = view.to_canvas(x, y)
                    layer.stroke_style = "white"
                    layer.stroke_circle(cx, cy, 4)
                for x, y, pos in part.clicks:
                    cx, cy = view.to_canvas(x, y)
                    layer.fill_style = "#00c853" if pos else "#d50000"
                    layer.fill_circle(cx, cy, 5)
                    layer.stroke_style = "white"
                    layer.stroke_circle(cx, cy, 5)
            for gen, markers in list(self._inflight.values()):
                for x, y, kind in markers if gen == self._gen else []:
                    cx, cy = view.to_canvas(x, y)
                    layer.fill_style = {"+": "#00c853", "-": "#d50000"}.get(kind, color)
                    layer.fill_circle(cx, cy, 6 if kind == "extreme" else 5)
                    layer.stroke_style = "white"
                    layer.stroke_circle(cx, cy, 6 if kind == "extreme" else 5)
            for x, y in self._pending:
                cx, cy = view.to_canvas(x, y)
                layer.fill_style = color
                layer.fill_circle(cx, cy, 6)
                layer.stroke_style = "white"
                layer.stroke_circle(cx, cy, 6)
            if self._polygon:
                pts = [view.to_canvas(x, y) for x, y in self._polygon]
                if self._mouse is not None:
                    pts.append(self._mouse)
                layer.stroke_style = color
                layer.stroke_lines(pts)
                layer.fill_style = color
                for cx, cy in pts[: len(self._polygon)]:
                    layer.fill_rect(cx - 3, cy - 3, 6, 6)
            if self._tool in ("brush", "eraser") and self._mouse is not None:
                layer.stroke_style = "white" if self._tool == "eraser" else color
                layer.stroke_circle(self._mouse[0], self._mouse[1], max(1.0, self._brush_radius * view.scale))

    # =========================================================================== mouse and keys

    def _paint_color(self) -> str:
        """Colour the next paint will have (the label's, or the selected / next instance's)."""
        st = self._state
        if self._mode == "semantic":
            return PALETTE[self._labels.index(self._label)]
        if st.selected and st.instances[st.selected - 1].label == self._label:
            return st.instances[st.selected - 1].color
        try:
            return st.next_color()
        except WidgetError:
            return "#000000"

    def _tool_hint(self) -> str:
        return {
            "auto": "Auto-segment: click the 4 extreme points (top, bottom, left, right) of an object.",
            "click": "Clicks: add (+) or remove (-) regions of the last mask; x toggles, Shift = one remove.",
            "brush": "Brush: drag to paint (overwrites other labels).",
            "eraser": "Eraser: drag to erase.",
            "polygon": "Polygon: click vertices; click the first vertex or press Enter to close, Escape cancels.",
            "pan": "Pan: drag the image; wheel zooms.",
        }[self._tool]

    def handle_mouse_down(self, cx: float, cy: float) -> None:
        """ipycanvas mouse-down at canvas pixel (cx, cy)."""
        self._guard(lambda: self._mouse_down(float(cx), float(cy)))

    def handle_mouse_move(self, cx: float, cy: float) -> None:
        """ipycanvas mouse-move at canvas pixel (cx, cy)."""
        self._guard(lambda: self._mouse_move(float(cx), float(cy)))

    def handle_mouse_up(self, cx: float, cy: float) -> None:
        """ipycanvas mouse-up at canvas pixel (cx, cy): ends a stroke / drag."""
        self._guard(lambda: self._mouse_up(float(cx), float(cy)))

    def handle_mouse_out(self, cx: float, cy: float) -> None:
        """ipycanvas mouse-out: ends a stroke / drag like a mouse-up."""
        self._guard(lambda: self._mouse_up(float(cx), float(cy), out=True))

    def handle_mouse_wheel(self, dx: float, dy: float) -> None:
        """ipycanvas wheel (deltaX, deltaY): zoom at the last mouse position."""
        factor = 2.0 ** (-float(dy) / 500.0)
        with self._lock:
            self._view.zoom(factor, self._mouse)
            self.redraw()

    def handle_key_down(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> None:
        """ipycanvas key-down (the canvas has focus after a click); see ``keys.SHORTCUTS``."""
        self._guard(lambda: self._key(key, bool(shift), bool(ctrl), bool(meta)))

    # touch screens: the first finger acts as the mouse (ipycanvas sends the touches still down)
    def _touch_start(self, touches: list[tuple[float, float]]) -> None:
        if touches:
            self.handle_mouse_down(*touches[0])

    def _touch_move(self, touches: list[tuple[float, float]]) -> None:
        if touches:
            self.handle_mouse_move(*touches[0])

    def _touch_end(self, touches: list[tuple[float, float]]) -> None:
        last = self._mouse or (0.0, 0.0)
        self.handle_mouse_up(*last)

    def _mouse_down(self, cx: float, cy: float) -> None:
        self._mouse = (cx, cy)
        x, y = self._view.to_image(cx, cy)
        on_image = self._view.inside(x, y)
        tool = self._tool
        if tool == "pan":
            self._drag = (cx, cy, self._view.offset_x, self._view.offset_y)
            return
        if tool in ("brush", "eraser"):
            with self._lock:
                self._finish_stroke()
                rec = self._state.begin(tool)
                value = self._target(rec, erase=tool == "eraser")
                self._stroke = (rec, value, (x, y))
                self._stroke_to(x, y)
            return
        if not on_image:
            self._set_status("that click is outside the image")
            return
        if tool == "auto":
            with self._lock:
                self._pending.append((x, y))
                n = len(self._pending)
                pts = list(self._pending)
                if n == 4:
                    self._pending.clear()
                self._draw_interaction()
                self._set_status(f"extreme point {n}/4" if n < 4 else "segmenting...")
            if n == 4:
                self.auto_segment(pts, wait=False)
        elif tool == "click":
            positive = self._polarity_positive and not self._negative_once
            self._negative_once = False
            self.corrective_click(x, y, positive=positive, wait=False)
        elif tool == "polygon":
            with self._lock:
                if len(self._polygon) >= 3:
                    fx, fy = self._view.to_canvas(*self._polygon[0])
                    if math.hypot(cx - fx, cy - fy) <= CLOSE_DISTANCE:
                        verts = list(self._polygon)
                        self.polygon(verts)
                        return
                self._polygon.append((x, y))
                self._draw_interaction()
                self._set_status(f"polygon: {len(self._polygon)} vertices (Enter closes, Escape cancels)")

    def _mouse_move(self, cx: float, cy: float) -> None:
        self._mouse = (cx, cy)
        if self._drag is not None:
            sx, sy, ox, oy = self._drag
            with self._lock:
                self._view.offset_x, self._view.offset_y = ox, oy
                self._view.pan(cx - sx, cy - sy)
                self.redraw()
            return
        if self._stroke is not None:
            x, y = self._view.to_image(cx, cy)
            with self._lock:
                self._stroke_to(x, y)
            return
        if self._polygon or self._tool in ("brush", "eraser"):
            with self._lock:
                self._draw_interaction()

    def _mouse_up(self, cx: float, cy: float, out: bool = False) -> None:
        if self._drag is not None:
            self._drag = None
            return
        if self._stroke is not None:
            x, y = self._view.to_image(cx, cy)
            with self._lock:
                if not out:
                    self._stroke_to(x, y)
                changed = self._finish_stroke()
            if changed:
                self._notify()
        if out:
            self._mouse = None
            with self._lock:
                self._draw_interaction()

    def _stroke_to(self, x: float, y: float) -> None:
        assert self._stroke is not None
        rec, value, last = self._stroke
        fp = stroke_footprint([last, (x, y)], float(self._brush_radius), self._state.shape)
        with self._drawing():
            if fp is not None:
                rec.paint(fp[0], fp[1], value)
                self._redraw_overlay(fp[0])
            self._stroke = (rec, value, (x, y))
            self._draw_interaction()

    def _finish_stroke(self) -> bool:
        """Commit the stroke in progress (one undo step); True when it changed something."""
        if self._stroke is None:
            return False
        rec = self._stroke[0]
        self._stroke = None
        return self._commit(rec, rec.box)

    def _key(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        found = keys.lookup(key, shift, ctrl, meta)
        if found is None:
            return
        action, combo = found
        if action != "negative_once":
            self._negative_once = False
        if action.startswith("tool:"):
            self.tool = action.split(":", 1)[1]
        elif action == "label":
            i = int(combo) - 1
            if i < len(self._labels):
                self.label = self._labels[i]
        elif action == "undo":
            self.undo()
        elif action == "redo":
            self.redo()
        elif action == "zoom_in":
            self._zoom_at_mouse(1.25)
        elif action == "zoom_out":
            self._zoom_at_mouse(0.8)
        elif action == "fit":
            self.fit()
        elif action == "next_candidate":
            self.next_candidate()
        elif action == "toggle_polarity":
            self._polarity_positive = not self._polarity_positive
            self._sync_controls()
            self._set_status("clicks now " + ("add (+)" if self._polarity_positive else "remove (-)"))
        elif action == "negative_once":
            self._negative_once = True
        elif action == "polygon_close":
            if len(self._polygon) >= 3:
                self.polygon(list(self._polygon))
        elif action == "cancel":
            with self._lock:
                self._polygon.clear()
                self._pending.clear()
                self._draw_interaction()
            self._set_status("cancelled. " + self._tool_hint())
        elif action == "remove_last":
            with self._lock:
                if self._polygon:
                    self._polygon.pop()
                elif self._pending:
                    self._pending.pop()
                self._draw_interaction()
        elif action == "brush_bigger":
            self.brush_radius = max(self._brush_radius + 1, round(self._brush_radius * 1.25))
        elif action == "brush_smaller":
            self.brush_radius = max(1, min(self._brush_radius - 1, round(self._brush_radius / 1.25)))
        elif action == "toggle_overlay":
            with self._lock:
                self._overlay_visible = not self._overlay_visible
                self._redraw_overlay()
        elif action == "add_instance":
            self.add_instance()
        elif action in ("next_instance", "previous_instance"):
            n = len(self._state.instances)
            if self._mode == "instance" and n:
                step = 1 if action == "next_instance" else -1
                self.select_instance((self._state.selected - 1 + step) % n + 1 if self._state.selected else 1)
        elif action == "delete_instance":
            if self._mode == "instance":
                self._delete_selected()
        elif action == "help":
            self._help_b.value = not self._help_b.value

    def _zoom_at_mouse(self, factor: float) -> None:
        with self._lock:
            self._view.zoom(factor, self._mouse)
            self.redraw()

    # =========================================================================== lifecycle

    def close(self) -> None:
        """Stop the model thread and close the widget and its children."""
        self._worker.close()

        def close_tree(widget: widgets.Widget) -> None:
            for child in getattr(widget, "children", ()):
                close_tree(child)
            if widget is not self:
                widget.close()

        close_tree(self)
        self.canvas.close()
        super().close()


def _two_stage(seg: Segmenter, extreme_points: list[tuple[float, float]]) -> bool:
    """Does ``seg`` have a slow zoomed pass for these points that is worth showing in a second stage?"""
    needs_zoom = getattr(seg, "needs_zoom", None)
    return bool(needs_zoom(extreme_points)) if callable(needs_zoom) else False


def _fast_predict(seg: Segmenter, extreme_points: list[tuple[float, float]]) -> Prediction:
    """The first, full-image stage of a two-stage segmenter (one that has ``needs_zoom``)."""
    predict: Callable[..., Prediction] = seg.predict
    return predict(extreme_points=extreme_points, zoom="off")


def _click_honoured(mask: np.ndarray, click: tuple[float, float, bool]) -> bool:
    """Is the clicked pixel inside the mask for a positive click (outside for a negative one)?"""
    h, w = mask.shape
    x, y, positive = click
    xi, yi = min(max(round(x), 0), w - 1), min(max(round(y), 0), h - 1)
    return bool(mask[yi, xi]) == bool(positive)
