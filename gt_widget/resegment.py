"""Replay prompt logs with another model or recipe: ``gt-widget resegment OUTPUT_DIR --recipe ...``.

Kernel side. Each image's log (gt_widget.promptlog) is replayed event by event, exactly as the editor applied it,
starting from the labels the image started with (its ``initial`` event: an import, a pre-labeling result)
or a blank map (one handler per event kind, each event one history step): model edits and accepted
proposals (one click or accept-all) are re-segmented from their recorded prompts by the new segmenter,
strokes (brush, eraser, polygon, fill), clear and instance add / relabel / delete are applied in their
order, undo/redo move through the replayed history; instances an action created come and go with it.
The result is written as a new Ground Truth job folder (gt_widget.segment.prelabel_output) together with
new logs (same events, new model and result fingerprints) and ``resegment-report.json``:
per object (label or instance, named by its final label) the IoU between the old output and the new one,
whether a model painted it (a model mask that was cleared or deleted since does not count) and whether
it was among the labels the image started with (``imported``; those are never model-made on their own),
the objects that changed most first. ``reproduced`` counts model-made masks (model edits and accepted
proposals) whose new mask is bit-identical to the recorded one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gt_widget.errors import FormatError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import Instance
from gt_widget.promptlog import PromptLog, decode_map, load_logs, mask_digest, result_of
from gt_widget.segment.base import Prediction, Segmenter


@dataclass
class Replayed:
    """A replayed image: uint8 (H, W) ``index_map``, instances (instance mode), the values any model painted
    that are still in the result, the new log, how many model-made masks reproduced their recorded mask
    exactly (a model edit or one accepted proposal each), and the values of the labels / instances the image
    started with (its ``initial`` event) that are still in the result."""

    index_map: np.ndarray
    instances: list[Instance] | None
    model_values: set[int]
    log: PromptLog
    reproduced: int = 0
    model_edits: int = 0
    imported_values: set[int] = field(default_factory=set)


@dataclass
class _Step:
    """One history step: the map and instances after it, the values a model painted, and for a model edit
    what a later refinement needs."""

    map: np.ndarray
    seq: int
    instances: list[Instance] = field(default_factory=list)
    model_values: set[int] = field(default_factory=set)
    imported: set[int] = field(default_factory=set)
    before: np.ndarray | None = None  # the map before the model chain began
    mask: np.ndarray | None = None
    prediction: Prediction | None = None


def _stroke_mask(event: dict[str, Any], current: np.ndarray) -> np.ndarray:
    from gt_widget.widget.state import polygon_footprint, stroke_footprint

    shape = current.shape
    out = np.zeros(shape, bool)
    tool, pts = event["tool"], event["points"]
    if not pts:
        return out
    if tool == "fill":
        x, y = round(pts[0][0]), round(pts[0][1])
        if not (0 <= x < shape[1] and 0 <= y < shape[0]):
            raise FormatError(f"fill seed {pts[0]} is outside the {shape[1]}x{shape[0]} image")
        same = (current == current[y, x]).astype(np.uint8)
        _n, comp = cv2.connectedComponents(same, connectivity=4)
        return np.asarray(comp == comp[y, x])
    found = polygon_footprint(pts, shape) if tool == "polygon" else stroke_footprint(pts, event["radius"], shape)
    if found is not None:
        (y0, y1, x0, x1), crop = found
        out[y0:y1, x0:x1] = crop
    return out


def _box_iou(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """IoU of two inclusive pixel boxes [x0, y0, x1, y1] (0 when either is missing)."""
    if a is None or b is None:
        return 0.0
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return float(iw * ih / (area(a) + area(b) - iw * ih))


class _Replay:
    """Replays one log (see ``replay``): one method per event kind, all through ``apply``."""

    def __init__(self, log: PromptLog, image: np.ndarray, segmenter_for: Callable[[str], Segmenter]) -> None:
        from gt_widget.segment.proposals import ProposalCache

        self.log, self.image, self.segmenter_for = log, image, segmenter_for
        h, w = log.height, log.width
        self.history: list[_Step] = [_Step(np.zeros((h, w), np.uint8), -1)]
        self.pos = 0
        self.new = PromptLog(w, h, list(log.labels), log.mode, log.source_ref, log.index)
        self.image_of: int | None = None
        self.proposals = ProposalCache(max_images=1)
        self.reproduced = self.edits = 0
        self.kinds: dict[str, Callable[[_Step, _Step, dict[str, Any]], None]] = {
            "model": self.model,
            "proposals": self.accept_all,
            "stroke": self.stroke,
            "instance": self.instance,
            "clear": self.clear,
        }

    # ------------------------------------------------------------------ the loop
    def run(self) -> Replayed:
        for event in self.log.events:
            self.apply(event)
        final = self.history[self.pos]
        instances = list(final.instances) if self.log.mode == "instance" else None
        present = set(np.unique(final.map).tolist())
        return Replayed(
            final.map,
            instances,
            final.model_values & present,
            self.new,
            self.reproduced,
            self.edits,
            final.imported & present,
        )

    def apply(self, event: dict[str, Any]) -> None:
        """One event: undo / redo move through the replayed history, every other kind is one new step."""
        kind = str(event.get("kind"))
        if kind in ("undo", "redo"):
            self.pos = max(0, self.pos - 1) if kind == "undo" else min(len(self.history) - 1, self.pos + 1)
            self.new.record(kind)
            return
        if kind == "initial":
            self.initial(event)
            return
        handler = self.kinds.get(kind)
        if handler is None:
            if kind == "unreplayable":
                raise FormatError(
                    f"image {self.log.index}: event {event.get('seq')} ({event.get('what')}) was logged by an older "
                    "gt-widget that could not record it, so this image cannot be re-segmented; label it again "
                    "with this version (or leave it out of the prompt-log folder)"
                )
            raise FormatError(f"image {self.log.index}: unknown event kind {kind!r}")
        cur = self.history[self.pos]
        step = _Step(
            cur.map.copy(), len(self.new.events), list(cur.instances), set(cur.model_values), set(cur.imported)
        )
        born = list(event.get("new_instances", ()))
        for inst in born:
            self._add_instance(step, inst)
        handler(cur, step, event | {"new_instances": born})
        self.history = [*self.history[: self.pos + 1], step]
        self.pos += 1

    def _add_instance(self, step: _Step, inst: dict[str, Any]) -> None:
        k = int(inst["value"])
        made = Instance(str(inst["label"]), str(inst["color"]))
        if k == len(step.instances) + 1:
            step.instances.append(made)
        elif 1 <= k <= len(step.instances):  # a version-1 log named an instance again: it is that one
            step.instances[k - 1] = made
        else:
            raise FormatError(
                f"image {self.log.index}: instance {k} created while {len(step.instances)} exist; the log is inconsistent"
            )

    def _segmenter(self, model_id: str) -> Segmenter:
        seg = self.segmenter_for(model_id)
        if self.image_of != id(seg):
            seg.set_image(self.image)
            self.image_of = id(seg)
        return seg

    def _paint_model(self, step: _Step, mask: np.ndarray, value: int, recorded: dict[str, Any] | None) -> None:
        step.map[mask] = value
        step.model_values.add(value)
        self.edits += 1
        self.reproduced += recorded is not None and mask_digest(mask) == recorded.get("sha256")

    # ------------------------------------------------------------------ kinds
    def initial(self, event: dict[str, Any]) -> None:
        """The labels the image started with: the replay's starting map (not an undo step), never model-made."""
        if self.new.events or len(self.history) > 1:
            raise FormatError(
                f"image {self.log.index}: event {event.get('seq')} is an initial event after other events; an "
                "image starts only once, so the log is inconsistent"
            )
        where = f"image {self.log.index}: initial event"
        m = decode_map(event["map"], (self.log.height, self.log.width), where)
        base = self.history[0]
        base.map = m.copy()
        objects = list(event.get("objects", ()))
        if self.log.mode == "instance":
            base.instances = [Instance(str(o["label"]), str(o["color"])) for o in objects]
        if m.size and int(m.max()) > (len(base.instances) if self.log.mode == "instance" else len(self.log.labels)):
            raise FormatError(f"{where}: its map holds value {int(m.max())}, more than its labels / instances")
        base.imported = set(np.unique(m).tolist()) - {0} | {
            int(o["value"]) for o in objects if self.log.mode == "instance"
        }
        self.new.record_initial(m, base.instances)

    def instance(self, cur: _Step, step: _Step, event: dict[str, Any]) -> None:
        op, k = event.get("op"), int(event["value"])
        if op in ("add", "new"):
            self._add_instance(step, event)
            self.new.record_new_instance(k, str(event["label"]), str(event["color"]))
            return
        if not 1 <= k <= len(step.instances):
            raise FormatError(
                f"image {self.log.index}: event {event.get('seq')} names instance {k}, which does not exist"
            )
        if op == "relabel":
            step.instances[k - 1] = Instance(str(event["label"]), step.instances[k - 1].color)
            self.new.record_relabel(k, str(event["label"]))
        elif op == "delete":
            m = step.map
            m[m == k] = 0
            m[m > k] -= 1
            del step.instances[k - 1]
            step.model_values = {v - (v > k) for v in step.model_values if v != k}
            step.imported = {v - (v > k) for v in step.imported if v != k}
            self.new.record_delete(k)
        else:
            raise FormatError(f"image {self.log.index}: unknown instance op {op!r}")

    def clear(self, cur: _Step, step: _Step, event: dict[str, Any]) -> None:
        step.map[:] = 0
        step.instances.clear()
        step.model_values.clear()
        step.imported.clear()
        self.new.record_clear()

    def stroke(self, cur: _Step, step: _Step, event: dict[str, Any]) -> None:
        step.map[_stroke_mask(event, cur.map)] = int(event["value"])
        self.new.record(
            "stroke",
            event["new_instances"],
            **{k: event[k] for k in ("tool", "value", "label", "points", "radius") if k in event},
        )

    def model(self, cur: _Step, step: _Step, event: dict[str, Any]) -> None:
        seg = self._segmenter(str(event["model"]))
        p = event["prompt"]
        value = int(event["value"])
        prev: _Step | None = None
        if event.get("refines") is not None:
            prev = cur if cur.seq == event["refines"] else None
            if prev is None or prev.mask is None:
                raise FormatError(
                    f"image {self.log.index}: model edit {event.get('seq')} refines edit {event['refines']}, "
                    "which is not the live result (another edit came between); the log is inconsistent"
                )
        if p.get("proposal") is not None:
            pred = self._proposal(seg, p["proposal"], None)
            mask = pred.mask
        else:
            pred = seg.predict(
                extreme_points=p.get("extreme_points"),
                box=p.get("box"),
                clicks=[tuple(c) for c in p.get("clicks", [])],
                previous=prev.prediction if prev is not None else None,
            )
            mask = pred.mask
            k = int(event.get("candidate", 0))
            if 0 < k < len(pred.candidates):
                mask = pred.candidates[k].mask
        mask = np.asarray(mask, bool)
        before = prev.before if prev is not None and prev.before is not None else cur.map
        if prev is not None and prev.mask is not None:
            step.map[prev.mask] = before[prev.mask]
        self._paint_model(step, mask, value, event.get("result"))
        step.before, step.mask, step.prediction = before, mask, pred
        self.new.record_model_edit(
            seg,
            mask,
            value=value,
            label=str(event["label"]),
            extreme_points=p.get("extreme_points"),
            box=p.get("box"),
            clicks=p.get("clicks", []),
            proposal=p.get("proposal"),
            candidate=int(event.get("candidate", 0)),
            refines=None if prev is None else prev.seq,
            new_instances=event["new_instances"],
        )

    def accept_all(self, cur: _Step, step: _Step, event: dict[str, Any]) -> None:
        seg = self._segmenter(str(event["model"]))
        grid = {"points_per_side": event["points_per_side"], "settings": event["settings"]}
        accepted = []
        for item in event["accepted"]:
            mask = np.asarray(self._proposal(seg, grid | {"point": item["point"], "box": item["box"]}, item).mask, bool)
            self._paint_model(step, mask, int(item["value"]), item.get("result"))
            accepted.append(item | {"result": result_of(mask)})
        self.new.record(
            "proposals",
            event["new_instances"],
            model=self.new.model_id(seg),
            **{k: event[k] for k in ("label", "threshold", "points_per_side", "settings")},
            accepted=accepted,
        )

    # ------------------------------------------------------------------ proposals
    def _proposal(self, seg: Segmenter, prop: dict[str, Any], item: dict[str, Any] | None) -> Prediction:
        """The new model's mask for an accepted proposal (module doc of gt_widget.promptlog): its own proposal
        when it makes them (the recorded fingerprint, else the one under the pointer / from the same grid
        point with the closest box), else ``predict(box=box, clicks=[point])``."""
        from gt_widget.errors import GtWidgetError
        from gt_widget.segment.proposals import ProposalSettings, proposal_at

        h, w = self.log.height, self.log.width
        settings = ProposalSettings(**prop.get("settings", {}))
        try:
            found = self.proposals.get(seg, int(prop.get("points_per_side", 16)), settings=settings)
        except GtWidgetError:  # a segmenter without proposals (GrabCut)
            found = None
        if found is not None:
            hit = None
            if item is not None:
                want = item.get("result", {})
                hit = next(
                    (q for q in found if q.area == want.get("area") and mask_digest(q.mask) == want.get("sha256")),
                    None,
                )
                if hit is None:
                    point = prop.get("point") or [-1.0, -1.0]
                    near = [q for q in found if abs(q.point[0] - point[0]) < 0.5 and abs(q.point[1] - point[1]) < 0.5]
                    pool = near or found
                    best = max(pool, key=lambda q: _box_iou(list(q.box), prop.get("box")), default=None)
                    hit = best if best is not None and _box_iou(list(best.box), prop.get("box")) > 0 else None
            else:
                hit = proposal_at(found, *prop["pointer"])
            if hit is not None:
                return Prediction(mask=hit.mask, score=hit.score)
        point = prop.get("point") or prop.get("pointer")
        box = prop.get("box")
        if box is None and point is None:
            return Prediction(mask=np.zeros((h, w), bool), score=0.0)
        clicks = [(float(point[0]), float(point[1]), True)] if point is not None else []
        return seg.predict(box=None if box is None else [float(v) for v in box], clicks=clicks)


def replay(
    log: PromptLog,
    image: np.ndarray,
    segmenter_for: Callable[[str], Segmenter],
) -> Replayed:
    """Replay ``log`` on ``image`` (RGB uint8); ``segmenter_for(model_id)`` gives the segmenter to use for
    the log's model ``model_id`` (the same one for every id to re-segment with one recipe)."""
    h, w = log.height, log.width
    if image.shape[:2] != (h, w):
        raise FormatError(f"image is {image.shape[1]}x{image.shape[0]} but the log was made on {w}x{h}")
    return _Replay(log, image, segmenter_for).run()


@dataclass
class ResegmentReport:
    """What ``resegment`` did: the new job folder and one row per object (worst IoU first)."""

    job_dir: Path
    objects: list[dict[str, Any]]
    images: int
    model_edits: int
    reproduced: int

    def summary(self, top: int = 10) -> str:
        """A few lines for people: counts, then the objects that changed most."""
        lines = [
            f"re-segmented {self.images} image(s), {self.model_edits} model edit(s) "
            f"({self.reproduced} gave the very same mask); new job folder: {self.job_dir}",
            "objects that changed most (IoU old vs new):",
        ]
        for row in self.objects[:top]:
            made = "model" if row["model_made"] else "imported" if row["imported"] else "manual"
            lines.append(f"  {row['iou']:.3f}  image {row['index']} {row['source_ref']}  {row['object']} ({made})")
        return "\n".join(lines)


def _old_maps(job_dir: Path) -> dict[str, tuple[np.ndarray, list[str], bool]]:
    from gt_widget.groundtruth.export import read_job_output

    out: dict[str, tuple[np.ndarray, list[str], bool]] = {}
    for item in read_job_output(job_dir):
        out[item.source_ref] = (item.index_map, item.classes, item.instances is not None)
    return out


def resegment(
    job_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    recipe: str = "default",
    flags: dict[str, Any] | None = None,
    weights: str | Path | None = None,
    job_name: str | None = None,
    progress: bool = True,
) -> ResegmentReport:
    """Replay every prompt log of ``job_dir`` with ``recipe`` (a name of gt_widget.segment.named, or
    "recorded" for each log's own model and recipe) and write ``<out_dir>/<job_name>`` (module doc)."""
    from tqdm import tqdm

    from gt_widget.imageio import load_image
    from gt_widget.segment import load_segmenter
    from gt_widget.segment.named import load_recipe
    from gt_widget.segment.prelabel_output import MachineLabel, write_job

    src = Path(job_dir)
    logs = load_logs(src)
    if not logs:
        raise FormatError(f"no prompt logs in {str(src / 'gt-widget' / 'prompt-log')!r}")
    old = _old_maps(src)
    name = job_name or f"{src.name}-resegmented"
    cache: dict[str, Segmenter] = {}
    first = next(iter(logs.values()))

    def segmenter_for(model_id: str, log: PromptLog) -> Segmenter:
        if recipe != "recorded":
            if "_" not in cache:
                cache["_"] = load_recipe(recipe, weights=weights, **(flags or {}))
            return cache["_"]
        if model_id not in cache:
            info = log.models.get(model_id)
            if info is None:
                raise FormatError(f"image {log.index}: model {model_id!r} is not described in the log's models")
            kwargs = dict(info.get("recipe", {}), **(flags or {}))
            if weights is not None and info["name"] == "mobilesam":
                kwargs["weights"] = weights
            cache[model_id] = load_segmenter(info["name"], **kwargs)
        return cache[model_id]

    results: list[MachineLabel] = []
    rows: list[dict[str, Any]] = []
    edits = same = 0
    new_logs: list[PromptLog] = []
    for index, log in tqdm(sorted(logs.items()), desc="re-segmenting", unit="img", disable=not progress):
        if list(log.labels) != list(first.labels):
            raise FormatError(f"image {index}: its log has labels {log.labels}, the others {first.labels}")
        image = load_image(log.source_ref)
        done = replay(log, image, lambda mid, log=log: segmenter_for(mid, log))  # type: ignore[misc]
        edits += done.model_edits
        same += done.reproduced
        new_logs.append(done.log)
        results.append(MachineLabel(log.source_ref, index, done.index_map, done.instances))
        prior = old.get(log.source_ref)
        values = (
            sorted(set(np.unique(done.index_map).tolist()) | set(done.model_values))
            if prior is None
            else sorted((set(np.unique(done.index_map).tolist()) | set(np.unique(prior[0]).tolist())) - {0})
        )
        for v in values:
            if v == 0:
                continue
            new_mask = done.index_map == v
            if prior is None:
                score = float("nan")
            else:
                old_mask = prior[0] == _old_value(v, log, prior[1], prior[2])
                union = np.count_nonzero(old_mask | new_mask)
                score = 1.0 if union == 0 else np.count_nonzero(old_mask & new_mask) / union
            if log.mode == "instance" and done.instances is not None and v <= len(done.instances):
                obj = f"instance {v} ({done.instances[v - 1].label})"
            else:
                obj = log.labels[v - 1] if v <= len(log.labels) else f"value {v}"
            rows.append(
                {
                    "index": index,
                    "source_ref": log.source_ref,
                    "object": obj,
                    "value": v,
                    "model_made": v in done.model_values,
                    "imported": v in done.imported_values,
                    "iou": round(score, 4),
                    "area_new": int(np.count_nonzero(new_mask)),
                }
            )
    out_job = write_job(out_dir, name, first.labels, results)
    for log in new_logs:
        log.save(out_job)
    rows.sort(key=lambda r: r["iou"] if r["iou"] == r["iou"] else 2.0)
    report = ResegmentReport(out_job, rows, len(results), edits, same)
    payload = {
        "source": str(src),
        "recipe": recipe,
        "flags": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (flags or {}).items()},
        "images": report.images,
        "model_edits": edits,
        "reproduced_exactly": same,
        "objects": rows,
    }
    atomic_write_bytes(out_job / "resegment-report.json", json.dumps(payload, indent=1).encode())
    return report


def _old_value(v: int, log: PromptLog, classes: list[str], is_instance: bool) -> int:
    """The old output's value for the log's value ``v`` (the old PNG's classes may be ordered differently)."""
    if is_instance or log.mode == "instance":
        return v
    name = log.labels[v - 1]
    return classes.index(name) + 1 if name in classes else -1
