"""Model requests as the user makes them: queue a prompt, apply its answers (fast, then refined), report.

Sits between the façade and the model assistant: it knows the prompt (extreme points, clicks), where the
answer goes (``editor.Target``) and which points to keep drawn until it is applied, and writes the status
line for an answer. Model calls themselves run in ``assist.Assist``.

Live preview of the 4th extreme point: ``preview(points)`` asks for the mask the 4 points would give, in the
assistant's latest-only slot (a newer pointer position replaces a waiting one); the answer is drawn on the
screen's preview layer unless a newer preview was drawn or the preview was cancelled meanwhile. A commit
(``auto_segment``) with exactly the previewed points applies that answer (and its refined pass) instead of
predicting again, so the click commits what is shown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gt_widget.errors import GtWidgetError, PromptError
from gt_widget.segment.base import Prediction, StagedPrediction, predict_staged
from gt_widget.widget.assist import DOUBT_MARGIN, UNSURE_SCORE, message, model_doubts, precision_of
from gt_widget.widget.editor import ModelRequest, Outcome
from gt_widget.widget.render import drawing
from gt_widget.widget.state import WidgetError
from gt_widget.widget.tools.base import Sketch

if TYPE_CHECKING:
    from gt_widget.widget.widget import SegmentationWidget

Marker = tuple[float, float, str]
"""(x, y, kind) of a prompt point drawn while its request waits: kind "extreme", "+" or "-"."""

POSITIVE, NEGATIVE = "#00c853", "#d50000"


@dataclass(frozen=True)
class Preview:
    """A drawn preview: request number, image generation, the 4 extreme points and the model's answer."""

    seq: int
    gen: int
    points: tuple[tuple[float, float], ...]
    staged: StagedPrediction
    ran: tuple[float | None, float | None] = (None, None)
    """(start, end) of its model run in ``assist.Trace`` time (None when tracing is off)."""

    @property
    def mask(self) -> np.ndarray:
        """The previewed mask, bool (H, W)."""
        return np.asarray(self.staged.first.mask, bool)


class RequestQueue:
    """The widget's model requests for the current image generation ``gen``."""

    def __init__(
        self, host: SegmentationWidget, doubt: tuple[float | None, float] = (UNSURE_SCORE, DOUBT_MARGIN)
    ) -> None:
        self.host = host
        self.doubt = doubt
        """(unsure_score, margin) of ``assist.model_doubts``."""
        self.gen = 0
        self.inflight: dict[object, tuple[int, list[Marker]]] = {}
        self.wanted = 0
        """Number of the newest preview asked for (0: none; cancelling bumps it too)."""
        self.shown: Preview | None = None
        """The preview on screen (None: none)."""
        self.previews_run = 0
        """Preview predictions computed (tests count them)."""
        self.computed: Preview | None = None
        """The latest preview answer, drawn or not (a click landing while it ran commits it)."""
        self._plock = threading.Lock()
        """Guards ``wanted`` / ``shown``. Never the widget's lock: pointer moves hold the render lock
        (``render.drawing``) and take this one inside it; the preview's model job takes them in that order too."""

    # ------------------------------------------------------------------ live preview

    def preview(self, ext: list[tuple[float, float]]) -> None:
        """Ask for the mask of these 4 extreme points as a preview (latest-only; see module docstring)."""
        host = self.host
        pts = tuple((float(x), float(y)) for x, y in ext)
        with self._plock:
            if self.shown is not None and self.shown.points == pts and self.shown.gen == self.gen:
                return  # already on screen
            self.wanted += 1
            seq, gen = self.wanted, self.gen
        rec = host.assist.trace.begin("preview")

        def job() -> None:
            seg = host.assist.segmenter
            if seq != self.wanted or gen != self.gen or seg is None or not host.assist.embedded:
                return  # superseded, cancelled, or the image is not embedded yet: no preview
            host.assist.trace.mark(rec, "model_start")
            try:
                staged = predict_staged(seg, extreme_points=list(pts))
            except GtWidgetError:
                return  # e.g. points too close together: simply no preview
            self.previews_run += 1
            host.assist.trace.mark(rec, "model_end")
            ran = (rec["model_start"], rec["model_end"]) if rec is not None else (None, None)
            with drawing(), self._plock:  # the pointer thread's order: render lock, then this one
                self.computed = Preview(seq, gen, pts, staged, ran)  # a click that came meanwhile may commit it
                if seq != self.wanted or gen != self.gen:
                    return  # cancelled or committed meanwhile: never draw over it
                self.shown = self.computed
                host.screen.draw_preview(self.shown.mask)
            host.assist.trace.mark(rec, "sent")
            host.assist.trace.done(rec)

        host.assist.latest(job)

    def cancel_preview(self) -> None:
        """Drop the preview: the one waiting never runs, one running is not drawn, the drawn one is erased."""
        host = self.host
        with drawing(), self._plock:
            self.wanted += 1
            had = self.shown is not None
            self.shown = self.computed = None
            if had:
                host.screen.draw_preview(None)
        host.assist.drop_latest()

    def _take_preview(self, gen: int, ext: list[tuple[float, float]]) -> Preview | None:
        """Model thread: the latest preview when it is for exactly these points (then forgotten)."""
        pts = tuple((float(x), float(y)) for x, y in ext)
        with self._plock:
            last, self.computed, self.shown = self.computed, None, None
            self.wanted += 1
        if last is not None and last.gen == gen and last.points == pts:
            return last
        return None

    # ------------------------------------------------------------------ requests

    def auto_segment(self, ext: list[tuple[float, float]], wait: bool) -> np.ndarray | None:
        """Queue an auto-segment; with ``wait`` return the final (refined) mask. A preview for exactly these
        points is committed as it is (no second prediction)."""
        host = self.host
        with host._lock:
            gen, target = self.gen, host.editor.capture_target()
        with self._plock:
            self.wanted += 1  # a preview still waiting or running is not drawn any more
        host.assist.drop_latest()
        rec = host.assist.trace.begin("auto")

        def job() -> tuple[np.ndarray, Future[Any] | None]:
            trace = host.assist.trace
            trace.mark(rec, "dequeued")
            reused = self._take_preview(gen, ext)
            if reused is not None:
                staged = reused.staged
                if rec is not None:  # the answer is the preview's run, which the pointer's last move started
                    rec["model_start"], rec["model_end"] = reused.ran
            else:
                trace.mark(rec, "model_start")
                staged = host.assist.staged(gen, extreme_points=ext)
                trace.mark(rec, "model_end")
            if rec is not None:
                rec["reused_preview"] = reused is not None
            first = ModelRequest(target, ext, [])
            self.apply(gen, staged.first, first, rec)
            with drawing(), self._plock:  # after the overlay is drawn beneath it: no blank frame between
                host.screen.draw_preview(None)
            with host._lock:
                part = host.editor.live_part()
            if staged.refine is None or part is None:
                return np.asarray(staged.first.mask, bool), None
            refined = ModelRequest(target, ext, [], replace=True, part=part, merge=True, serial=part.serial)
            apply: Callable[[Prediction], bool] = lambda p: self.apply(gen, p, refined)  # noqa: E731
            return np.asarray(staged.first.mask, bool), host.assist.refine_later(gen, staged.refine, apply)

        return self._run(job, wait, gen, [(x, y, "extreme") for x, y in ext])

    def corrective_click(self, x: float, y: float, positive: bool, wait: bool) -> np.ndarray | None:
        """Queue a corrective click on the live part (or, positive without one, a one-click segment)."""
        host = self.host
        click = (x, y, positive)
        with host._lock:
            gen, target = self.gen, host.editor.capture_target()

        def job() -> tuple[np.ndarray, None]:
            seg_ready = host.assist.ready(gen)
            with host._lock:
                part = host.editor.live_part()
                ext = list(part.extreme_points or []) if part is not None else []
                clicks = (list(part.clicks) if part is not None else []) + [click]
                previous = part.prediction if part is not None else None
            if part is None and not positive:
                raise PromptError("a negative click needs a mask to correct: auto-segment the object first")
            pred = seg_ready.predict(extreme_points=ext or None, clicks=clicks, previous=previous)
            request = ModelRequest(target, ext or None, clicks, replace=part is not None, part=part)
            self.apply(gen, pred, request)
            return np.asarray(pred.mask, bool), None

        return self._run(job, wait, gen, [(x, y, "+" if positive else "-")])

    def _run(
        self, request: Callable[[], tuple[np.ndarray, Future[Any] | None]], wait: bool, gen: int, markers: list[Marker]
    ) -> np.ndarray | None:
        """Queue ``request`` on the model thread; its points stay drawn until it is applied (or fails)."""
        host = self.host
        token = object()
        with host._lock:
            self.inflight[token] = (gen, markers)
            host.draw_interaction()

        def job() -> tuple[np.ndarray, Future[Any] | None]:
            try:
                return request()
            finally:
                with host._lock:
                    self.inflight.pop(token, None)
                    host.draw_interaction()

        if wait and host.assist.on_model_thread():
            return job()[0]  # called from a change observer on a model thread: waiting would deadlock
        if host.assist.busy:
            host.say("model busy: your input is queued and will be applied when it is ready")
        fut = host.assist.submit(job)
        if not wait:
            fut.add_done_callback(self._report)
            return None
        try:
            mask, refine = fut.result()
            if refine is not None and refine.result() is not None:
                with host._lock:
                    part = host.editor.live_part()
                    if part is not None and part.prediction is not None:
                        return np.asarray(part.prediction.mask, bool)
            return mask
        except GtWidgetError:
            raise
        except Exception as exc:
            raise WidgetError(f"the segmentation model failed: {message(exc)}") from exc

    def apply(self, gen: int, pred: Prediction, request: ModelRequest, rec: dict[str, Any] | None = None) -> bool:
        """Model thread: paint ``pred`` for ``request`` unless the image changed; True when it was used.
        ``rec``: the request's hop-timing record (``assist.Trace``), stamped and handed on here."""
        host = self.host
        request.unsure = model_doubts(pred, *self.doubt)  # outside the lock: compares full-size masks
        trace = host.assist.trace
        with host._lock:
            if gen != self.gen:
                return False
            trace.mark(rec, "applied")
            outcome = host.editor.apply_prediction(pred, request)  # draws the overlay (one comm message)
            trace.mark(rec, "sent")
            status = self.describe(pred, request, outcome)
        host._after(outcome, status)
        trace.mark(rec, "after")
        trace.done(rec)
        return outcome.recorded or bool(outcome.message)

    def _report(self, fut: Future[Any]) -> None:
        exc = fut.exception() if not fut.cancelled() else None
        if exc is not None:
            self.host.say(f"⚠ {message(exc)}")

    @property
    def pending(self) -> int:
        """Requests queued or running."""
        return len(self.inflight)

    def draw(self, sketch: Sketch) -> None:
        """The live part's prompts and the points of requests still waiting."""
        host = self.host
        view = host.view
        part = host.editor.live_part()
        if part is not None:
            for x, y in part.extreme_points or []:
                cx, cy = view.to_canvas(x, y)
                sketch.circle(cx, cy, 4, stroke="white")
            for x, y, pos in part.clicks:
                cx, cy = view.to_canvas(x, y)
                sketch.circle(cx, cy, 5, fill=POSITIVE if pos else NEGATIVE, stroke="white")
        color = host.editor.paint_color()
        for gen, markers in list(self.inflight.values()):
            for x, y, kind in markers if gen == self.gen else []:
                fill = {"+": POSITIVE, "-": NEGATIVE}.get(kind, color)
                cx, cy = view.to_canvas(x, y)
                sketch.circle(cx, cy, 6 if kind == "extreme" else 5, fill=fill, stroke="white")

    def describe(self, pred: Prediction, request: ModelRequest, outcome: Outcome) -> str:
        """The status line for an applied answer (called under the widget's lock)."""
        editor = self.host.editor
        part = editor.live_part()
        if not outcome.recorded:
            return outcome.message or self.host.status
        note = self._click_message(pred, request) if request.clicks and not request.merge else ""
        if "before this auto-segment" in note:  # the one thing a click cannot do: say so even if nothing changed
            return note
        if not outcome.changed:
            return outcome.message
        n = len(pred.candidates)
        precision = precision_of(self.host.assist.segmenter)  # say which numbers the model computes in
        score = f"score {pred.score:.2f}" + (f", {precision}" if precision else "")
        if request.merge:
            return f"refined mask ({score}). {self.host.tools[self.host.tool].status_hint(self.host)}"
        if part is not None and part.unsure and n >= 2:
            return f"the model is unsure ({score}): other shapes are likely; press n to see {n - 1}"
        hint = self.host.tools[self.host.tool].status_hint(self.host)
        return note or f"mask added ({score}). {hint}"

    def _click_message(self, pred: Prediction, request: ModelRequest) -> str:
        editor = self.host.editor
        x, y, positive = request.clicks[-1]
        h, w = editor.state.shape
        xi, yi = min(max(round(x), 0), w - 1), min(max(round(y), 0), h - 1)
        part = editor.live_part()
        if (
            not positive
            and part is not None
            and editor.state.map[yi, xi] == part.value
            and editor.kept_before_part(x, y)
        ):
            name = editor.label_name(part.value)
            return (
                f"({x:.0f}, {y:.0f}) was already {name!r} before this auto-segment: a click only edits the last "
                "mask; use the eraser (e) to remove older labels"
            )
        if bool(np.asarray(pred.mask, bool)[yi, xi]) != positive:
            return (
                f"the model kept ({x:.0f}, {y:.0f}) {'outside' if positive else 'inside'} the mask: click "
                "again nearby, or paint it with the brush (b) / eraser (e)"
            )
        return f"mask corrected (score {pred.score:.2f})"
