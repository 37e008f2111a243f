"""The kernel-side label state of one image: the painted map, instances, and diff-based undo/redo.

Owned by the kernel; the browser never holds label data (it only shows what ``render`` sends).

Conventions:
- coordinates are (x, y) pixels of the original image, (0, 0) the centre of the top-left pixel;
- boxes are ``(y0, y1, x0, x1)`` half-open row/column ranges;
- in semantic mode ``map`` is the label map (uint8 HxW, 0 = BACKGROUND, i = ``labels[i - 1]``); in instance
  mode it is the instance map (0 = none, k = ``instances[k - 1]``).

Choices (Ground Truth documents no tool semantics, reference §7):
- painting (brush, polygon, auto-segment) **overwrites** whatever label or instance was there, as Ground
  Truth's brush does; the eraser sets pixels back to 0 whatever they held;
- one call (a stroke from mouse down to mouse up, one auto-segment, one corrective click, one candidate
  switch, one instance operation) is one undo step; a step stores the zlib-compressed *before* and *after*
  crops of the changed bounding box only, so 100 steps on a 10000x8000 image stay small.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from gt_widget.errors import GtWidgetError
from gt_widget.groundtruth.formats import Instance
from gt_widget.groundtruth.labels import validate_label_names
from gt_widget.palette import MAX_LABELS, PALETTE
from gt_widget.segment.base import Candidate, Prediction

Box = tuple[int, int, int, int]
Mode = Literal["semantic", "instance"]


class WidgetError(GtWidgetError, ValueError):
    """A widget call was given something it cannot use (bad labels, tool, instance id...)."""


def check_labels(labels: Sequence[str]) -> list[str]:
    """The labels as a list, checked by the one label rule set (``LabelError`` saying what to fix)."""
    return validate_label_names(labels)


# ------------------------------------------------------------------------------------------- geometry


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """Smallest box holding both (None = empty)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def mask_box(mask: np.ndarray) -> Box | None:
    """Bounding box of the True pixels of a bool mask, or None when it is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def check_brush_radius(radius: Any) -> float:
    """``radius`` as a float number of image pixels, else ``WidgetError``: brush and eraser radii must be
    finite numbers >= 0.5 (a radius below half a pixel covers no pixel centre; ``inf`` covers no image)."""
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise WidgetError(f"brush radius must be a number of pixels, e.g. 8, got {radius!r}") from None
    if not (math.isfinite(r) and r >= 0.5):
        raise WidgetError(f"brush radius must be a finite number of pixels >= 0.5, e.g. 8, got {radius!r}")
    return r


def stroke_footprint(
    points: Sequence[Sequence[float]], radius: float, shape: tuple[int, int]
) -> tuple[Box, np.ndarray] | None:
    """Pixels a round brush of ``radius`` covers along ``points`` (a polyline), clipped to ``shape``.

    Pixel (px, py) is covered when the distance from its centre to the polyline is <= ``radius``; one point
    gives exactly the disc ``(px - x)**2 + (py - y)**2 <= radius**2``. Returns (box, bool crop) or None.
    """
    pts = np.asarray([[float(p[0]), float(p[1])] for p in points], np.float64).reshape(-1, 2)
    if pts.shape[0] == 0:
        return None
    h, w = shape
    r = check_brush_radius(radius)
    x0 = max(0, int(np.floor(pts[:, 0].min() - r)))
    x1 = min(w, int(np.ceil(pts[:, 0].max() + r)) + 1)
    y0 = max(0, int(np.floor(pts[:, 1].min() - r)))
    y1 = min(h, int(np.ceil(pts[:, 1].max() + r)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    out = np.zeros((y1 - y0, x1 - x0), bool)
    segs = [(pts[0], pts[0])] if pts.shape[0] == 1 else list(itertools.pairwise(pts))
    r2 = r * r
    for a, b in segs:
        sx0 = max(x0, int(np.floor(min(a[0], b[0]) - r)))
        sx1 = min(x1, int(np.ceil(max(a[0], b[0]) + r)) + 1)
        sy0 = max(y0, int(np.floor(min(a[1], b[1]) - r)))
        sy1 = min(y1, int(np.ceil(max(a[1], b[1]) + r)) + 1)
        if sx0 >= sx1 or sy0 >= sy1:
            continue
        gx = np.arange(sx0, sx1, dtype=np.float64)[None, :]
        gy = np.arange(sy0, sy1, dtype=np.float64)[:, None]
        d = b - a
        dd = float(d @ d)
        if dd == 0.0:
            dist2 = (gx - a[0]) ** 2 + (gy - a[1]) ** 2
        else:
            t = np.clip(((gx - a[0]) * d[0] + (gy - a[1]) * d[1]) / dd, 0.0, 1.0)
            dist2 = (gx - a[0] - t * d[0]) ** 2 + (gy - a[1] - t * d[1]) ** 2
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] |= dist2 <= r2
    return (y0, y1, x0, x1), out


def polygon_footprint(vertices: Sequence[Sequence[float]], shape: tuple[int, int]) -> tuple[Box, np.ndarray] | None:
    """Pixels inside a polygon (its centre inside or on the outline; OpenCV's fill rule), clipped to ``shape``."""
    pts = np.asarray([[float(p[0]), float(p[1])] for p in vertices], np.float64).reshape(-1, 2)
    h, w = shape
    x0 = max(0, int(np.floor(pts[:, 0].min())))
    x1 = min(w, int(np.ceil(pts[:, 0].max())) + 1)
    y0 = max(0, int(np.floor(pts[:, 1].min())))
    y1 = min(h, int(np.ceil(pts[:, 1].max())) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    shift = 8  # sub-pixel vertex precision (1/256 px)
    local = np.rint((pts - [x0, y0]) * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(canvas, [local], 1, lineType=cv2.LINE_8, shift=shift)
    return (y0, y1, x0, x1), canvas.astype(bool)


# ---------------------------------------------------------------------------------------------- history


@dataclass(frozen=True)
class Meta:
    """Instance bookkeeping that an edit may change (instance mode)."""

    instances: tuple[tuple[str, str], ...]
    selected: int
    ids: tuple[int, ...] = ()


@dataclass
class Edit:
    """One undo step: compressed before/after crops of ``box`` and, optionally, the instance list."""

    box: Box | None
    before: bytes = b""
    after: bytes = b""
    meta_before: Meta | None = None
    meta_after: Meta | None = None
    what: str = ""
    part: Any = None
    """The model ``Part`` live right after this edit (so undo/redo can make it refinable again)."""

    @property
    def nbytes(self) -> int:
        """Memory this step holds (compressed crops; a kept part's predictions are not counted)."""
        return len(self.before) + len(self.after) + 64 + (self.part.nbytes if self.part is not None else 0)


def _pack(a: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(a, np.uint8).tobytes(), 1)


def _unpack(data: bytes, box: Box) -> np.ndarray:
    y0, y1, x0, x1 = box
    return np.frombuffer(zlib.decompress(data), np.uint8).reshape(y1 - y0, x1 - x0)


class Recorder:
    """Records the before-values of a growing region while an edit is being made (e.g. a brush stroke)."""

    def __init__(self, state: LabelState, what: str) -> None:
        self.state = state
        self.what = what
        self.box: Box | None = None
        self.before: np.ndarray | None = None
        self.meta_before = state.meta()

    def touch(self, box: Box) -> None:
        """Make sure the original values of ``box`` are recorded before it is modified."""
        new = union_box(self.box, box)
        assert new is not None
        if new == self.box:
            return
        y0, y1, x0, x1 = new
        crop = self.state.map[y0:y1, x0:x1].copy()
        if self.box is not None and self.before is not None:
            oy0, oy1, ox0, ox1 = self.box
            crop[oy0 - y0 : oy1 - y0, ox0 - x0 : ox1 - x0] = self.before
        self.box, self.before = new, crop

    def paint(self, box: Box, mask: np.ndarray, value: int) -> None:
        """Set the pixels of ``mask`` (a bool crop at ``box``) to ``value``."""
        self.touch(box)
        y0, y1, x0, x1 = box
        self.state.map[y0:y1, x0:x1][mask] = value


class LabelState:
    """Label map / instance map of one image plus its undo history. Not thread-safe: callers lock."""

    def __init__(self, shape: tuple[int, int], labels: Sequence[str], mode: Mode = "semantic", max_history: int = 100):
        if mode not in ("semantic", "instance"):
            raise WidgetError(f"mode must be 'semantic' or 'instance', got {mode!r}")
        if max_history < 1:
            raise WidgetError("max_history must be at least 1")
        self.labels = check_labels(labels)
        self.mode: Mode = mode
        self.shape = (int(shape[0]), int(shape[1]))
        self.map = np.zeros(self.shape, np.uint8)
        self.instances: list[Instance] = []
        self.ids: list[int] = []
        """Stable id of each instance (what the UI and messages show): ids never shift when an instance is
        deleted; the map and ``instances`` stay compact (the written form, value k = ``instances[k - 1]``)."""
        self.next_id = 1
        self.selected = 0
        self.max_history = max_history
        self.max_history_bytes = 512 * 2**20
        self.undo_stack: list[Edit] = []
        self.redo_stack: list[Edit] = []
        self.serial = 0  # bumps on every commit / undo / redo (lets callers tell whether they are still current)

    # ------------------------------------------------------------------ bookkeeping

    def meta(self) -> Meta | None:
        """Current instance list + selection (None in semantic mode)."""
        if self.mode != "instance":
            return None
        return Meta(tuple((i.label, i.color) for i in self.instances), self.selected, tuple(self.ids))

    def _set_meta(self, meta: Meta | None) -> None:
        if meta is None:
            return
        self.instances = [Instance(label, color) for label, color in meta.instances]
        self.ids = list(meta.ids)
        self.next_id = max(self.next_id, *(k + 1 for k in self.ids)) if self.ids else self.next_id
        self.selected = meta.selected

    def label_index(self, label: str) -> int:
        """1-based index of ``label``, else ``WidgetError`` listing the labels."""
        try:
            return self.labels.index(label) + 1
        except ValueError:
            raise WidgetError(f"unknown label {label!r}; the labels are {self.labels}") from None

    def check_instance(self, k: int) -> int:
        """``k`` as a valid map value (1-based position in ``instances``), else ``WidgetError``."""
        if self.mode != "instance":
            raise WidgetError("instances exist only in instance mode: create the widget with mode='instance'")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= len(self.instances):
            raise WidgetError(f"no instance {k!r}: instance ids are 1..{len(self.instances)} (1-based)")
        return int(k)

    def position(self, instance_id: int) -> int:
        """The map value (1-based position) of the instance with stable id ``instance_id``, else ``WidgetError``."""
        if self.mode != "instance":
            raise WidgetError("instances exist only in instance mode: create the widget with mode='instance'")
        ok = not isinstance(instance_id, bool) and isinstance(instance_id, (int, np.integer))
        if not ok or int(instance_id) not in self.ids:
            raise WidgetError(f"no instance {instance_id!r}: the instances are {self.ids or 'none yet'}")
        return self.ids.index(int(instance_id)) + 1

    def id_of(self, k: int) -> int:
        """Stable id of the instance at map value ``k`` (0 -> 0, none)."""
        return self.ids[k - 1] if k else 0

    def label_map(self) -> np.ndarray:
        """uint8 HxW label map (instance mode: each instance's label)."""
        if self.mode == "semantic":
            return self.map.copy()
        lut = np.zeros(256, np.uint8)
        for k, inst in enumerate(self.instances):
            lut[k + 1] = self.label_index(inst.label)
        return lut[self.map]

    def colors(self) -> list[str]:
        """Colour of map value i at position i - 1 (labels in semantic mode, instances in instance mode)."""
        if self.mode == "semantic":
            return [PALETTE[i] for i in range(len(self.labels))]
        return [i.color for i in self.instances]

    def next_color(self) -> str:
        """First palette colour no instance uses (palette order, as crowd-instance-segmentation does)."""
        used = {i.color for i in self.instances}
        for color in PALETTE:
            if color not in used:
                return color
        raise WidgetError(f"at most {MAX_LABELS} instances fit in Ground Truth's 8-bit PNG; delete some first")

    # ------------------------------------------------------------------ edits

    def begin(self, what: str) -> Recorder:
        """Start recording an edit; finish it with ``commit``."""
        return Recorder(self, what)

    def commit(self, rec: Recorder) -> Edit | None:
        """Close an edit as one undo step (None when nothing changed)."""
        before_meta, after_meta = rec.meta_before, self.meta()
        edit = Edit(box=None, meta_before=before_meta, meta_after=after_meta, what=rec.what)
        changed_meta = before_meta != after_meta
        if rec.box is not None and rec.before is not None:
            y0, y1, x0, x1 = rec.box
            after = self.map[y0:y1, x0:x1]
            diff = after != rec.before
            tight = mask_box(diff)
            if tight is not None:
                ty0, ty1, tx0, tx1 = tight
                edit.box = (y0 + ty0, y0 + ty1, x0 + tx0, x0 + tx1)
                edit.before = _pack(rec.before[ty0:ty1, tx0:tx1])
                edit.after = _pack(after[ty0:ty1, tx0:tx1])
        if edit.box is None and not changed_meta:
            return None
        if not changed_meta:
            edit.meta_before = edit.meta_after = None
        self.undo_stack.append(edit)
        self.redo_stack.clear()
        self._trim()
        self.serial += 1
        return edit

    def merge_last_two(self) -> Edit | None:
        """Fold the newest undo step into the one before it, so both undo as ONE step.

        Used when a later model pass refines the mask an auto-segment just painted (the user did one
        thing). Must be called right after the newer step was committed (the map is its "after").
        """
        if len(self.undo_stack) < 2:
            return None
        newer = self.undo_stack.pop()
        older = self.undo_stack[-1]
        box = union_box(older.box, newer.box)
        if box is not None:
            y0, y1, x0, x1 = box
            after = self.map[y0:y1, x0:x1].copy()
            before = after.copy()
            for edit in (newer, older):  # unwind newest first
                if edit.box is not None:
                    ey0, ey1, ex0, ex1 = edit.box
                    before[ey0 - y0 : ey1 - y0, ex0 - x0 : ex1 - x0] = _unpack(edit.before, edit.box)
            older.box, older.before, older.after = box, _pack(before), _pack(after)
        if older.meta_before is not None or newer.meta_before is not None:
            meta_before = older.meta_before if older.meta_before is not None else newer.meta_before
            meta_after = newer.meta_after if newer.meta_after is not None else older.meta_after
            older.meta_before, older.meta_after = meta_before, meta_after
        older.part = newer.part
        return older

    def _trim(self) -> None:
        while len(self.undo_stack) > self.max_history:
            self.undo_stack.pop(0)
        total = sum(e.nbytes for e in self.undo_stack)
        while len(self.undo_stack) > 1 and total > self.max_history_bytes:
            total -= self.undo_stack.pop(0).nbytes

    def undo(self) -> Edit | None:
        """Revert the last step; returns it (for redrawing its box) or None when there is nothing to undo."""
        if not self.undo_stack:
            return None
        edit = self.undo_stack.pop()
        if edit.box is not None:
            y0, y1, x0, x1 = edit.box
            self.map[y0:y1, x0:x1] = _unpack(edit.before, edit.box)
        self._set_meta(edit.meta_before)
        self.redo_stack.append(edit)
        self.serial += 1
        return edit

    def redo(self) -> Edit | None:
        """Re-apply the last undone step, or None."""
        if not self.redo_stack:
            return None
        edit = self.redo_stack.pop()
        if edit.box is not None:
            y0, y1, x0, x1 = edit.box
            self.map[y0:y1, x0:x1] = _unpack(edit.after, edit.box)
        self._set_meta(edit.meta_after)
        self.undo_stack.append(edit)
        self.serial += 1
        return edit

    def history_bytes(self) -> int:
        """Memory held by the undo and redo stacks."""
        return sum(e.nbytes for e in self.undo_stack) + sum(e.nbytes for e in self.redo_stack)

    def reset(self, initial: np.ndarray | None = None, instances: Sequence[Instance] = ()) -> None:
        """Replace everything (new image / initial value) and forget the history."""
        self.map = np.zeros(self.shape, np.uint8) if initial is None else np.array(initial, np.uint8, copy=True)
        self.instances = [Instance(i.label, i.color) for i in instances]
        self.ids = list(range(1, len(self.instances) + 1))
        self.next_id = len(self.instances) + 1
        self.selected = 0  # nothing selected: the next paint starts a new instance
        self.undo_stack.clear()
        self.redo_stack.clear()
        self.serial += 1

    # ------------------------------------------------------------------ instance operations (instance mode)

    def create_instance(self, rec: Recorder, label: str) -> int:
        """Append a new instance of ``label`` with the next free colour and the next stable id inside edit
        ``rec``; returns its map value (position; ``id_of`` gives its id)."""
        if self.mode != "instance":
            raise WidgetError("add_instance needs instance mode: create the widget with mode='instance'")
        self.label_index(label)
        if len(self.instances) >= MAX_LABELS:
            raise WidgetError(f"at most {MAX_LABELS} instances fit in Ground Truth's 8-bit PNG; delete some first")
        self.instances.append(Instance(label, self.next_color()))
        self.ids.append(self.next_id)
        self.next_id += 1
        self.selected = len(self.instances)
        return self.selected

    def delete_instance(self, rec: Recorder, k: int) -> None:
        """Remove the instance at map value ``k`` and its pixels; later map values shift down by one (the map
        stays compact) while the stable ``ids`` of the others do not change."""
        k = self.check_instance(k)
        rows = np.flatnonzero((self.map >= k).any(axis=1))
        if rows.size:
            cols = np.flatnonzero((self.map >= k).any(axis=0))
            box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
            rec.touch(box)
            y0, y1, x0, x1 = box
            crop = self.map[y0:y1, x0:x1]
            crop[crop == k] = 0
            above = crop > k
            crop[above] -= 1
        del self.instances[k - 1]
        del self.ids[k - 1]
        if self.selected == k:
            self.selected = 0
        elif self.selected > k:
            self.selected -= 1


@dataclass
class Part:
    """The last model-made mask ("part" of an object), kept so clicks/candidates can replace it.

    ``before`` holds the map over ``box`` as it was before the part was painted; the part stays *live*
    while ``serial`` equals the state's serial (any other edit, undo or redo ends it).
    """

    value: int
    box: Box
    before: np.ndarray
    serial: int
    extreme_points: list[tuple[float, float]] | None = None
    clicks: list[tuple[float, float, bool]] = field(default_factory=list)
    prediction: Any = None
    candidate: int = 0
    unsure: bool = False


def paint_part(state: LabelState, rec: Recorder, mask: np.ndarray, value: int) -> Box | None:
    """Paint a full-size bool ``mask`` with ``value`` (a union: pixels outside the mask are kept)."""
    box = mask_box(mask)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    rec.paint(box, mask[y0:y1, x0:x1], value)
    return box


def replace_part(state: LabelState, rec: Recorder, part: Part, mask: np.ndarray) -> Box:
    """Swap the pixels ``part`` painted for full-size ``mask`` (restoring what the old mask covered)."""
    new_box = mask_box(mask)
    box = union_box(part.box, new_box)
    assert box is not None
    rec.touch(box)
    y0, y1, x0, x1 = box
    pre = state.map[y0:y1, x0:x1].copy()
    py0, py1, px0, px1 = part.box
    pre[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0] = part.before
    new = pre.copy()
    new[mask[y0:y1, x0:x1]] = part.value
    state.map[y0:y1, x0:x1] = new
    part.box, part.before = box, pre
    return box


def _pack_mask(mask: np.ndarray) -> tuple[bytes, tuple[int, int]]:
    m = np.asarray(mask, bool)
    return zlib.compress(np.packbits(m).tobytes(), 1), (int(m.shape[0]), int(m.shape[1]))


def _unpack_mask(packed: tuple[bytes, tuple[int, int]]) -> np.ndarray:
    data, (h, w) = packed
    bits = np.unpackbits(np.frombuffer(zlib.decompress(data), np.uint8), count=h * w)
    return bits.reshape(h, w).astype(bool)


@dataclass(frozen=True)
class FrozenPart:
    """A ``Part`` kept on an undo step: its ``before`` crop and the model's masks compressed (a prediction
    of a big image holds several full-size masks)."""

    part: Part
    before: bytes
    mask: tuple[bytes, tuple[int, int]] | None = None
    candidates: tuple[tuple[tuple[bytes, tuple[int, int]], float], ...] = ()

    @property
    def nbytes(self) -> int:
        packed = len(self.mask[0]) if self.mask else 0
        return len(self.before) + packed + sum(len(c[0][0]) for c in self.candidates) + 256


def freeze_part(part: Part) -> FrozenPart:
    """A compact copy of ``part`` for the history."""
    pred = part.prediction
    mask = None
    cands: tuple[tuple[tuple[bytes, tuple[int, int]], float], ...] = ()
    light_pred = None
    if isinstance(pred, Prediction):
        mask = _pack_mask(pred.mask)
        cands = tuple((_pack_mask(c.mask), float(c.score)) for c in pred.candidates)
        light_pred = Prediction(np.zeros((0, 0), bool), pred.score, [], pred.state)
    light = Part(
        value=part.value,
        box=part.box,
        before=np.zeros((0, 0), np.uint8),
        serial=part.serial,
        extreme_points=list(part.extreme_points) if part.extreme_points is not None else None,
        clicks=list(part.clicks),
        prediction=light_pred if light_pred is not None else pred,
        candidate=part.candidate,
        unsure=part.unsure,
    )
    return FrozenPart(light, _pack(part.before), mask, cands)


def thaw_part(frozen: FrozenPart, serial: int) -> Part:
    """A live ``Part`` again (for the current ``serial``)."""
    p = frozen.part
    pred = p.prediction
    if frozen.mask is not None and isinstance(pred, Prediction):
        cands = [Candidate(_unpack_mask(m), score) for m, score in frozen.candidates]
        pred = Prediction(_unpack_mask(frozen.mask), pred.score, cands, pred.state)
    return Part(
        value=p.value,
        box=p.box,
        before=_unpack(frozen.before, p.box).copy(),
        serial=serial,
        extreme_points=list(p.extreme_points) if p.extreme_points is not None else None,
        clicks=list(p.clicks),
        prediction=pred,
        candidate=p.candidate,
        unsure=p.unsure,
    )
