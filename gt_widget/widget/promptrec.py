"""Records the widget's edits into prompt logs (``gt_widget.promptlog``), one log per image.

Kernel side. The editor reports every committed action through its one hook (``Editor.log``, kinds listed at
``editor.EditLog``); this class turns them into ``PromptLog`` events and mirrors the editor's undo stack, so a
corrective click names the model edit it refines exactly as ``gt_widget.resegment.replay`` expects.
Rules: one editor undo step = one log event (an instance the action created rides in its ``new_instances``,
so undo takes both back, as the editor does); a refined second pass (``request.merge``) joins its step in the
editor, so it *updates* the recorded model event's result instead of adding one. Every action the editor
reports is replayable (model, candidate, stroke, accept-all proposals, instance add / relabel / delete,
clear, undo, redo); an unknown kind is a programming error and raises. The labels an image was opened
with (``initial_value``: an import, a pre-labeling result, saved labels) are the log's first event,
``initial``, recorded once when a fresh log starts on a non-blank map (``start``); ``resume`` swaps that
fresh log for the image's saved one, which already starts from wherever the image started.
Conventions: (x, y) pixels of the original image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from gt_widget.errors import FormatError
from gt_widget.promptlog import PromptLog, result_of
from gt_widget.segment.base import Segmenter
from gt_widget.widget.editor import Editor, ModelRequest
from gt_widget.widget.state import Part


class _Track:
    """One image's log plus the seq of the event behind each undo step (the editor's stack, mirrored)."""

    def __init__(self, log: PromptLog) -> None:
        self.log = log
        self.steps: list[int] = []
        self.pos = 0

    def push(self, seq: int) -> None:
        del self.steps[self.pos :]
        self.steps.append(seq)
        self.pos = len(self.steps)

    @property
    def top(self) -> int | None:
        return self.steps[self.pos - 1] if self.pos else None


class PromptRecorder:
    """Attach to ``editor`` (sets ``editor.log``); ``segmenter()`` names the model of model-made edits.

    ``log`` is the current image's ``PromptLog`` (``start(key, ...)`` switches images; a revisited image keeps
    its log while the editor keeps its history).
    """

    def __init__(self, editor: Editor, segmenter: Callable[[], Segmenter | None]) -> None:
        self.editor = editor
        self.segmenter = segmenter
        self._tracks: dict[str, _Track] = {}
        self._track: _Track | None = None
        editor.log = self.record

    def start(self, key: str, shape: tuple[int, int], kept: bool) -> None:
        """The editor opened image ``key`` of ``shape`` (H, W); ``kept``: its history was kept (so is the log).
        A new log of an image the editor opened with labels (its ``initial_value``) starts with them."""
        track = self._tracks.get(key) if kept else None
        if track is None:
            h, w = shape
            track = _Track(PromptLog(w, h, list(self.editor.labels), self.editor.mode))
            self._tracks[key] = track
            st = self.editor.state
            if not kept and st.map.shape == (h, w) and (st.instances or st.map.any()):
                track.log.record_initial(st.map, st.instances)
        self._track = track

    def resume(self, path: str | os.PathLike[str]) -> bool:
        """Continue the log saved at ``path`` (``promptlog.log_path``) for the current image when its log is
        new (nothing but the ``initial`` event of the labels it opened with): the image's labels came from a
        saved result (a resumed session), so its earlier events must stay in front of the new ones or a
        replay would start from nothing, and its own start is already in it (no second ``initial``). A
        missing file, or one for another image size, mode or labels, leaves the new log (which starts from
        the saved labels). Returns whether it resumed."""
        t = self._track
        if t is None or [e["kind"] for e in t.log.events] not in ([], ["initial"]):
            return False  # edited already; an initial event alone is the saved labels, which the saved log makes
        try:
            saved = PromptLog.load(path)
        except FormatError:
            return False
        log = t.log
        if (saved.width, saved.height, saved.mode, saved.labels) != (log.width, log.height, log.mode, log.labels):
            return False
        t.log, t.steps, t.pos = saved, [], 0  # the editor's history starts empty: nothing older can be refined
        return True

    @property
    def log(self) -> PromptLog | None:
        """The current image's log (None before an image was opened)."""
        return self._track.log if self._track is not None else None

    def record(self, kind: str, **d: Any) -> None:
        """The editor's hook (``editor.EditLog``)."""
        t = self._track
        if t is None:
            return
        log = t.log
        born = list(d.get("new_instances", ()))
        if kind == "undo":
            log.record_undo()
            t.pos = max(0, t.pos - 1)
        elif kind == "redo":
            log.record_redo()
            t.pos = min(len(t.steps), t.pos + 1)
        elif kind == "instance":
            op, value = str(d["op"]), int(d["value"])
            if op == "add":
                t.push(log.record_new_instance(value, str(d["label"]), str(d["color"])))
            elif op == "relabel":
                t.push(log.record_relabel(value, str(d["label"])))
            else:
                t.push(log.record_delete(value))
        elif kind == "clear":
            t.push(log.record_clear())
        elif kind == "stroke":
            tool = "eraser" if d["tool"] == "eraser" else str(d["tool"])
            points = d["points"]
            if points:
                seq = log.record_stroke(
                    tool,
                    points,
                    value=int(d["value"]),
                    label=str(d["label"]),
                    radius=d.get("radius"),
                    new_instances=born,
                )
                t.push(seq)
            elif born:  # an empty stroke that still created its instance (one step in the editor)
                t.push(log.record("stroke", born, tool=tool, value=int(d["value"]), label=str(d["label"]), points=[]))
        elif kind == "proposals":
            info = d["info"]
            t.push(
                log.record_proposals(
                    self.segmenter(),
                    d["masks"],
                    d["values"],
                    label=str(d["label"]),
                    threshold=float(info.get("threshold", 0.0)),
                    points_per_side=int(info.get("points_per_side", 16)),
                    settings=dict(info.get("settings", {})),
                    points=list(info.get("points", [None] * len(d["masks"])))[: len(d["masks"])],
                    scores=list(info.get("scores", [0.0] * len(d["masks"])))[: len(d["masks"])],
                    new_instances=born,
                )
            )
        elif kind == "model":
            self._model(t, d["part"], d["request"], np.asarray(d["prediction"].mask, bool), born)
        elif kind == "candidate":
            part: Part = d["part"]
            self._model_event(t, part, part.extreme_points, part.clicks, None, candidate=part.candidate)
        else:
            raise ValueError(f"the prompt recorder got an unknown edit kind {kind!r} (see editor.EditLog)")

    def _model(self, t: _Track, part: Part, request: ModelRequest, mask: np.ndarray, born: list[Any]) -> None:
        if request.merge and t.top is not None:  # the refined pass: same step, better result
            ev = t.log.events[t.top]
            if ev["kind"] == "model":
                ev["result"] = result_of(mask)
                return
        clicks = request.clicks if request.proposal is None else []
        self._model_event(t, part, request.extreme_points, clicks, request.proposal, replace=request.replace, born=born)

    def _model_event(
        self,
        t: _Track,
        part: Part,
        extreme_points: Any,
        clicks: Any,
        proposal: dict[str, Any] | None,
        candidate: int = 0,
        replace: bool = True,
        born: list[Any] | None = None,
    ) -> None:
        seg = self.segmenter()
        refines = t.top if replace and t.top is not None and t.log.events[t.top]["kind"] == "model" else None
        mask = self.editor.state.map == part.value
        pred = part.prediction
        if pred is not None:
            mask = np.asarray(pred.candidates[candidate].mask if candidate else pred.mask, bool)
        seq = t.log.record_model_edit(
            seg,
            mask,
            value=part.value,
            label=self.editor.label_name(part.value),
            extreme_points=extreme_points,
            clicks=list(clicks),
            proposal=proposal,
            candidate=candidate,
            refines=refines,
            new_instances=born or (),
        )
        t.push(seq)
