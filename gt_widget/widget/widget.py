"""``SegmentationWidget``: Ground Truth's image-segmentation labeling UI as a Jupyter widget (the façade).

Rooms (one job each): ``editor`` (label maps, edit rules, undo; pure), ``assist`` (the model, its threads,
cache and staged requests), ``tools`` (one module per tool, a registry), ``toolbar`` (controls rendered from
a snapshot), ``render`` (canvas layers), ``scope`` (the browser-side key/pointer scope), ``keys`` (the
shortcut table). One direction of flow: event -> tool -> editor / assist -> change -> layers and toolbar
redraw. Every tool is also a Python method here, so notebooks and tests drive the code the mouse drives.

Conventions: (x, y) pixels of the original image (pixel centres at integers); masks are bool (H, W);
``label_map`` uint8 (0 = BACKGROUND, i = ``labels[i - 1]``); ``instance_map`` uint8 (k = ``instances[k - 1]``).
Threads: model answers are applied from the model threads under ``self._lock``; widget messages (pointer,
keys, toolbar) may arrive on several kernel threads (ipykernel 7's subshells). Lock order: ``self._lock``,
then ``render.RENDER_LOCK``. ``observe_changes`` callbacks run in the thread that committed the edit.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from gt_widget.errors import GtWidgetError, PromptError
from gt_widget.groundtruth.formats import Instance
from gt_widget.imageio import ImageSource
from gt_widget.segment.base import Segmenter, click_polarity, validate_extreme_points, validate_points
from gt_widget.widget import keys, render
from gt_widget.widget.assist import DOUBT_MARGIN, UNSURE_SCORE, Assist, message
from gt_widget.widget.commands import Commands
from gt_widget.widget.editor import Editor, Outcome
from gt_widget.widget.outputs import Outputs
from gt_widget.widget.promptrec import PromptRecorder
from gt_widget.widget.requests import RequestQueue
from gt_widget.widget.scope import KeyScope
from gt_widget.widget.screen import Screen
from gt_widget.widget.state import Box, Mode, check_brush_radius
from gt_widget.widget.toolbar import Toolbar
from gt_widget.widget.tools import TOOLS, Tool, make_tools
from gt_widget.widget.tools.auto import AutoTool

__all__ = ["TOOLS", "SegmentationWidget"]


class SegmentationWidget(widgets.VBox):  # type: ignore[misc]
    """Label one image at a time: auto-segment (4 extreme points), clicks, brush, eraser, polygon, fill.

    ``image``: anything ``gt_widget.imageio.load_image`` takes. ``labels``: non-empty list of unique names.
    ``mode``: "semantic" or "instance". ``segmenter``: a ``gt_widget.segment.base.Segmenter`` (None loads
    the default lazily on the model thread). ``initial_value``: a previous result (``widget.initial``).
    ``canvas_size``: the largest canvas (width, height) in pixels.
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
        unsure_score: float | None = UNSURE_SCORE,
        unsure_margin: float = DOUBT_MARGIN,
        worker_id: str = "local-notebook",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        self.editor = Editor(labels, mode, max_history)
        self.editor.on_change(self._on_edit)
        self.prompts = PromptRecorder(self.editor, lambda: self.assist.segmenter)
        """Prompt logs of the edits (``gt_widget.promptlog``); a LabelingSession saves them beside its output."""
        self._worker_id, self._fixed_radius, self._brush_radius = worker_id, brush_radius, int(brush_radius or 8)
        self._status, self._help = "", False
        self._callbacks: list[Callable[[SegmentationWidget], None]] = []
        self.toolbar = Toolbar(self.editor.labels, self.editor.mode, self._intent, keys.help_html(self.editor.mode))
        self.assist = Assist(
            segmenter, self.toolbar.set_busy, self.toolbar.set_note, self.say, self.toolbar.set_refining
        )
        self.requests = RequestQueue(self, (unsure_score, unsure_margin))
        self.tools: dict[str, Tool] = make_tools()
        self._tool = "auto"
        self.screen = Screen(self, (int(canvas_size[0]), int(canvas_size[1])))
        self.canvas = self.screen.canvas
        self.commands = Commands(self)
        runs_on = os.environ.get("GT_WIDGET_RUNS", "1") != "0"  # 0: palette PNGs only (paired benchmarks)
        ref = self.screen.layers.overlay.model_id if runs_on else ""
        self.scope = KeyScope(self.commands.key, self.handle_pointer, canvas_ref=ref)
        self.scope.on_runs_ready = self._runs_ready
        if self.assist.trace.on:  # hop timings for benchmarks (GT_WIDGET_TRACE=1)
            self.assist.trace.on_record = self.scope.send_trace
        stage = widgets.Box([self.canvas, self.toolbar.help, self.scope])
        stage.add_class("gt-widget-stage")
        self.children = [*self.toolbar.rows(), stage]
        self.add_class("gt-widget")
        self.load_image(image, initial_value=initial_value)

    def _runs_ready(self) -> None:
        """The page draws palette runs now (``runs.py``): send the overlay and preview that way."""
        with render.RENDER_LOCK:
            self.screen.layers.runs = True

    def say(self, text: str) -> None:
        """Show ``text`` in the status line."""
        self._status = text
        self.toolbar.show_status(text)

    def _guard(self, fn: Callable[[], Any]) -> None:
        """Run a UI action; a GtWidgetError becomes the status line instead of a traceback."""
        try:
            fn()
        except GtWidgetError as exc:
            self.say(f"⚠ {exc}")

    def refresh(self) -> None:
        """Re-render the toolbar and the interaction layer from the current state."""
        with self._lock:
            self.toolbar.render(self.commands.snapshot())
            self.draw_interaction()

    def _after(self, outcome: Outcome, status: str | None = None) -> None:
        """Common tail of an edit: status, controls, observers (outside the lock)."""
        self.say(status if status is not None else outcome.message)
        self.refresh()
        if outcome.recorded:
            self._notify()

    def _notify(self) -> None:
        for cb in list(self._callbacks):
            try:
                cb(self)
            except Exception as exc:
                self.say(f"⚠ a change observer failed: {message(exc)}")
                warnings.warn(f"observe_changes callback failed: {exc!r}", RuntimeWarning, stacklevel=2)

    def observe_changes(self, callback: Callable[[SegmentationWidget], None]) -> None:
        """Call ``callback(widget)`` after every committed edit (in the thread that made it)."""
        self._callbacks.append(callback)

    def load_image(self, image: ImageSource, initial_value: Any = None) -> None:
        """Show ``image`` (clearing labels, or loading ``initial_value``; a revisited image whose labels are
        unchanged gets its undo history back) and start computing its embedding in the background."""
        rgb, cached, cache_keys = self.assist.decode(image)
        h, w = rgb.shape[:2]
        with self._lock:
            self.screen.show(rgb)  # first: the editor's change event draws in the new view
            state, kept = self.editor.open(cache_keys[-1], (h, w), initial_value)
            # the image's log goes on whenever its history came back, also with only redo steps in it
            self.prompts.start(cache_keys[-1], (h, w), kept > 0 or bool(state.redo_stack))
            self._rgb = rgb
            self.outputs = Outputs(state, initial_value is not None, self._worker_id)
            for tool in self.tools.values():
                tool.deactivate(self)
            if self._fixed_radius is None:
                self._brush_radius = max(2, round(min(h, w) / 80))
            history = f" ({kept} undo steps kept)" if kept else ""
            self.say(f"{w}x{h} image{history}. {self.tools[self._tool].hint}")  # before the model may report
            self.requests.gen = self.assist.start_image(rgb, cached, cache_keys)
            self.redraw()
            self.refresh()

    def prefetch(self, image: ImageSource) -> None:
        """Decode (and, for a ``Prefetchable`` segmenter, encode) ``image`` in the background."""
        self.assist.prefetch(image)

    labels = property(lambda self: list(self.editor.labels), doc="The label names (index i + 1 in ``label_map``).")
    image = property(lambda self: self._rgb, doc="The current image, RGB uint8 (H, W, 3).")
    view = property(lambda self: self.screen.view, doc="The zoom/pan transform (see ``gt_widget.widget.render``).")
    busy = property(lambda self: self.assist.busy, doc="Whether the model works for the current image.")
    refining = property(lambda self: self.assist.refining, doc="Whether a refined second pass is pending.")
    status = property(lambda self: self._status, doc="The status line's text.")
    mouse = property(lambda self: self.screen.mouse, doc="Last pointer position (canvas px), None outside.")
    overlay_style = property(lambda self: self.screen.overlay, doc="'fill+outline', 'outline' or 'hidden'.")
    selected_instance = property(
        lambda self: self.editor.state.id_of(self.editor.state.selected), doc="Selected instance's id (0 = none)."
    )
    instance_ids = property(lambda self: list(self.editor.state.ids), doc="Stable id of each of ``instances``.")
    history = property(lambda self: self.editor.history, doc="(undo steps, redo steps) available.")

    @property
    def mode(self) -> Mode:
        """ "semantic" or "instance"."""
        return self.editor.mode

    def image_to_canvas(self, x: float, y: float) -> tuple[float, float]:
        """Canvas pixel position of image point (x, y) in the current view."""
        return self.screen.view.to_canvas(x, y)

    def canvas_to_image(self, cx: float, cy: float) -> tuple[float, float]:
        """Image point under canvas pixel position (cx, cy)."""
        return self.screen.view.to_image(cx, cy)

    tool = property(lambda self: self._tool, lambda self, v: self.commands.set_tool(v), doc="The active tool.")
    label = property(lambda self: self.editor.label, lambda self, v: self.commands.set_label(v), doc="Current label.")
    opacity = property(
        lambda self: self.screen.opacity, lambda self, v: self.commands.set_opacity(v), doc="Overlay opacity 0..1."
    )
    brush_radius = property(
        lambda self: self._brush_radius, lambda self, v: self.commands.set_brush(v), doc="Brush radius (image px)."
    )

    def set_overlay(self, style: str) -> None:
        """Show the labels as one of ``render.OVERLAY_STYLES`` (fill+outline / outline / hidden)."""
        with self._lock:
            self.screen.set_overlay(style)
            self.refresh()

    def wait_idle(self, timeout: float | None = 60) -> bool:
        """Block until model work (prefetch and refined passes included) is done; False on timeout."""
        return self.assist.wait_idle(timeout)

    @property
    def label_map(self) -> np.ndarray:
        """uint8 (H, W): 0 = BACKGROUND, i = ``labels[i - 1]`` (instance mode: each instance's label)."""
        with self._lock:
            return self.editor.state.label_map()

    @property
    def instance_map(self) -> np.ndarray:
        """uint8 (H, W): 0 = none, k = ``instances[k - 1]`` (instance mode only; the compact form Ground Truth
        writes: the instance shown as id ``instance_ids[k - 1]``)."""
        with self._lock:
            return self.editor.instance_map()

    @property
    def instance_masks(self) -> list[np.ndarray]:
        """Bool (H, W) mask of each instance, in instance order (instance mode only)."""
        imap, n = self.instance_map, len(self.instances)
        return [imap == k + 1 for k in range(n)]

    @property
    def instances(self) -> list[Instance]:
        """The instances (label, colour) in map order (instance mode; [] in semantic mode)."""
        return self.snapshot()[1]

    def snapshot(self) -> tuple[np.ndarray, list[Instance]]:
        """(map copy, instances) taken atomically (the label map and [] in semantic mode)."""
        with self._lock:
            return self.editor.snapshot()

    def initial_value_modified(self) -> bool | None:
        """Whether the labels differ from ``initial_value`` (None when there was none)."""
        with self._lock:
            return self.outputs.initial_modified(self.editor.state)

    def to_answer(self) -> dict[str, Any]:
        """What ``crowd-semantic-segmentation`` / ``crowd-instance-segmentation`` submits under its name."""
        with self._lock:
            return self.outputs.answer(self.editor.state)

    def to_worker_response(self, worker_id: str | None = None) -> dict[str, Any]:
        """The worker-response JSON Ground Truth writes to annotations/worker-response/ (§1.3)."""
        with self._lock:
            return self.outputs.worker_response(self.editor.state, worker_id)

    def consolidated_png(self) -> bytes:
        """The consolidated 8-bit palette PNG (value = internal-color-map key, §1.6)."""
        with self._lock:
            return self.outputs.consolidated_png(self.editor.state)

    def _edit(self, fn: Callable[[], Outcome], status: str | None = None) -> Outcome:
        with self._lock:
            outcome = fn()
        self._after(outcome, status if outcome.changed else None)
        return outcome

    def _points(self, points: Sequence[Sequence[float]], what: str) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in validate_points(points, self.editor.state.shape, what)]

    def brush(self, points: Sequence[Sequence[float]], radius: float | None = None) -> None:
        """Paint the current label (instance) along ``points`` with a round brush; one undo step."""
        self._stroke(points, radius, erase=False)

    def erase(self, points: Sequence[Sequence[float]], radius: float | None = None) -> None:
        """Erase (set to BACKGROUND) along ``points``; one undo step."""
        self._stroke(points, radius, erase=True)

    def _stroke(self, points: Sequence[Sequence[float]], radius: float | None, erase: bool) -> None:
        pts, r = self._points(points, "brush"), check_brush_radius(self._brush_radius if radius is None else radius)
        self._edit(lambda: self.editor.brush(pts, r, erase), "erased" if erase else f"painted {self.label!r}")

    def commit_stroke(self) -> None:
        """Commit the stroke being drawn with the mouse (one undo step)."""
        with self._lock:
            outcome = self.editor.finish_stroke()
        if outcome is not None:
            self._after(outcome, self.tools[self._tool].hint if outcome.changed else None)

    def polygon(self, vertices: Sequence[Sequence[float]]) -> None:
        """Fill the polygon ``vertices`` (>= 3 (x, y) points) with the current label; one undo step."""
        pts = self._points(vertices, "polygon")
        if len(pts) < 3:
            raise PromptError(f"a polygon needs at least 3 vertices, got {len(pts)}")
        self._edit(
            lambda: self.editor.polygon(pts), f"polygon filled with {self.label!r}. {self.tools['polygon'].hint}"
        )

    def fill(self, x: float, y: float) -> None:
        """Flood-fill the closed region around pixel (x, y) with the current label; one undo step."""
        ((fx, fy),) = self._points([(x, y)], "fill")
        self._edit(lambda: self.editor.fill(fx, fy), f"region filled with {self.label!r}")

    def clear(self) -> None:
        """Remove every label (and, in instance mode, every instance); one undo step."""
        self._edit(self.editor.clear, "cleared (z undoes it)")

    def undo(self) -> bool:
        """Undo one step (a stroke, an auto-segment, a click...); False when there is nothing to undo."""
        return self._edit(self.editor.undo).recorded

    def redo(self) -> bool:
        """Redo one undone step; False when there is nothing to redo."""
        return self._edit(self.editor.redo).recorded

    def object_finished(self) -> None:
        """The auto tool's object is done (Enter, Done, a label...): the next 4 clicks start a new one."""
        with self._lock:
            self.editor.finish_object()
        self.say("object done: click the 4 extreme points of the next object")
        self.refresh()

    def add_instance(self, label: str | None = None) -> int:
        """Start a new instance of ``label`` (default: the current label) and select it; returns its stable id."""
        with self._lock:
            k = self.editor.add_instance(label)
        self._after(Outcome(True), f"instance {k} ({self.label}) added: paint or auto-segment it")
        return k

    def select_instance(self, k: int) -> None:
        """Make instance ``k`` (its stable id, as its chip shows) the one painting and auto-segment add to."""
        with self._lock:
            self.editor.select_instance(k)
        self._after(Outcome(False, recorded=False), self.editor.instance_status())

    def relabel_instance(self, k: int, label: str) -> None:
        """Give instance ``k`` another label (its colour stays); one undo step."""
        self._edit(lambda: self.editor.relabel_instance(k, label), f"instance {k} is now {label!r}")

    def delete_instance(self, k: int) -> None:
        """Delete instance ``k`` and its pixels; one undo step. The others keep their ids (``instance_ids``)."""
        out = self._edit(lambda: self.editor.delete_instance(k))
        self.say(f"instance {k} deleted; " + self.editor.instance_status() if out.changed else out.message)

    def auto_segment(self, points: Sequence[Sequence[float]], wait: bool = True) -> np.ndarray | None:
        """Segment the object whose 4 extreme points (x, y) are given, in the current label (or the selected
        instance). 4 points on a part the last mask missed ADD to it. ``wait=False`` queues the work (the UI's
        way); ``wait=True`` returns the final (refined) mask, bool HxW. Until the object is finished (Enter,
        ``tools["auto"].finish``), clicks in the auto tool correct it."""
        pts = [(float(x), float(y)) for x, y in validate_extreme_points(points, self.editor.state.shape)]
        auto = self.tools["auto"]
        if isinstance(auto, AutoTool):
            auto.object = pts  # straight after it, clicks in the auto tool correct this object
        return self.requests.auto_segment(pts, wait)

    def preview_extreme(self, points: Sequence[Sequence[float]] | None) -> None:
        """Preview (never commit) the mask of these 4 extreme points on the preview layer, latest request
        wins (see ``requests``); None erases it. Points outside the image erase it too."""
        if points is None:
            self.requests.cancel_preview()
            return
        try:
            pts = validate_extreme_points(points, self.editor.state.shape)
        except PromptError:
            self.requests.cancel_preview()
            return
        self.requests.preview([(float(x), float(y)) for x, y in pts])

    def corrective_click(self, x: float, y: float, positive: bool = True, wait: bool = True) -> np.ndarray | None:
        """Refine the last model mask: a positive click adds the region at (x, y), a negative one removes it.
        Without a mask to refine, a positive click segments the object under it."""
        ((cx, cy),) = self._points([(x, y)], "click")
        positive = click_polarity(positive)  # "false" is refused, not taken as positive
        with self._lock:
            if not positive and self.editor.live_part() is None and not self.assist.busy:
                raise PromptError("a negative click needs a mask to correct: auto-segment the object first")
        return self.requests.corrective_click(cx, cy, positive, wait)

    def next_candidate(self) -> int:
        """Show the model's next candidate mask for the last model edit (one undo step); returns its index,
        or -1 when there is no alternative."""
        with self._lock:
            idx, outcome = self.editor.next_candidate()
        self._after(outcome, outcome.message)
        return idx

    def zoom(self, factor: float, center: Sequence[float] | None = None) -> None:
        """Zoom by ``factor`` (> 1 magnifies) keeping image point ``center`` fixed (default: canvas centre)."""
        with self._lock:
            self.screen.zoom(factor, (float(center[0]), float(center[1])) if center is not None else None)

    def fit(self) -> None:
        """Show the whole image."""
        with self._lock:
            self.screen.fit()

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by (dx, dy) canvas pixels."""
        with self._lock:
            self.screen.pan(dx, dy)

    def redraw(self) -> None:
        """Repaint every layer."""
        self.screen.redraw()

    def draw_interaction(self) -> None:
        """Repaint the interaction layer (the model's prompts, the active tool's marks)."""
        self.screen.draw_interaction()

    def _on_edit(self, box: Box | None, committed: bool) -> None:
        """Editor change: repaint the changed part of the label layer."""
        self.screen.draw_overlay(box)

    def handle_mouse_down(self, cx: float, cy: float) -> None:
        """ipycanvas mouse-down at canvas pixel (cx, cy) (left button)."""
        self.handle_pointer("down", cx, cy)

    def handle_mouse_move(self, cx: float, cy: float) -> None:
        """ipycanvas mouse-move at canvas pixel (cx, cy)."""
        self.handle_pointer("move", cx, cy)

    def handle_mouse_up(self, cx: float, cy: float) -> None:
        """ipycanvas mouse-up at canvas pixel (cx, cy)."""
        self.handle_pointer("up", cx, cy)

    def handle_pointer(self, kind: str, cx: float, cy: float, button: int = 0, shift: bool = False) -> None:
        """A pointer event ("down", "move", "up", "out"), with the button and Shift from the key scope.

        Takes the widget's lock before the handler's render lock (``render.drawing``), the order of every other
        path (an undo, a model answer): widget messages arrive on several kernel threads (ipykernel 7's
        subshells), and the reverse order deadlocked a pointer event against an undo."""
        with self._lock:
            self._guard(lambda: self.screen.pointer(kind, float(cx), float(cy), button, shift))

    def handle_key_down(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> None:
        """A key pressed in the widget (see ``keys.SHORTCUTS``)."""
        self.commands.key(key, bool(shift), bool(ctrl), bool(meta))

    def _intent(self, name: str, value: Any) -> None:
        """A toolbar control was used; the canvas takes the keyboard focus back afterwards."""
        if not self.toolbar.muted:
            self._guard(lambda: self.commands.intent(name, value))
        self.scope.focus()

    def close(self) -> None:
        """Stop the model threads and close the widget and its children."""
        self.assist.close()

        def close_tree(widget: widgets.Widget) -> None:
            for child in getattr(widget, "children", ()):
                close_tree(child)
            if widget is not self:
                widget.close()

        close_tree(self)
        super().close()
