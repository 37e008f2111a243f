"""The edit model of one image: label/instance maps, the paint policy, the model's refinable part, undo.

Pure and synchronous: no ipywidgets, no threads, no model calls. The façade (``widget.py``) locks around
every call and listens to ``on_change``; tools and the model assistant only *ask* the editor to edit.

Conventions: (x, y) pixels of the original image (pixel centres at integers); masks are bool (H, W); boxes
are ``(y0, y1, x0, x1)`` half-open; in semantic mode the map holds label indices (0 = BACKGROUND, i =
``labels[i - 1]``), in instance mode compact positions (0 = none, k = ``instances[k - 1]``, the written form);
instances are named by stable ids (``LabelState.ids``) that never shift when another is deleted: the
instance methods take ids and messages show them.

Rules (one place each):
- every action (a stroke, polygon, fill, model answer, candidate switch, instance operation) is exactly
  ONE undo step, even when it changed no pixel: undo then takes back that action, never the one before;
  ``Outcome.message`` says "nothing changed" in that case;
- which value an edit paints is decided by the mode's ``PaintPolicy`` (chosen once, at construction);
- the model's last mask (``Part``) stays *live* (refinable by clicks / candidates) until any other edit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from gt_widget.errors import PromptError
from gt_widget.groundtruth.formats import Instance
from gt_widget.palette import PALETTE
from gt_widget.segment.base import Candidate, Prediction
from gt_widget.widget.initial import decode
from gt_widget.widget.state import (
    Box,
    Edit,
    LabelState,
    Mode,
    Part,
    Recorder,
    WidgetError,
    check_labels,
    freeze_part,
    paint_part,
    polygon_footprint,
    replace_part,
    stroke_footprint,
    thaw_part,
)

ChangeListener = Callable[[Box | None, bool], None]
EditLog = Callable[..., None]
"""``log(kind, **details)`` after every recorded action, one call per undo step (the prompt log's hook,
``widget.promptrec``): kind "model" (part, request, prediction), "candidate" (part), "stroke" (tool, points,
radius, value, label), "proposals" (masks, values, info: the accept-all's threshold, grid and per-mask
points / scores), "instance" (op "add" | "relabel" | "delete", value, label, color), "clear", "undo",
"redo". Actions that painted may add ``new_instances``: [{value, label, color}] they created (instance mode)."""
"""``listener(box, committed)``: pixels of ``box`` changed (None = everything, e.g. colours or instances);
``committed`` is False while a stroke is still being drawn."""

KEPT_PARTS = 10
"""How many recent model edits keep their part, so undo / redo can bring back a refinable mask."""


@dataclass
class Target:
    """Where a model answer goes, fixed when the user asked (not when the model answers): a label and, in
    instance mode, the instance's colour (its identity), or None for "a new instance" shared by every request
    made before that instance exists."""

    label: str
    color: str | None = None


@dataclass
class Outcome:
    """What an edit did: ``changed`` (any pixel or instance), and a status ``message`` for the user."""

    changed: bool
    message: str = ""
    recorded: bool = True
    """Whether an undo step was recorded (False for queries and late refinements)."""


class PaintPolicy(Protocol):
    """Which map value an edit writes (semantic: the label; instance: an instance of it)."""

    def value(self, state: LabelState, rec: Recorder, label: str) -> int:
        """The value a paint with ``label`` writes now (may create an instance inside ``rec``)."""

    def capture(self, state: LabelState, label: str, pending: Target | None) -> Target:
        """The target of a model request made now."""

    def resolve(self, state: LabelState, rec: Recorder, target: Target) -> int:
        """The value for ``target`` when its answer is applied (creating its instance if needed)."""

    def color(self, state: LabelState, label: str) -> str:
        """The colour the next paint will have."""


class SemanticPolicy:
    """A label per pixel: paint writes the label's index."""

    def value(self, state: LabelState, rec: Recorder, label: str) -> int:
        return state.label_index(label)

    def capture(self, state: LabelState, label: str, pending: Target | None) -> Target:
        return Target(label)

    def resolve(self, state: LabelState, rec: Recorder, target: Target) -> int:
        return state.label_index(target.label)

    def color(self, state: LabelState, label: str) -> str:
        return PALETTE[state.label_index(label) - 1]


class InstancePolicy:
    """Objects: paint adds to the selected instance when it has the current label, else starts a new one."""

    def _selected(self, state: LabelState, label: str) -> int:
        sel = state.selected
        return sel if sel and state.instances[sel - 1].label == label else 0

    def value(self, state: LabelState, rec: Recorder, label: str) -> int:
        return self._selected(state, label) or state.create_instance(rec, label)

    def capture(self, state: LabelState, label: str, pending: Target | None) -> Target:
        sel = self._selected(state, label)
        if sel:
            return Target(label, state.instances[sel - 1].color)
        return pending if pending is not None and pending.label == label else Target(label)

    def resolve(self, state: LabelState, rec: Recorder, target: Target) -> int:
        for k, inst in enumerate(state.instances):
            if target.color is not None and inst.color == target.color:
                state.selected = k + 1
                return k + 1
        k = state.create_instance(rec, target.label)
        target.color = state.instances[k - 1].color
        return k

    def color(self, state: LabelState, label: str) -> str:
        sel = self._selected(state, label)
        if sel:
            return state.instances[sel - 1].color
        try:
            return state.next_color()
        except WidgetError:
            return "#000000"


class Editor:
    """Label state of the current image plus the edit rules (see module docstring). Not thread-safe."""

    def __init__(self, labels: Sequence[str], mode: str = "semantic", max_history: int = 100) -> None:
        if mode not in ("semantic", "instance"):
            raise WidgetError(f"mode must be 'semantic' or 'instance', got {mode!r}")
        self.labels = check_labels(labels)
        self.mode: Mode = "instance" if mode == "instance" else "semantic"
        self.policy: PaintPolicy = InstancePolicy() if self.mode == "instance" else SemanticPolicy()
        self.max_history = max_history
        self.state = LabelState((1, 1), self.labels, self.mode, max_history=max_history)
        self.label = self.labels[0]
        self.part: Part | None = None
        self.pending_target: Target | None = None
        self.late: list[Candidate] = []
        """Refined masks that arrived after the user had edited: offered as extra candidates."""
        self._stroke: tuple[Recorder, int, tuple[float, float], float] | None = None
        self._stroke_instances = 0
        """Instances before the stroke in progress began (it may create one)."""
        self._stroke_points: list[tuple[float, float]] = []
        self._listeners: list[ChangeListener] = []
        self.log: EditLog | None = None
        """The recording hook (see ``EditLog``); None records nothing."""
        self.histories = Histories()
        """Per-image states kept while the editor lives (``open``)."""
        self.key: str | None = None

    # ------------------------------------------------------------------ lifecycle / listeners

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener(box, committed)`` after every change of the map or the instances."""
        self._listeners.append(listener)

    def _log(self, kind: str, **details: object) -> None:
        """The one recording hook: every committed action reports what made it (see ``EditLog``)."""
        if self.log is not None:
            self.log(kind, **details)

    def _emit(self, box: Box | None, committed: bool = True) -> None:
        for listener in list(self._listeners):
            listener(box, committed)

    def load(self, state: LabelState) -> None:
        """Edit ``state`` from now on (a new image, or one whose history was kept)."""
        self.state = state
        self.part = None
        self.pending_target = None
        self.late = []
        self._stroke = None
        self._emit(None)

    def open(self, key: str, shape: tuple[int, int], initial_value: object = None) -> tuple[LabelState, int]:
        """Switch to image ``key``: its kept state (with undo history) when it still holds ``initial_value``
        (the labels saved for it; see ``widget.initial``), else a fresh state. Returns (state, undo steps kept).
        The previous image's state is kept."""
        init, instances = (None, []) if initial_value is None else decode(initial_value, self.labels, self.mode, shape)
        if self.key is not None:
            self.histories.put(self.key, self.state)
        self.key = key
        kept = self.histories.take(key, init) if init is not None else None
        self.load(kept or self.new_state(shape, init, instances))
        return self.state, len(self.state.undo_stack) if kept is not None else 0

    def new_state(self, shape: tuple[int, int], init: np.ndarray | None, instances: Sequence[Instance]) -> LabelState:
        """A fresh state of ``shape`` holding ``init`` (or nothing) with an empty history."""
        st = LabelState(shape, self.labels, self.mode, max_history=self.max_history)
        st.reset(init, instances)
        return st

    # ------------------------------------------------------------------ small queries

    @property
    def history(self) -> tuple[int, int]:
        """(undo steps, redo steps) available."""
        return len(self.state.undo_stack), len(self.state.redo_stack)

    def snapshot(self) -> tuple[np.ndarray, list[Instance]]:
        """(map copy, instance copies): the label map and [] in semantic mode."""
        return self.state.map.copy(), [Instance(i.label, i.color) for i in self.state.instances]

    def instance_map(self) -> np.ndarray:
        """A copy of the instance map (instance mode only)."""
        if self.mode != "instance":
            raise WidgetError("instance_map exists only in instance mode; use label_map in semantic mode")
        return self.state.map.copy()

    def label_name(self, value: int) -> str:
        """Label name of map value ``value`` (a label index, or an instance id in instance mode)."""
        if self.mode == "instance":
            return self.state.instances[value - 1].label if value else "BACKGROUND"
        return self.labels[value - 1] if value else "BACKGROUND"

    def paint_color(self) -> str:
        """Colour the next paint will have."""
        return self.policy.color(self.state, self.label)

    def set_label(self, label: str) -> str:
        """Choose the current label; returns a status message (instance mode: what the next paint does)."""
        self.state.label_index(label)
        self.label = label
        st = self.state
        if self.mode == "instance" and st.selected and st.instances[st.selected - 1].label != label:
            return (
                f"the next paint starts a new {label!r} instance; 'Relabel' gives instance "
                f"{st.id_of(st.selected)} this label instead"
            )
        return f"label: {label}"

    # ------------------------------------------------------------------ commits (honest undo)

    def commit(self, rec: Recorder, painted: str | None = None) -> Outcome:
        """Close ``rec`` as ONE undo step, even when it changed nothing (then the message says so)."""
        edit = self.state.commit(rec)
        if edit is None:
            edit = Edit(box=None, what=rec.what)
            self.state.undo_stack.append(edit)
            self.state.redo_stack.clear()
            self.state._trim()
            self.state.serial += 1
            what = f"those pixels are already {painted!r}" if painted else "nothing to change there"
            return Outcome(False, f"nothing changed: {what}")
        self._emit(None if edit.meta_before is not None else edit.box)
        return Outcome(True, f"{rec.what} done")

    def _paint(
        self,
        what: str,
        fp: tuple[Box, np.ndarray] | None,
        erase: bool,
        points: Sequence[tuple[float, float]] = (),
        radius: float | None = None,
    ) -> Outcome:
        self.finish_stroke()
        rec = self.state.begin(what)
        n = len(self.state.instances)
        value = 0 if erase else self.policy.value(self.state, rec, self.label)
        if fp is not None:
            rec.paint(fp[0], fp[1], value)
        outcome = self.commit(rec, "BACKGROUND" if erase else self.label)
        self._log(
            "stroke",
            tool=what,
            points=list(points),
            radius=radius,
            value=value,
            label=self.label_name(value),
            new_instances=self._created(n),
        )
        return outcome

    def _created(self, before: int) -> list[dict[str, object]]:
        """The instances the edit just committed created (appended after the first ``before``; instance mode),
        as {value, label, color} for the prompt log."""
        st = self.state
        if self.mode != "instance":
            return []
        return [
            {"value": k, "label": st.instances[k - 1].label, "color": st.instances[k - 1].color}
            for k in range(before + 1, len(st.instances) + 1)
        ]

    def brush(self, points: Sequence[tuple[float, float]], radius: float, erase: bool = False) -> Outcome:
        """Paint (or erase) a round brush of ``radius`` along ``points``; one undo step."""
        if not points:
            raise PromptError("a brush stroke needs at least one (x, y) point")
        if not radius >= 0.5:
            raise WidgetError(f"brush radius must be at least 0.5 pixel, got {radius!r}")
        fp = stroke_footprint(points, radius, self.state.shape)
        return self._paint("eraser" if erase else "brush", fp, erase, points, radius)

    def polygon(self, vertices: Sequence[tuple[float, float]]) -> Outcome:
        """Fill the polygon ``vertices`` with the current label; one undo step."""
        return self._paint("polygon", polygon_footprint(vertices, self.state.shape), False, vertices)

    def fill(self, x: float, y: float) -> Outcome:
        """Flood-fill the 4-connected region of equal map values around pixel (x, y); one undo step."""
        return self._paint("fill", flood_region(self.state.map, x, y), False, [(x, y)])

    def clear(self) -> Outcome:
        """Remove every label (and instance); one undo step."""
        self.finish_stroke()
        st = self.state
        rec = st.begin("clear")
        h, w = st.shape
        rec.touch((0, h, 0, w))
        st.map[:] = 0
        if self.mode == "instance":
            st.instances.clear()
            st.ids.clear()
            st.selected = 0
        outcome = self.commit(rec)
        self._log("clear")
        return outcome

    # ------------------------------------------------------------------ strokes drawn with the mouse

    @property
    def stroking(self) -> bool:
        """Whether a stroke is being drawn."""
        return self._stroke is not None

    def begin_stroke(self, x: float, y: float, radius: float, erase: bool) -> None:
        """Start a brush / eraser stroke at (x, y) (committed by ``finish_stroke``)."""
        self.finish_stroke()
        rec = self.state.begin("eraser" if erase else "brush")
        self._stroke_instances = len(self.state.instances)
        value = 0 if erase else self.policy.value(self.state, rec, self.label)
        self._stroke = (rec, value, (x, y), radius)
        self._stroke_points = []
        self.stroke_to(x, y)

    def stroke_to(self, x: float, y: float) -> None:
        """Extend the stroke to (x, y)."""
        if self._stroke is None:
            return
        rec, value, last, radius = self._stroke
        self._stroke_points.append((x, y))
        fp = stroke_footprint([last, (x, y)], radius, self.state.shape)
        if fp is not None:
            rec.paint(fp[0], fp[1], value)
        self._stroke = (rec, value, (x, y), radius)
        if fp is not None:
            self._emit(fp[0], committed=False)

    def finish_stroke(self) -> Outcome | None:
        """Commit the stroke in progress as one undo step (None when there was none)."""
        if self._stroke is None:
            return None
        rec, value, _last, radius = self._stroke
        self._stroke = None
        outcome = self.commit(rec, self.label_name(value) if value or rec.what == "eraser" else None)
        points, self._stroke_points = self._stroke_points, []
        self._log(
            "stroke",
            tool=rec.what,
            points=points,
            radius=radius,
            value=value,
            label=self.label_name(value),
            new_instances=self._created(self._stroke_instances),
        )
        return outcome

    # ------------------------------------------------------------------ history

    def undo(self) -> Outcome:
        """Undo one step."""
        return self._history(redo=False)

    def redo(self) -> Outcome:
        """Redo one undone step."""
        return self._history(redo=True)

    def _history(self, redo: bool) -> Outcome:
        self.finish_stroke()
        edit = self.state.redo() if redo else self.state.undo()
        if edit is None:
            return Outcome(False, "nothing to redo" if redo else "nothing to undo", recorded=False)
        self.pending_target = None
        top = self.state.undo_stack[-1] if self.state.undo_stack else None
        kept = top.part if top is not None else None
        self.part = thaw_part(kept, self.state.serial) if kept is not None else None
        self._emit(None if edit.meta_before is not None or edit.box is None else edit.box)
        self._log("redo" if redo else "undo")
        return Outcome(True, ("redid " if redo else "undid ") + (edit.what or "edit"))

    # ------------------------------------------------------------------ the model's part

    def live_part(self) -> Part | None:
        """The model's last mask while nothing else was edited after it, else None."""
        part = self.part
        return part if part is not None and part.serial == self.state.serial else None

    def capture_target(self) -> Target:
        """The target of a model request made now (see ``Target``)."""
        target = self.policy.capture(self.state, self.label, self.pending_target)
        if self.mode == "instance" and target.color is None:
            self.pending_target = target
        return target

    def keep_part(self, part: Part) -> None:
        """Make ``part`` live and remember a compact copy on the step just committed."""
        st = self.state
        part.serial = st.serial
        if not st.undo_stack:
            return
        st.undo_stack[-1].part = freeze_part(part)
        seen = 0
        for edit in reversed(st.undo_stack):  # bound memory: only the last few keep their part
            if edit.part is not None:
                seen += 1
                if seen > KEPT_PARTS:
                    edit.part = None

    def apply_prediction(self, pred: Prediction, request: ModelRequest) -> Outcome:
        """Paint a model answer: a new part, or in place of ``request.part`` while it is live. A refinement
        (``request.merge``) joins the step that painted its part; if the user edited first it is offered as a
        candidate of the live part instead."""
        mask = np.asarray(pred.mask, bool)
        st = self.state
        if mask.shape != st.shape:
            raise WidgetError(f"the segmenter returned a {mask.shape} mask for a {st.shape} image")
        live = self.live_part()
        if request.merge and (request.part is None or live is not request.part or live.serial != request.serial):
            return self._offer_late(pred)
        rec = st.begin("corrective click" if request.clicks else "auto-segment")
        n = len(st.instances)
        if request.replace and request.part is not None and live is request.part:
            replace_part(st, rec, request.part, mask)
            part = request.part
        else:
            value = self.policy.resolve(st, rec, request.target)
            box = paint_part(st, rec, mask, value) or (0, 0, 0, 0)
            before = rec.before if rec.before is not None else np.zeros((0, 0), np.uint8)
            part = Part(value=value, box=rec.box or box, before=before.copy(), serial=-1)
        part.extreme_points = request.extreme_points
        part.clicks = list(request.clicks)
        part.prediction = pred
        part.candidate = 0
        part.unsure = request.unsure
        outcome = self.commit(rec, self.label_name(part.value))
        if request.merge:
            st.merge_last_two()
        self.keep_part(part)
        self.part = part if part.box[1] > part.box[0] else None
        self.late = []
        self._log("model", part=part, request=request, prediction=pred, new_instances=self._created(n))
        return outcome

    def _offer_late(self, pred: Prediction) -> Outcome:
        live = self.live_part()
        if live is None or live.prediction is None:
            return Outcome(False, "", recorded=False)
        self.late.append(Candidate(np.asarray(pred.mask, bool), float(pred.score)))
        live.prediction.candidates.append(self.late[-1])
        return Outcome(False, "the refined mask arrived after your edit: press n to see it as a candidate", False)

    def next_candidate(self) -> tuple[int, Outcome]:
        """Show the live part's next candidate mask (one undo step); (-1, ...) when there is none."""
        part = self.live_part()
        pred = part.prediction if part is not None else None
        if part is None or pred is None or len(pred.candidates) < 2:
            return -1, Outcome(False, "no other candidate masks for the last auto-segment", recorded=False)
        idx = (part.candidate + 1) % len(pred.candidates)
        cand = pred.candidates[idx]
        rec = self.state.begin("next candidate")
        replace_part(self.state, rec, part, np.asarray(cand.mask, bool))
        part.candidate = idx
        self.commit(rec)
        self.keep_part(part)
        self._log("candidate", part=part)
        return idx, Outcome(True, f"candidate {idx + 1} of {len(pred.candidates)} (score {cand.score:.2f})")

    def accept_proposals(
        self, masks: Sequence[np.ndarray], what: str, info: dict[str, object] | None = None
    ) -> tuple[Outcome, int]:
        """Paint each full-size bool mask in order with the current label (instance mode: each as a new
        instance); ONE undo step. Returns (outcome, masks painted); stops early when instances run out.
        ``info`` (for the prompt log): threshold, points_per_side, settings and per-mask points / scores."""
        self.finish_stroke()
        st = self.state
        rec = st.begin(what)
        n = len(st.instances)
        done = 0
        values: list[int] = []
        for mask in masks:
            try:
                value = self.policy.resolve(st, rec, Target(self.label))
            except WidgetError:
                break  # no instance colour left: what was painted stays
            values.append(value)
            if paint_part(st, rec, np.asarray(mask, bool), value) is not None:
                done += 1
        self.part = None
        self.pending_target = None
        outcome = self.commit(rec, self.label)
        self._log(
            "proposals",
            masks=list(masks[: len(values)]),
            values=values,
            label=self.label,
            info=dict(info or {}),
            new_instances=self._created(n),
        )
        return outcome, done

    def kept_before_part(self, x: float, y: float) -> bool:
        """Had pixel (x, y) the live part's value already before the part was painted (so a click on the part
        cannot take it away)? A pixel outside the part's box was never touched by it."""
        part = self.live_part()
        h, w = self.state.shape
        xi, yi = round(x), round(y)
        if part is None or not (0 <= xi < w and 0 <= yi < h):
            return False
        y0, y1, x0, x1 = part.box
        if not (y0 <= yi < y1 and x0 <= xi < x1):
            return bool(self.state.map[yi, xi] == part.value)
        return bool(part.before[yi - y0, xi - x0] == part.value)

    # ------------------------------------------------------------------ instances

    def add_instance(self, label: str | None = None) -> int:
        """Start a new instance of ``label`` (default: the current label), selected; one undo step. Returns
        its stable id."""
        if self.mode != "instance":
            raise WidgetError("add_instance needs instance mode: create the widget with mode='instance'")
        name = self.label if label is None else label
        self.state.label_index(name)
        self.finish_stroke()
        rec = self.state.begin("add instance")
        k = self.state.create_instance(rec, name)
        self.label = name
        self.part = None
        self.pending_target = None
        self.commit(rec)
        inst = self.state.instances[k - 1]
        self._log("instance", op="add", value=k, label=inst.label, color=inst.color)
        return self.state.id_of(k)

    def select_instance(self, instance_id: int) -> None:
        """Make the instance with stable id ``instance_id`` the one painting and auto-segment add to."""
        k = self.state.position(instance_id)
        self.state.selected = k
        self.label = self.state.instances[k - 1].label
        self.part = None
        self.pending_target = None
        self._emit(None)

    def relabel_instance(self, instance_id: int, label: str) -> Outcome:
        """Give instance ``instance_id`` (stable id) another label (its colour and id stay); one undo step."""
        k = self.state.position(instance_id)
        self.state.label_index(label)
        rec = self.state.begin("relabel instance")
        old = self.state.instances[k - 1]
        self.state.instances[k - 1] = Instance(label, old.color)
        outcome = self.commit(rec, label)
        self._log("instance", op="relabel", value=k, label=label)
        return outcome

    def delete_instance(self, instance_id: int) -> Outcome:
        """Delete instance ``instance_id`` (stable id) and its pixels; one undo step. The other instances keep
        their ids."""
        k = self.state.position(instance_id)
        rec = self.state.begin("delete instance")
        self.state.delete_instance(rec, k)
        self.part = None
        self.pending_target = None
        outcome = self.commit(rec)
        self._log("instance", op="delete", value=k)
        return outcome

    def finish_object(self) -> None:
        """The user finished the object the model segmented: in instance mode the next paint or auto-segment
        starts a new instance (nothing stays selected)."""
        if self.mode == "instance" and self.state.selected:
            self.state.selected = 0
            self.pending_target = None
            self._emit(None)

    def instance_status(self) -> str:
        """One line about the instances: how many, and which is selected."""
        st = self.state
        sel = st.selected
        what = f"instance {st.id_of(sel)} ({st.instances[sel - 1].label}) selected" if sel else "no instance selected"
        return f"{len(st.instances)} instance(s); {what}"


@dataclass
class ModelRequest:
    """A model request as the user made it: where its answer goes and the prompt it had."""

    target: Target
    extreme_points: list[tuple[float, float]] | None
    clicks: list[tuple[float, float, bool]]
    replace: bool = False
    part: Part | None = None
    merge: bool = False
    unsure: bool = False
    serial: int = -1
    """For a refinement: the state serial its part had when the first answer was painted."""
    proposal: dict[str, object] | None = None
    """For an accepted automatic proposal: {"pointer": (x, y), "points_per_side": n, "settings": {...}}."""


def flood_region(index_map: np.ndarray, x: float, y: float) -> tuple[Box, np.ndarray] | None:
    """The 4-connected region of pixels equal to the one at (x, y): (box, bool crop), None outside the map."""
    h, w = index_map.shape
    xi, yi = round(x), round(y)
    if not (0 <= xi < w and 0 <= yi < h):
        return None
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    cv2.floodFill(np.ascontiguousarray(index_map), mask, (xi, yi), 0, 0, 0, flags)
    region = mask[1:-1, 1:-1].astype(bool)
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    return box, region[box[0] : box[1], box[2] : box[3]]


class Histories:
    """Per-image label states (map + undo history) kept while the widget lives, bounded by bytes: coming
    back to an image restores its history. Least recently stored images are dropped first."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._states: dict[str, LabelState] = {}

    @staticmethod
    def _size(state: LabelState) -> int:
        return state.map.nbytes + state.history_bytes()

    def put(self, key: str, state: LabelState) -> None:
        """Keep ``state`` for image ``key``."""
        self._states.pop(key, None)
        self._states[key] = state
        while len(self._states) > 1 and sum(self._size(s) for s in self._states.values()) > self.max_bytes:
            del self._states[next(iter(self._states))]

    def take(self, key: str, current: np.ndarray) -> LabelState | None:
        """The kept state of image ``key`` if its map still equals ``current`` (the saved labels), else None."""
        state = self._states.get(key)
        if state is None or state.map.shape != current.shape or not np.array_equal(state.map, current):
            return None
        return state
