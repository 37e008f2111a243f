"""The prompt log: what made every mask of an image, so a better model can redo the model's part.

Kernel side. One JSON file per image, ``<job_dir>/gt-widget/prompt-log/<index>.json`` (``log_path``):
inside the job folder but outside everything Ground Truth reads (its ``output.manifest`` references only
consolidated PNGs; nothing references this folder). Conventions: (x, y) pixels of the original image;
``value`` is the label index (semantic: 1-based, ``labels[value - 1]``) or the instance id (instance mode:
1-based, ``instances[value - 1]``); 0 = background / eraser.

Format ``gt-widget-prompt-log``, version 2 (documented here; version 1 files are read and upgraded, other
versions are refused)::

    {"format": "gt-widget-prompt-log", "version": 2,
     "image": {"source_ref": "...", "index": 0, "width": W, "height": H},
     "mode": "semantic" | "instance", "labels": [...],
     "models": {"m1": {"name": "mobilesam", "weights_sha256": "...", "recipe": {flag: value}}},
     "events": [ ... in the order they happened ... ]}

One event type for every action. Each event is ONE user action, i.e. one undo step of the editor (``undo`` and
``redo`` move through those steps), with the same envelope::

    {"seq": n, "kind": K, "new_instances": [{"value": k, "label": s, "color": c}, ...], ...K's fields}

``seq`` = position in ``events``. ``new_instances`` (instance mode, omitted when empty): the instances the
action itself created, appended to the instance list before it paints (an auto-segment, stroke or accepted
proposal that started a new instance), so they vanish with the action on undo. The kinds and their fields
(``EVENT_FIELDS``):

- ``model``: ``"model": "m1", "value", "label", "prompt": {"extreme_points": [[x, y] x4] | null,
  "box": [x0, y0, x1, y1] | null, "clicks": [[x, y, positive], ...], "proposal": {"pointer": [x, y],
  "point": [x, y], "box": [x0, y0, x1, y1], "points_per_side": n, "settings": {...}} | null},
  "candidate": k, "refines": seq | null, "result": {"area": n, "sha256": hex}``: a model-made mask painted
  with ``value``. ``refines`` names the model event this one replaces (a corrective click or another
  candidate): the previous mask's pixels go back to what they were before that chain began, then the new
  mask is painted. ``candidate`` picks the k-th of the prediction's candidates. ``proposal``: an accepted
  automatic proposal (``point`` = the grid point that made it, ``box`` = its mask's inclusive pixel box;
  a model without proposals replays it as ``predict(box=box, clicks=[point])``). ``result`` fingerprints the
  mask (``mask_digest``) so a replay can tell whether it reproduced it.
- ``proposals``: ``"model": "m1", "label", "threshold", "points_per_side", "settings", "accepted": [{"value", "point",
  "box", "score", "result"}, ...]``: accept-all, every proposal scoring at least ``threshold`` painted in
  ``accepted`` order (largest first) with its ``value``. Replayed proposal by proposal: the new model's
  proposal with the same fingerprint, else the one from the same grid point with the closest box, else
  ``predict(box=box, clicks=[point])``; so the number of objects (and instance values) never changes.
- ``stroke``: ``"tool": "brush" | "eraser" | "polygon" | "fill", "value", "label", "points": [[x, y], ...],
  "radius": r``: brush/eraser = a round brush of ``radius`` along the polyline ``points`` (eraser paints 0);
  polygon = the filled polygon with vertices ``points``; fill = the 4-connected region of the seed
  ``points[0]``'s value, painted with ``value``.
- ``instance``: ``"op": "add" | "relabel" | "delete", "value", "label", "color"``: add = a new empty
  instance ``value`` (= the new instance count); relabel = instance ``value`` gets ``label`` (its colour and
  pixels stay); delete = instance ``value`` and its pixels go, later values shift down by one (the written
  form stays compact).
- ``initial``: ``"model_made": false, "map": {"png": base64, "sha256": hex}, "objects": [{"value", "label"
  (, "color")}, ...]``: the labels the image started with (the widget's ``initial_value``: an import, a
  pre-labeling result, an adjustment job's labels, a resumed image whose log was lost). Only ever ``seq`` 0,
  at most once: ``map`` is the uint8 (H, W) map (label indices, or instance ids in instance mode) as a
  base64 8-bit grey PNG (``encode_map``; ``sha256`` = ``map_digest`` of the decoded map), ``objects`` every
  value it holds with its label (and, instance mode, every instance in order with its colour, so
  ``value`` = instance id). Not an undo step (the editor's history starts after it): a replay starts from
  this map instead of a blank one, and its objects count as not model-made.
- ``clear``: no fields: every pixel becomes 0 (instance mode: no instances left).
- ``undo`` / ``redo``: no fields: one step back / forward.

Versioning rule: the version changes only when the form changes incompatibly (what an event means, the
envelope); a new event kind is added within the version (``initial`` came after version 2's first release),
every older log still reads, and a gt-widget that does not know a kind refuses that log naming the kind.

Version 1 (read and upgraded): the same events less ``new_instances``, ``clear``, ``proposals`` and the
instance ops ``relabel`` / ``delete`` (``{"kind": "instance", "op": "new"}`` is ``add``); an implicitly
created instance was its own ``instance`` event (its own step), and clear / relabel / delete / accept-all
were ``{"kind": "unreplayable", "what": ...}``, which a replay refuses with a message naming the action.

The cost (benchmarks/bench_promptlog.py, 854x480 images): ~0.5 KB of JSON and ~0.4 ms per model edit,
~0.4 KB and ~25 us per 20-point brush stroke, ~0.24 KB and ~0.5 ms per proposal an accept-all accepted,
~50 bytes and a few us per clear / relabel / delete. An ``initial`` event (once per image that
started with labels; DAVIS frames' 1-4 objects): ~3.2 KB at 854x480, ~6.7 KB at 1920x1080 (half of plain
run lengths in JSON), ~10 / ~50 ms to record, mostly the PNG encode (2-core machine at load ~12).
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gt_widget.errors import FormatError
from gt_widget.fileio import atomic_write_bytes

FORMAT = "gt-widget-prompt-log"
VERSION = 2
READABLE_VERSIONS = (1, 2)
LOG_DIR = Path("gt-widget") / "prompt-log"
STROKE_TOOLS = ("brush", "eraser", "polygon", "fill")
INSTANCE_OPS = ("add", "relabel", "delete")
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "model": ("model", "value", "label", "prompt", "candidate", "refines", "result"),
    "proposals": ("model", "label", "threshold", "points_per_side", "settings", "accepted"),
    "stroke": ("tool", "value", "label", "points"),
    "instance": ("op", "value"),
    "initial": ("model_made", "map", "objects"),
    "clear": (),
    "undo": (),
    "redo": (),
}
"""Every event kind and the fields it must have besides the envelope (``seq``, ``kind``, ``new_instances``)."""
Mode = Literal["semantic", "instance"]


def log_path(job_dir: str | os.PathLike[str], index: int) -> Path:
    """Where the log of image ``index`` (0-based, the dataset object id) lives in a job folder."""
    return Path(job_dir) / LOG_DIR / f"{int(index)}.json"


def mask_digest(mask: np.ndarray) -> str:
    """sha256 of a bool (H, W) mask (its shape and packed bits): equal digests = identical masks."""
    m = np.ascontiguousarray(np.asarray(mask, bool))
    h = hashlib.sha256(f"{m.shape[0]}x{m.shape[1]}:".encode())
    h.update(np.packbits(m).tobytes())
    return h.hexdigest()


def model_info(segmenter: Any) -> dict[str, Any]:
    """{name, weights_sha256, recipe} of a segmenter: its name, the verified checkpoint's sha256 (None for
    models without weights) and every constructor flag it exposes as an attribute (JSON values only)."""
    name = str(getattr(segmenter, "name", type(segmenter).__name__))
    sha = None
    if name == "mobilesam":
        from gt_widget.segment.weights import MOBILESAM_SHA256

        sha = MOBILESAM_SHA256  # every checkpoint we load is verified against it (segment/weights.py)
    recipe: dict[str, Any] = {}
    for key in inspect.signature(type(segmenter).__init__).parameters:
        if key in ("self", "model") or not hasattr(segmenter, key):
            continue
        value = getattr(segmenter, key)
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, (str, int, float, bool, list)) or value is None:
            recipe[key] = value
    return {"name": name, "weights_sha256": sha, "recipe": recipe}


def mask_box_xyxy(mask: np.ndarray) -> list[int] | None:
    """[x0, y0, x1, y1] inclusive pixel box of a bool (H, W) mask, None when it is empty."""
    m = np.asarray(mask, bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])]


def map_digest(index_map: np.ndarray) -> str:
    """sha256 of a uint8 (H, W) map (its shape and bytes): equal digests = identical maps."""
    m = np.ascontiguousarray(np.asarray(index_map, np.uint8))
    h = hashlib.sha256(f"{m.shape[0]}x{m.shape[1]}:".encode())
    h.update(m.tobytes())
    return h.hexdigest()


def encode_map(index_map: np.ndarray) -> dict[str, str]:
    """{"png": base64 8-bit grey PNG, "sha256": ``map_digest``} of a uint8 (H, W) map (an initial event)."""
    import cv2

    m = np.ascontiguousarray(np.asarray(index_map))
    if m.ndim != 2 or m.dtype != np.uint8:
        raise FormatError(f"an initial map must be uint8 (H, W), got {m.dtype} {m.shape}")
    ok, png = cv2.imencode(".png", m, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise FormatError("could not PNG-encode the initial map")
    return {"png": base64.b64encode(png.tobytes()).decode("ascii"), "sha256": map_digest(m)}


def decode_map(data: Any, shape: tuple[int, int], where: str = "initial event") -> np.ndarray:
    """The uint8 (H, W) map of an ``encode_map`` document; ``FormatError`` when it is not that map of ``shape``."""
    import cv2

    try:
        raw = np.frombuffer(base64.b64decode(str(data["png"]), validate=True), np.uint8)
        m = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{where}: its map is not a base64 PNG ({exc}); the log is damaged") from None
    if m is None or m.dtype != np.uint8 or m.shape != tuple(shape):
        got = "unreadable" if m is None else f"{m.dtype} {m.shape}"
        raise FormatError(f"{where}: its map is {got}, expected uint8 {tuple(shape)}; the log is damaged")
    if data.get("sha256") not in (None, map_digest(m)):
        raise FormatError(f"{where}: its map does not match its sha256; the log is damaged")
    return np.asarray(m)


def _values_of(index_map: np.ndarray) -> list[int]:
    """The non-zero values present in a uint8 (H, W) map, ascending (a histogram: no sort of the pixels)."""
    import cv2

    hist = cv2.calcHist([np.ascontiguousarray(index_map, np.uint8)], [0], None, [256], [0, 256]).ravel()
    return [int(v) for v in np.flatnonzero(hist) if v]


def result_of(mask: np.ndarray) -> dict[str, Any]:
    """The ``result`` fingerprint of a model-made mask: {"area": pixels, "sha256": ``mask_digest``}."""
    return {"area": int(np.count_nonzero(mask)), "sha256": mask_digest(mask)}


def _xy(points: Sequence[Sequence[float]] | np.ndarray | None) -> list[list[float]] | None:
    if points is None:
        return None
    return [[round(float(p[0]), 2), round(float(p[1]), 2)] for p in points]


@dataclass
class PromptLog:
    """The prompt log of one image, and the recording API the widget's editor calls (module doc).

    Every ``record_*`` returns the event's ``seq``. ``save(job_dir)`` writes it atomically.
    """

    width: int
    height: int
    labels: list[str]
    mode: Mode = "semantic"
    source_ref: str = ""
    index: int = 0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ recording
    def model_id(self, segmenter: Any) -> str:
        """The id ("m1", "m2", ...) of ``segmenter``'s model and recipe, registered on first use."""
        info = model_info(segmenter)
        for key, known in self.models.items():
            if known == info:
                return key
        key = f"m{len(self.models) + 1}"
        self.models[key] = info
        return key

    def record(self, kind: str, new_instances: Sequence[dict[str, Any]] = (), **fields: Any) -> int:
        """Append one event (module doc): the one way every action enters the log. Returns its ``seq``.

        ``new_instances``: [{"value", "label", "color"}] the action created (instance mode)."""
        need = EVENT_FIELDS.get(kind)
        if need is None:
            raise FormatError(f"unknown event kind {kind!r}: use one of {', '.join(EVENT_FIELDS)}")
        missing = [k for k in need if k not in fields]
        if missing:
            raise FormatError(f"a {kind!r} event needs {', '.join(missing)}")
        event: dict[str, Any] = {"seq": len(self.events), "kind": kind}
        if new_instances:
            event["new_instances"] = [
                {"value": int(i["value"]), "label": str(i["label"]), "color": str(i["color"])} for i in new_instances
            ]
        event.update(fields)
        self.events.append(event)
        return len(self.events) - 1

    def record_model_edit(
        self,
        segmenter: Any,
        mask: np.ndarray,
        *,
        value: int,
        label: str,
        extreme_points: Sequence[Sequence[float]] | np.ndarray | None = None,
        box: Sequence[float] | np.ndarray | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        proposal: dict[str, Any] | None = None,
        candidate: int = 0,
        refines: int | None = None,
        new_instances: Sequence[dict[str, Any]] = (),
    ) -> int:
        """A model-made ``mask`` painted with ``value``; the prompt that made it (module doc).

        ``proposal``: {"pointer": (x, y), "point": (x, y), "points_per_side": n, "settings": {...}} for an
        accepted proposal (its ``box`` is taken from ``mask``).
        ``refines``: seq of the model edit this one replaces (corrective click, other candidate).
        """
        if refines is not None:
            ev = self.events[refines] if 0 <= refines < len(self.events) else None
            if ev is None or ev["kind"] != "model":
                raise FormatError(f"refines={refines} does not name a model edit of this log")
        prop = None
        if proposal is not None:
            prop = dict(proposal)
            prop["pointer"] = _xy([prop["pointer"]])[0]  # type: ignore[index]
            if prop.get("point") is not None:
                prop["point"] = _xy([prop["point"]])[0]  # type: ignore[index]
            if "box" not in prop:
                prop["box"] = mask_box_xyxy(mask)
        return self.record(
            "model",
            new_instances,
            model=self.model_id(segmenter),
            value=int(value),
            label=str(label),
            prompt={
                "extreme_points": _xy(extreme_points),
                "box": None if box is None else [round(float(v), 2) for v in box],
                "clicks": [[*_xy([c[:2]])[0], bool(c[2])] for c in clicks],  # type: ignore[index]
                "proposal": prop,
            },
            candidate=int(candidate),
            refines=refines,
            result=result_of(mask),
        )

    def record_proposals(
        self,
        segmenter: Any,
        masks: Sequence[np.ndarray],
        values: Sequence[int],
        *,
        label: str,
        threshold: float,
        points_per_side: int,
        settings: dict[str, Any],
        points: Sequence[Sequence[float] | None],
        scores: Sequence[float],
        new_instances: Sequence[dict[str, Any]] = (),
    ) -> int:
        """Accept-all: ``masks[i]`` (made from grid point ``points[i]``, predicted IoU ``scores[i]``) painted
        with ``values[i]`` in this order; ``threshold`` and the proposal settings that chose them. A point may
        be None when unknown (a replay without proposals then prompts with the box alone)."""
        if not len(masks) == len(values) == len(points) == len(scores):
            raise FormatError("record_proposals needs one value, point and score per mask")
        accepted = [
            {
                "value": int(v),
                "point": None if pt is None else [round(float(pt[0]), 2), round(float(pt[1]), 2)],
                "box": mask_box_xyxy(m),
                "score": round(float(sc), 4),
                "result": result_of(m),
            }
            for m, v, pt, sc in zip(masks, values, points, scores, strict=True)
        ]
        return self.record(
            "proposals",
            new_instances,
            model=self.model_id(segmenter),
            label=str(label),
            threshold=float(threshold),
            points_per_side=int(points_per_side),
            settings=dict(settings),
            accepted=accepted,
        )

    def record_stroke(
        self,
        tool: str,
        points: Sequence[Sequence[float]],
        *,
        value: int,
        label: str = "",
        radius: float | None = None,
        new_instances: Sequence[dict[str, Any]] = (),
    ) -> int:
        """A manual edit: brush / eraser (with ``radius``), polygon (vertices) or fill (seed point)."""
        if tool not in STROKE_TOOLS:
            raise FormatError(f"unknown stroke tool {tool!r}: use one of {', '.join(STROKE_TOOLS)}")
        if tool in ("brush", "eraser") and radius is None:
            raise FormatError(f"a {tool} stroke needs its radius")
        if not points:
            raise FormatError(f"a {tool} stroke needs at least one point")
        extra = {} if radius is None else {"radius": float(radius)}
        value = 0 if tool == "eraser" else int(value)
        return self.record("stroke", new_instances, tool=tool, value=value, label=label, points=_xy(points), **extra)

    def record_initial(self, index_map: np.ndarray, instances: Sequence[Any] = ()) -> int:
        """The labels the image started with (module doc, ``initial``): uint8 (H, W) ``index_map`` and, in
        instance mode, its instances in order (anything with ``label`` and ``color``). Must come first, once."""
        if self.events:
            what = "already starts with one" if self.events[0]["kind"] == "initial" else "already has events"
            raise FormatError(f"an initial event must be the log's first and only one; this log {what}")
        m = np.asarray(index_map)
        if m.shape != (self.height, self.width):
            raise FormatError(
                f"initial map is {m.shape[1] if m.ndim > 1 else '?'}x{m.shape[0]}, the log's image "
                f"{self.width}x{self.height}"
            )
        if self.mode == "instance":
            objects = [
                {"value": k, "label": str(i.label), "color": str(i.color)} for k, i in enumerate(instances, start=1)
            ]
            top = len(objects)
        else:
            values = _values_of(m)
            objects = [{"value": v, "label": self.labels[v - 1]} for v in values if v <= len(self.labels)]
            top = len(self.labels)
        if m.size and int(m.max()) > top:
            raise FormatError(f"initial map holds value {int(m.max())} but only {top} labels/instances exist")
        return self.record("initial", model_made=False, map=encode_map(m), objects=objects)

    def record_undo(self) -> int:
        """The user undid one history step."""
        return self.record("undo")

    def record_redo(self) -> int:
        """The user redid one history step."""
        return self.record("redo")

    def record_clear(self) -> int:
        """The user removed every label (and instance)."""
        return self.record("clear")

    def record_new_instance(self, value: int, label: str, color: str) -> int:
        """Instance mode: the user added instance ``value`` (1-based position) with ``label`` and ``color``."""
        return self.record("instance", op="add", value=int(value), label=str(label), color=str(color))

    def record_relabel(self, value: int, label: str) -> int:
        """Instance mode: instance ``value`` (1-based position) now has ``label``."""
        return self.record("instance", op="relabel", value=int(value), label=str(label))

    def record_delete(self, value: int) -> int:
        """Instance mode: instance ``value`` (1-based position) and its pixels were deleted."""
        return self.record("instance", op="delete", value=int(value))

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (module doc)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "image": {"source_ref": self.source_ref, "index": self.index, "width": self.width, "height": self.height},
            "mode": self.mode,
            "labels": list(self.labels),
            "models": self.models,
            "events": self.events,
        }

    def to_json(self) -> str:
        """Compact JSON of ``to_dict``."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def save(self, job_dir: str | os.PathLike[str]) -> Path:
        """Write atomically to ``log_path(job_dir, index)``; returns the path."""
        path = log_path(job_dir, self.index)
        atomic_write_bytes(path, self.to_json().encode("utf-8"))
        return path

    @classmethod
    def from_dict(cls, data: Any, where: str = "prompt log") -> PromptLog:
        """Read a document written by ``to_dict``; ``FormatError`` saying what is wrong otherwise."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FormatError(f"{where} is not a {FORMAT} document (no 'format': '{FORMAT}')")
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            readable = " and ".join(str(v) for v in READABLE_VERSIONS)
            raise FormatError(
                f"{where} has version {version!r}; this gt-widget reads versions {readable}: upgrade gt-widget"
            )
        try:
            img = data["image"]
            log = cls(
                width=int(img["width"]),
                height=int(img["height"]),
                labels=[str(x) for x in data["labels"]],
                mode=data["mode"],
                source_ref=str(img.get("source_ref", "")),
                index=int(img.get("index", 0)),
                models=dict(data["models"]),
                events=[_upgrade(dict(e)) for e in data["events"]] if version == 1 else list(data["events"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{where} is malformed ({exc!r}); it was not written by gt-widget") from None
        if log.mode not in ("semantic", "instance"):
            raise FormatError(f"{where}: mode must be 'semantic' or 'instance', got {log.mode!r}")
        return log

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PromptLog:
        """Read a log file."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(f"prompt log {str(p)!r} not found") from None
        except json.JSONDecodeError as exc:
            raise FormatError(f"prompt log {str(p)!r} is not valid JSON: {exc}") from None
        return cls.from_dict(data, str(p))


def _upgrade(event: dict[str, Any]) -> dict[str, Any]:
    """A version-1 event in version 2's form (module doc); "unreplayable" events are kept as they are."""
    if event.get("kind") == "instance" and event.get("op") == "new":
        event["op"] = "add"
    if event.get("kind") == "model":
        event.pop("union", None)
    return event


def load_logs(job_dir: str | os.PathLike[str]) -> dict[int, PromptLog]:
    """Every prompt log of a job folder, by image index."""
    folder = Path(job_dir) / LOG_DIR
    if not folder.is_dir():
        raise FormatError(
            f"no prompt logs under {str(folder)!r}: resegment needs a job folder labeled with gt-widget's "
            "widget (or written with PromptLog.save)"
        )
    out: dict[int, PromptLog] = {}
    for p in sorted(folder.glob("*.json")):
        log = PromptLog.load(p)
        out[log.index] = log
    return out
