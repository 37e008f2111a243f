"""Replay prompt logs with another model or recipe: ``gt-widget resegment OUTPUT_DIR --recipe ...``.

Kernel side. Each image's log (gt_widget.promptlog) is replayed event by event on a fresh map, exactly as
the editor applied it: model edits are re-segmented from their recorded prompts by the new segmenter,
strokes (brush, eraser, polygon, fill) are applied on top in their order, undo/redo move through the
replayed history. The result is written as a new Ground Truth job folder (gt_widget.segment.prelabel_output)
together with new logs (same events, new model and result fingerprints) and ``resegment-report.json``:
per object (label or instance) the IoU between the old output and the new one, whether a model made it,
objects that changed most first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gt_widget.errors import FormatError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import Instance
from gt_widget.promptlog import PromptLog, load_logs, mask_digest
from gt_widget.segment.base import Prediction, Segmenter


@dataclass
class Replayed:
    """A replayed image: uint8 (H, W) ``index_map``, instances (instance mode), the values any model painted,
    the new log, and how many model edits reproduced their recorded mask exactly."""

    index_map: np.ndarray
    instances: list[Instance] | None
    model_values: set[int]
    log: PromptLog
    reproduced: int = 0
    model_edits: int = 0


@dataclass
class _Step:
    """One history step: the map after it, and for a model edit what a later refinement needs."""

    map: np.ndarray
    seq: int
    before: np.ndarray | None = None  # the map before the model chain began
    mask: np.ndarray | None = None
    prediction: Prediction | None = None
    instances: dict[int, Instance] = field(default_factory=dict)


def _stroke_mask(event: dict[str, Any], current: np.ndarray) -> np.ndarray:
    from gt_widget.widget.state import polygon_footprint, stroke_footprint

    shape = current.shape
    out = np.zeros(shape, bool)
    tool, pts = event["tool"], event["points"]
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


def replay(
    log: PromptLog,
    image: np.ndarray,
    segmenter_for: Callable[[str], Segmenter],
) -> Replayed:
    """Replay ``log`` on ``image`` (RGB uint8); ``segmenter_for(model_id)`` gives the segmenter to use for
    the log's model ``model_id`` (the same one for every id to re-segment with one recipe)."""
    from gt_widget.promptlog import PromptLog as _Log
    from gt_widget.segment.proposals import ProposalCache, ProposalSettings, proposal_at

    h, w = log.height, log.width
    if image.shape[:2] != (h, w):
        raise FormatError(f"image is {image.shape[1]}x{image.shape[0]} but the log was made on {w}x{h}")
    history: list[_Step] = [_Step(np.zeros((h, w), np.uint8), -1)]
    pos = 0
    new = _Log(w, h, list(log.labels), log.mode, log.source_ref, log.index)
    model_values: set[int] = set()
    images_set: set[int] = set()
    proposals = ProposalCache(max_images=1)
    reproduced = edits = 0
    for event in log.events:
        kind = event.get("kind")
        cur = history[pos]
        if kind == "undo":
            pos = max(0, pos - 1)
            new.record_undo()
            continue
        if kind == "redo":
            pos = min(len(history) - 1, pos + 1)
            new.record_redo()
            continue
        step = _Step(cur.map.copy(), len(new.events), instances=dict(cur.instances))  # new seq = old seq
        if kind == "instance":
            step.instances[int(event["value"])] = Instance(str(event["label"]), str(event["color"]))
            new.record_new_instance(int(event["value"]), str(event["label"]), str(event["color"]))
        elif kind == "stroke":
            m = _stroke_mask(event, cur.map)
            step.map[m] = int(event["value"])
            new.record_stroke(
                event["tool"],
                event["points"],
                value=int(event["value"]),
                label=event.get("label", ""),
                radius=event.get("radius"),
            )
        elif kind == "model":
            seg = segmenter_for(str(event["model"]))
            if id(seg) not in images_set:
                seg.set_image(image)
                images_set = {id(seg)}
            p = event["prompt"]
            prev: _Step | None = None
            if event.get("refines") is not None:
                prev = cur if cur.seq == event["refines"] else None
                if prev is None or prev.mask is None:
                    raise FormatError(
                        f"image {log.index}: model edit {event.get('seq')} refines edit {event['refines']}, "
                        "which is not the live result (another edit came between); the log is inconsistent"
                    )
            if p.get("proposal") is not None:
                prop = p["proposal"]
                settings = ProposalSettings(**prop.get("settings", {}))
                found = proposals.get(seg, int(prop.get("points_per_side", 16)), settings=settings)
                hit = proposal_at(found, *prop["pointer"])
                mask = hit.mask if hit is not None else np.zeros((h, w), bool)
                pred = Prediction(mask=mask, score=hit.score if hit else 0.0)
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
            step.map[mask] = int(event["value"])
            step.before, step.mask, step.prediction = before, mask, pred
            model_values.add(int(event["value"]))
            edits += 1
            reproduced += mask_digest(mask) == event.get("result", {}).get("sha256")
            new.record_model_edit(
                seg,
                mask,
                value=int(event["value"]),
                label=str(event["label"]),
                extreme_points=p.get("extreme_points"),
                box=p.get("box"),
                clicks=p.get("clicks", []),
                proposal=p.get("proposal"),
                candidate=int(event.get("candidate", 0)),
                refines=None if prev is None else prev.seq,
            )
        else:
            raise FormatError(f"image {log.index}: unknown event kind {kind!r}")
        history = [*history[: pos + 1], step]
        pos += 1
    final = history[pos]
    instances = None
    if log.mode == "instance":
        n = max(final.instances, default=0)
        instances = [final.instances.get(k, Instance("", "#000000")) for k in range(1, n + 1)]
    return Replayed(final.map, instances, model_values, new, reproduced, edits)


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
            made = "model" if row["model_made"] else "manual"
            lines.append(f"  {row['iou']:.3f}  image {row['index']} {row['source_ref']}  {row['object']} ({made})")
        return "\n".join(lines)


def _old_maps(job_dir: Path) -> dict[str, tuple[np.ndarray, list[str], bool]]:
    from gt_widget.widget.export import read_job_output

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
