"""Proposals: the model's automatic object proposals, accepted with one click (key s).

Kernel side. While this tool is active, the current image's proposals (``gt_widget.segment.proposals``:
a point grid through MobileSAM's decoder on the image's existing embedding) are computed on the
assistant's *background* thread once the embedding is ready and the model is idle; the computation stops
between decoder batches as soon as the user acts (an interactive request is queued or a refined pass is
pending) or the image changes, and starts again when the model is idle. Results are cached per image
(``ProposalCache``), so coming back to an image or to the tool is instant.

Pointer: the proposal under the pointer (the smallest one holding it) is drawn as an outline; a left click
accepts it with the current label (semantic) or as a new instance (instance mode) in ONE undo step, and it
becomes the live model part: right click / Shift+click corrects it like an auto-segment result (its grid
point is kept as the part's positive click). Enter accepts every proposal whose predicted IoU is at least
``ACCEPT_ALL_SCORE`` (largest first, smaller ones on top) as one undo step: a pre-labeling pass.
Conventions: (x, y) pixels of the original image; masks bool (H, W).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import cv2
import numpy as np

from gt_widget.errors import GtWidgetError
from gt_widget.segment.base import Prediction
from gt_widget.segment.proposals import (
    Proposal,
    ProposalCache,
    ProposalsCancelledError,
    ProposalSettings,
    proposal_at,
)
from gt_widget.widget.tools.base import Host, Pointer, Sketch, Tool

if TYPE_CHECKING:
    from gt_widget.widget.widget import SegmentationWidget


@runtime_checkable
class ModelHost(Host, Protocol):
    """A host that runs the model (the façade): its assistant and its request queue (for the generation)."""

    assist: Any
    requests: Any


ACCEPT_ALL_SCORE = 0.9
"""Enter accepts every proposal whose predicted IoU reaches this."""

RETRY_S = 0.1
"""While the model is busy, the background job looks again after this many seconds."""

POINTS_PER_SIDE = 16
"""The proposal grid (16 x 16 points: ~6 CPU-s per image with bf16, ~3 s on 2 idle cores; benchmarks/README.md)."""


class ProposalTool(Tool):
    """Hover to see a proposal's outline, click to accept it (see module docstring)."""

    name = "proposal"
    key = "s"
    icon = "th-large"
    tooltip = "Proposals: click an outlined object to accept it; Enter accepts all confident ones (s)"
    hint = (
        "Proposals: point at an object and click to accept its outline with the current label; right click "
        "corrects the last mask; Enter accepts every confident proposal."
    )
    cursor = "pointer"

    def __init__(self) -> None:
        self.points_per_side = POINTS_PER_SIDE
        self.settings = ProposalSettings(points_per_side=POINTS_PER_SIDE)
        self.cache = ProposalCache()
        self._lock = threading.Lock()
        self._found: tuple[int, list[Proposal]] | None = None
        """(image generation, its proposals)."""
        self._scheduled = -1
        """The generation a background job is scheduled or running for (or has failed for)."""
        self._error: tuple[int, str] | None = None
        """(generation, why its proposals cannot be computed)."""
        self._hover: Proposal | None = None
        self._outlines: dict[int, list[list[tuple[float, float]]]] = {}
        self.seconds: float | None = None
        """How long the last computed (not cached) proposals took."""

    # ------------------------------------------------------------------ background computation

    def proposals(self, host: Host) -> list[Proposal] | None:
        """The current image's proposals, or None while they are being computed (this schedules them) or
        when ``host`` runs no model (a host without ``assist``, e.g. a test double)."""
        if not isinstance(host, ModelHost):
            return None
        w = cast("SegmentationWidget", host)
        gen = w.requests.gen
        with self._lock:
            if self._found is not None and self._found[0] == gen:
                return self._found[1]
            if self._scheduled == gen:
                return None
            self._scheduled = gen
            self._found = None
            self._outlines = {}
            self._hover = None
        self._submit(w, gen)
        return None

    def wait(self, host: Host, timeout: float = 120.0) -> list[Proposal]:
        """Block (notebook / tests) until the current image's proposals are ready; a clear error otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.proposals(host)
            if found is not None:
                return found
            with self._lock:
                error = self._error
            if error is not None and error[0] == cast("SegmentationWidget", host).requests.gen:
                raise GtWidgetError(error[1])
            if time.monotonic() > deadline:
                raise GtWidgetError(f"the proposals were not ready within {timeout:.0f} s")
            time.sleep(0.05)

    def _not_ready(self, w: SegmentationWidget) -> str:
        """Why there are no proposals to accept yet."""
        error = self._error
        if error is not None and error[0] == w.requests.gen:
            return f"⚠ {error[1]}"
        return "the proposals are still being computed: one moment"

    def _submit(self, w: SegmentationWidget, gen: int) -> None:
        from gt_widget.widget.worker import BACKGROUND

        w.assist.background.submit(lambda: self._job(w, gen), BACKGROUND)

    def _job(self, w: SegmentationWidget, gen: int) -> None:
        """Background thread: compute when the model is idle, give way when the user acts, retry later."""
        assist = w.assist
        if gen != assist.gen:
            return
        if not assist.embedded or assist.busy or assist.refining:
            if not assist.embedded and not assist.busy:  # the embedding failed: its error is on the status line
                with self._lock:
                    self._error = (gen, f"no proposals: the image embedding failed ({w.status.lstrip('⚠ ')})")
                return
            time.sleep(RETRY_S)
            self._submit(w, gen)
            return
        seg = assist.segmenter

        def user_acted() -> bool:
            return gen != assist.gen or assist.busy or assist.refining

        start = time.perf_counter()
        try:
            assert seg is not None
            cached = self.cache.peek(seg, self.points_per_side, self.settings)
            found = (
                cached
                if cached is not None
                else self.cache.get(seg, self.points_per_side, settings=self.settings, cancel=user_acted)
            )
        except ProposalsCancelledError:
            time.sleep(RETRY_S)
            self._submit(w, gen)
            return
        except GtWidgetError as exc:  # e.g. a segmenter without proposals (GrabCut)
            with self._lock:
                self._error = (gen, str(exc))
            w.say(f"⚠ {exc}")
            return
        if cached is None:
            self.seconds = time.perf_counter() - start
        with self._lock:
            if gen != assist.gen:
                return
            self._found = (gen, found)
        if w.tool == self.name:
            w.say(f"{len(found)} proposals: point at an object and click to accept it; Enter accepts all confident")
            w.draw_interaction()

    # ------------------------------------------------------------------ accepting

    def accept(self, host: Host, x: float, y: float) -> np.ndarray | None:
        """Accept the proposal under (x, y) with the current label / as a new instance (one undo step);
        returns its mask, or None (with a status message) when there is none there or none yet."""
        w = cast("SegmentationWidget", host)
        found = self.proposals(w)
        if found is None:
            w.say(self._not_ready(w))
            return None
        hit = proposal_at(found, x, y)
        if hit is None:
            w.say(f"no proposal at ({x:.0f}, {y:.0f}): use auto-segment (a) or the brush (b) there")
            return None
        from gt_widget.widget.editor import ModelRequest, Target

        gx, gy = hit.point
        settings = asdict(self.settings)
        info = {
            "pointer": (float(x), float(y)),
            "point": (float(gx), float(gy)),
            "points_per_side": self.points_per_side,
            "settings": settings,
        }
        with w._lock:
            editor = w.editor
            request = ModelRequest(Target(editor.label), None, [], proposal=info)  # instance mode: a new one
            outcome = editor.apply_prediction(Prediction(hit.mask.copy(), hit.score), request)
            part = editor.live_part()
            if part is not None:  # corrective clicks refine it from the grid point that made it
                part.clicks = [(float(gx), float(gy), True)]
                editor.keep_part(part)
        status = f"proposal accepted as {editor.label_name(part.value)!r}" if part is not None else outcome.message
        w._after(outcome, f"{status} (score {hit.score:.2f}); right click corrects it, z undoes it")
        return hit.mask

    def accept_all(self, host: Host, threshold: float = ACCEPT_ALL_SCORE) -> int:
        """Accept every proposal scoring at least ``threshold`` with the current label (instance mode: one
        new instance each), largest first so smaller objects stay on top; ONE undo step. Returns how many."""
        w = cast("SegmentationWidget", host)
        found = self.proposals(w)
        if found is None:
            w.say(self._not_ready(w))
            return 0
        chosen = sorted((p for p in found if p.score >= threshold), key=lambda p: -p.area)
        info = {  # what the prompt log records to replay this pass (gt_widget.promptlog, "proposals")
            "threshold": float(threshold),
            "points_per_side": self.points_per_side,
            "settings": asdict(self.settings),
            "points": [p.point for p in chosen],
            "scores": [p.score for p in chosen],
        }
        with w._lock:
            outcome, n = w.editor.accept_proposals([p.mask for p in chosen], f"accept {len(chosen)} proposals", info)
        label = w.label
        w._after(outcome, f"{n} proposals accepted as {label!r} (z undoes them all)" if n else outcome.message)
        return n

    # ------------------------------------------------------------------ pointer and drawing

    def down(self, host: Host, p: Pointer) -> None:
        if p.negative:
            host.corrective_click(p.x, p.y, positive=False, wait=False)
            return
        self.accept(host, p.x, p.y)

    def move(self, host: Host, p: Pointer) -> None:
        found = self.proposals(host)
        hit = proposal_at(found, p.x, p.y) if found is not None else None
        if hit is not self._hover:
            self._hover = hit
            host.draw_interaction()

    def enter(self, host: Host) -> bool:
        if self.proposals(host) is None and not isinstance(host, ModelHost):
            return False
        self.accept_all(host)
        return True

    def cancel(self, host: Host) -> bool:
        had = self._hover is not None
        self._hover = None
        return had

    def hovered(self) -> Proposal | None:
        """The proposal whose outline is shown."""
        return self._hover

    def _outline(self, prop: Proposal) -> list[list[tuple[float, float]]]:
        key = id(prop)
        if key not in self._outlines:
            contours, _ = cv2.findContours(prop.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            rings = []
            for c in contours:
                c = cv2.approxPolyDP(c, 1.0, True)
                if len(c) >= 2:
                    pts = [(float(q[0][0]), float(q[0][1])) for q in c]
                    rings.append([*pts, pts[0]])
            self._outlines[key] = rings
        return self._outlines[key]

    def draw(self, host: Host, sketch: Sketch) -> None:
        found = self.proposals(host)  # the tool is active: make sure this image's proposals are on their way
        hover = self._hover
        if found is None or hover is None or not any(hover is q for q in found):
            return
        view = host.view
        color = host.editor.paint_color()
        for ring in self._outline(hover):
            pts = [view.to_canvas(x, y) for x, y in ring]
            sketch.lines(pts, "white")
            sketch.lines(pts, color, dashed=True)
