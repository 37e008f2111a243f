"""Batch pre-labeling: segment many images from boxes or extreme points and write Ground Truth outputs.

Kernel side, no UI. Inputs:
- ``source``: a folder of images (PNG, JPEG, BMP, TIFF, WebP, GIF; sorted by name, not recursive; a
  multi-frame GIF / TIFF uses its first frame, with a warning) or an input
  manifest (JSON Lines, one ``{"source-ref": "<local path>"}`` per line; relative paths are relative to the
  manifest's folder; other keys pass through to the output manifest);
- ``prompts``: a JSON object (or a path to one) mapping an image to its objects::

      {"cat.jpg": [{"label": "cat", "extreme_points": [[x, y], [x, y], [x, y], [x, y]]},
                   {"label": "dog", "box": [x0, y0, x1, y1]}]}

  keyed by the image's ``source-ref`` as written, its path relative to the folder / manifest, or its file
  name. Coordinates are (x, y) pixels of the original image (after EXIF orientation). Objects are painted
  in list order, so a later object wins where two overlap. Images without prompts are skipped (reported);
  a prompt key that matches no image is reported as unmatched and makes the run fail (exit code 1), since
  it is almost always a typo or a file the folder does not hold.

Outputs under ``<out_dir>/<job_name>/`` (the layout of a Ground Truth job, which ``gt-widget export`` and
``LabelingSession`` read): ``masks/<name>.png`` (label map: uint8, 0 = BACKGROUND, i = ``labels[i - 1]``),
``annotations/consolidated-annotation/output/<id>_<ts>.png`` (Ground Truth's palette PNG),
``manifests/output/output.manifest`` (``human-annotated: "no"``; confidence = mean model score) and
``prelabel-report.json``. Every file is written atomically (temp file + ``os.replace``). A bad image or
prompt is reported and skipped, never fatal. ``prelabel-state/<index>.json`` records each finished image
(written after its PNGs), so re-running a killed job skips what is done; failed images are retried.

Engines: ``local`` (default) runs the model in this process (``batch_local``: a reader thread decodes
ahead, one model thread per core encodes -- MobileSAM on one shared model, one torch thread each -- and a
writer thread encodes and writes the PNGs); ``ray`` runs one model per Ray actor
(``gt_widget.segment.ray_engine``, ``pip install gt_widget[ray]``) and streams the results back here, where
the same ``write_image`` writes them: same PNG bytes, same manifest lines apart from timestamps.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gt_widget.errors import FormatError, GtWidgetError, GtWidgetWarning
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import consolidated_png, encode_png, output_manifest_line
from gt_widget.groundtruth.labels import validate_label_names
from gt_widget.groundtruth.manifest import loads_manifest
from gt_widget.groundtruth.output import OutputLayout, write_output_manifest
from gt_widget.imageio import load_image
from gt_widget.palette import label_colors
from gt_widget.segment.base import Segmenter

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


@dataclass
class ImageItem:
    """One image to pre-label: its ``source-ref``, local path, lookup keys and pass-through manifest keys."""

    source_ref: str
    path: Path
    keys: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrelabelReport:
    """What ``prelabel`` did: written images, failures (key, message), images without prompts."""

    job_dir: Path
    labels: list[str]
    written: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    no_prompts: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    """Prompt keys that name no image of the source (a typo, or a file that is not there)."""
    warned: list[tuple[str, str]] = field(default_factory=list)
    """(key, message) of images that were written with a warning (first frame of a GIF, clipped values...)."""
    resumed: list[str] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        """Path of the output manifest."""
        return OutputLayout(self.job_dir).output_manifest_path

    def summary(self) -> str:
        """One paragraph for people: counts, then one line per failure."""
        lines = [
            f"pre-labeled {len(self.written)} image(s), {len(self.failed)} failed, "
            f"{len(self.no_prompts)} without prompts"
            + (f", {len(self.resumed)} kept from an earlier run" if self.resumed else "")
            + f"; output manifest: {self.manifest}"
        ]
        lines += [f"  failed {key}: {msg}" for key, msg in self.failed]
        lines += [f"  warning {key}: {msg}" for key, msg in self.warned]
        lines += [
            f"  prompt key {key!r} matches no image (keys are a source-ref, a relative path or a file name)"
            for key in self.unmatched
        ]
        return "\n".join(lines)


def list_images(source: str | os.PathLike[str]) -> list[ImageItem]:
    """The images of a folder or an input manifest (see the module doc)."""
    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FormatError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {str(src)!r}")
        return [ImageItem(str(p), p, [p.name, str(p)]) for p in files]
    if not src.exists():
        raise FormatError(f"{str(src)!r} does not exist: pass a folder of images or an input manifest (.jsonl)")
    items: list[ImageItem] = []
    for n, line in enumerate(loads_manifest(src.read_bytes(), source=str(src), check=False), 1):
        if not isinstance(line.get("source-ref"), str):
            raise FormatError(f'{src}:{n} has no "source-ref" string; each line needs {{"source-ref": "<path>"}}')
        ref = line["source-ref"]
        if "://" in ref and not ref.startswith("file://"):
            raise FormatError(
                f"{src}:{n}: source-ref {ref!r} is a URL; gt-widget segment reads local files: download the "
                "images (e.g. aws s3 sync) and point source-ref at the local copies"
            )
        extra = {k: v for k, v in line.items() if k != "source-ref"}
        local = Path(ref[len("file://") :] if ref.startswith("file://") else ref)
        path = local if local.is_absolute() else src.parent / local
        items.append(ImageItem(ref, path, [ref, str(local), local.name], extra))
    if not items:
        raise FormatError(f"input manifest {str(src)!r} has no lines")
    return items


def load_prompts(prompts: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Read and check the prompts JSON (see the module doc); raises ``FormatError`` saying what to fix."""
    if isinstance(prompts, Mapping):
        data: Any = dict(prompts)
        where = "prompts"
    else:
        path = Path(prompts)
        where = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(f"prompts file {where!r} not found") from None
        except json.JSONDecodeError as exc:
            raise FormatError(f"prompts file {where!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FormatError(f'{where} must be a JSON object {{"image.jpg": [{{"label": ..., "box": [...]}}]}}')
    out: dict[str, list[dict[str, Any]]] = {}
    for key, objects in data.items():
        if not isinstance(objects, list):
            raise FormatError(f"{where}: the value of {key!r} must be a list of objects")
        for i, obj in enumerate(objects):
            has = [k for k in ("extreme_points", "box") if isinstance(obj, dict) and k in obj]
            if not isinstance(obj, dict) or not isinstance(obj.get("label"), str) or len(has) != 1:
                raise FormatError(
                    f"{where}: object {i} of {key!r} must be "
                    '{"label": "<name>", "extreme_points": [[x, y] x4]} or {"label": "<name>", "box": [x0, y0, x1, y1]}'
                )
        out[str(key)] = objects
    return out


@dataclass(frozen=True)
class PrelabelPlan:
    """Everything both engines need to segment and write one image; picklable (Ray ships it to workers)."""

    out_dir: Path
    job_name: str
    label_attribute: str
    labels: tuple[str, ...]
    colors: tuple[str, ...]

    @property
    def job_dir(self) -> Path:
        """``<out_dir>/<job_name>``."""
        return self.out_dir / self.job_name

    @property
    def state_dir(self) -> Path:
        """One JSON record per finished image (written last, so it marks the image done for a resume)."""
        return self.job_dir / "prelabel-state"


@dataclass
class SegmentedImage:
    """What the model side produces for one image: the two PNGs (bytes) and the mean score."""

    label_map_png: bytes
    consolidated_png: bytes
    score: float
    warnings: tuple[str, ...] = ()
    """Messages of the ``GtWidgetWarning``s this image raised (first frame of a GIF, clipped values...)."""


Task = tuple[int, ImageItem, list[dict[str, Any]]]
"""(position in the source, image, its prompts); the position names the files (``<index:05d>_<stem>.png``)."""


def segment_image(
    segmenter: Segmenter, plan: PrelabelPlan, item: ImageItem, objects: list[dict[str, Any]]
) -> SegmentedImage:
    """Model side of one image (no file written): raises ``GtWidgetError`` for a bad image or prompt."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GtWidgetWarning)
        label_map, score = _segment_one(segmenter, item, objects, plan.labels)
    ours = []
    for w in caught:
        if issubclass(w.category, GtWidgetWarning):
            ours.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return SegmentedImage(encode_png(label_map), consolidated_png(label_map, list(plan.colors)), score, tuple(ours))


def write_image(plan: PrelabelPlan, task: Task, result: SegmentedImage) -> dict[str, Any]:
    """Write one image's label-map PNG, consolidated PNG and done-record (in that order, each atomic); returns
    its output-manifest line. Both engines call this in the driver process, so their files are identical."""
    index, item, _objects = task
    stem = Path(item.path).stem
    atomic_write_bytes(plan.job_dir / "masks" / f"{index:05d}_{stem}.png", result.label_map_png)
    layout = OutputLayout(plan.job_dir.resolve())
    png_path = layout.consolidated_png_path(index, datetime.now(timezone.utc))
    atomic_write_bytes(png_path, result.consolidated_png)
    line = output_manifest_line(
        item.source_ref,
        plan.label_attribute,
        layout.ref(png_path),
        list(plan.labels),
        job_name=plan.job_name,
        colors=list(plan.colors),
        confidence=round(result.score, 4),
        human_annotated=False,
        extra=item.extra,
    )
    _write_record(plan, task, {"line": line, "warnings": list(result.warnings)})
    return line


def record_failure(plan: PrelabelPlan, task: Task, message: str) -> None:
    """Remember a failed image so that a resumed run does not retry it (``resume=False`` retries everything)."""
    _write_record(plan, task, {"error": message})


def _record_key(plan: PrelabelPlan, task: Task) -> dict[str, Any]:
    index, item, objects = task
    return {
        "index": index,
        "source-ref": item.source_ref,
        "objects": objects,
        "labels": list(plan.labels),
        "label_attribute": plan.label_attribute,
    }


def _write_record(plan: PrelabelPlan, task: Task, outcome: dict[str, Any]) -> None:
    record = {**_record_key(plan, task), **outcome}
    atomic_write_bytes(plan.state_dir / f"{task[0]:05d}.json", json.dumps(record).encode("utf-8"))


def load_records(plan: PrelabelPlan, tasks: Sequence[Task]) -> dict[int, dict[str, Any]]:
    """Done-records of a previous (possibly killed) run that still match these tasks: same image, prompts,
    labels and label attribute, and (for written images) the consolidated PNG still on disk."""
    done: dict[int, dict[str, Any]] = {}
    for task in tasks:
        path = plan.state_dir / f"{task[0]:05d}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or {k: record.get(k) for k in _record_key(plan, task)} != _record_key(
            plan, task
        ):
            continue
        if "line" in record and not Path(str(record["line"].get(plan.label_attribute, ""))).is_file():
            continue
        done[task[0]] = record
    return done


def prelabel(
    source: str | os.PathLike[str],
    prompts: str | os.PathLike[str] | Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    segmenter: Segmenter | None = None,
    segmenter_factory: Callable[[], Segmenter] | None = None,
    labels: Sequence[str] | None = None,
    job_name: str = "gt-widget-prelabel",
    label_attribute: str = "label-ref",
    progress: bool = True,
    on_error: Callable[[str, str], None] | None = None,
    engine: Literal["local", "ray"] = "local",
    address: str | None = None,
    workers: int | None = None,
    resume: bool = True,
) -> PrelabelReport:
    """Segment every prompted image of ``source`` and write masks + Ground Truth outputs (module doc).

    ``segmenter`` defaults to ``load_segmenter()`` (MobileSAM, else GrabCut). ``labels`` fixes the label
    order (default: first appearance in ``prompts``); an object whose label is not in ``labels`` fails its
    image. Returns a ``PrelabelReport``; only bad arguments (missing source, malformed prompts) raise.

    ``engine="ray"`` runs the model on a Ray cluster (``gt_widget.segment.ray_engine``; ``address`` of a
    running cluster, default a local one; ``workers`` actors, one model each, built by ``segmenter_factory``
    (default ``load_segmenter()``) or a pickled copy of ``segmenter``). The files are written by this process,
    byte for byte as the local engine writes them. ``engine="local"``: ``workers`` model threads (default
    one per core for MobileSAM on the CPU, else one; see ``batch_local``). ``resume`` (default) skips images a previous run of the
    same job finished (``<job>/prelabel-state/``), so a killed run continues where it stopped.
    """
    from tqdm import tqdm

    if engine not in ("local", "ray"):
        raise FormatError(f"unknown engine {engine!r}: use 'local' or 'ray'")
    items = list_images(source)
    table = load_prompts(prompts)
    if not label_attribute.endswith("-ref"):
        raise FormatError(f"label attribute {label_attribute!r} must end in '-ref' (Ground Truth's rule)")
    if labels is None:
        seen: dict[str, None] = {}
        for objects in table.values():
            for obj in objects:
                seen.setdefault(obj["label"], None)
        labels = list(seen)
    if not labels:
        raise FormatError("no labels: the prompts name no object; add objects with a 'label'")
    labels = validate_label_names(labels)  # the one label rule set (duplicates, > 255, BACKGROUND, ...)
    colors = list(label_colors(labels).values())
    plan = PrelabelPlan(Path(out_dir), job_name, label_attribute, tuple(labels), tuple(colors))
    report = PrelabelReport(job_dir=plan.job_dir, labels=labels)

    tasks: list[Task] = []
    for i, it in enumerate(items):
        objs = _lookup(table, it)
        if objs is None:
            report.no_prompts.append(it.source_ref)
        else:
            tasks.append((i, it, objs))
    done = {k: r for k, r in load_records(plan, tasks).items() if "line" in r} if resume else {}
    if not resume and plan.state_dir.is_dir():
        for stale in plan.state_dir.glob("*.json"):
            stale.unlink()
    todo = [t for t in tasks if t[0] not in done]
    known = {key for it in items for key in it.keys}
    report.unmatched = [key for key in table if key not in known]
    report.resumed = [t[1].source_ref for t in tasks if t[0] in done]

    def failed(task: Task, message: str) -> None:
        record_failure(plan, task, message)
        if on_error is not None:
            on_error(task[1].source_ref, message)

    lost = "no result was recorded for this image"
    if engine == "ray":
        from gt_widget.segment.ray_engine import run_ray

        factory = segmenter_factory or (_constant(segmenter) if segmenter is not None else _default_segmenter)
        if segmenter_factory is None and segmenter is not None:
            import pickle

            try:
                pickle.dumps(segmenter)
            except Exception:
                raise GtWidgetError(
                    f"the Ray engine builds one model per worker and cannot ship this {type(segmenter).__name__}; "
                    "pass segmenter_factory=functools.partial(load_segmenter, 'mobilesam', ...) instead of segmenter="
                ) from None
        segmenter_name = "ray"
        try:
            run_ray(plan, todo, factory, address=address, workers=workers, progress=progress, on_error=failed)
        except GtWidgetError:
            raise
        except Exception as exc:  # the cluster failed mid-run: what was written stays; the rest is reported
            lost = f"the Ray run stopped ({type(exc).__name__}: {exc}); run again to resume"
    else:
        if todo and segmenter is None:
            segmenter = segmenter_factory() if segmenter_factory is not None else _default_segmenter()
        segmenter_name = getattr(segmenter, "name", type(segmenter).__name__) if segmenter is not None else "none"
        if todo:
            from gt_widget.segment.batch_local import run_local

            assert segmenter is not None
            bar = tqdm(total=len(todo), desc="pre-labeling", unit="img", disable=not progress)
            try:
                run_local(
                    segmenter,
                    todo,
                    plan.labels,
                    plan.colors,
                    lambda task, result: write_image(plan, task, result),
                    failed,
                    workers=workers,
                    progress=lambda: bar.update(1),
                )
            finally:
                bar.close()

    records = load_records(plan, tasks)
    lines: list[dict[str, Any]] = []
    for index, item, _objects in tasks:
        record = records.get(index)
        if record is None:
            report.failed.append((item.source_ref, lost))
        elif "line" in record:
            lines.append(record["line"])
            report.written.append(item.source_ref)
            report.warned.extend((item.source_ref, str(m)) for m in record.get("warnings", []))
        else:
            report.failed.append((item.source_ref, str(record.get("error", "failed"))))
    write_output_manifest(report.manifest, lines)
    summary = {
        "labels": labels,
        "written": report.written,
        "failed": [{"source-ref": k, "error": m} for k, m in report.failed],
        "no_prompts": report.no_prompts,
        "unmatched_prompts": report.unmatched,
        "warnings": [{"source-ref": k, "warning": m} for k, m in report.warned],
        "resumed": report.resumed,
        "engine": engine,
        "segmenter": segmenter_name,
    }
    atomic_write_bytes(plan.job_dir / "prelabel-report.json", json.dumps(summary, indent=1).encode())
    return report


def _default_segmenter() -> Segmenter:
    from gt_widget.segment import load_segmenter

    return load_segmenter()


class _constant:  # noqa: N801 - a tiny picklable factory
    """A factory that returns (a copy of, once pickled) one given segmenter."""

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = segmenter

    def __call__(self) -> Segmenter:
        return self.segmenter


def _lookup(table: Mapping[str, list[dict[str, Any]]], item: ImageItem) -> list[dict[str, Any]] | None:
    for key in item.keys:
        if key in table:
            return table[key]
    return None


def _segment_one(
    segmenter: Segmenter, item: ImageItem, objects: list[dict[str, Any]], labels: Sequence[str]
) -> tuple[np.ndarray, float]:
    from gt_widget.segment.batch_local import label_map_for, prompt_of

    image = load_image(item.path)
    segmenter.set_image(image)
    return label_map_for(lambda obj: segmenter.predict(**prompt_of(obj)), image.shape[:2], objects, labels)
