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
prompt is reported and skipped, never fatal.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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

    @property
    def manifest(self) -> Path:
        """Path of the output manifest."""
        return OutputLayout(self.job_dir).output_manifest_path

    def summary(self) -> str:
        """One paragraph for people: counts, then one line per failure."""
        lines = [
            f"pre-labeled {len(self.written)} image(s), {len(self.failed)} failed, "
            f"{len(self.no_prompts)} without prompts; output manifest: {self.manifest}"
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


def prelabel(
    source: str | os.PathLike[str],
    prompts: str | os.PathLike[str] | Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    segmenter: Segmenter | None = None,
    labels: Sequence[str] | None = None,
    job_name: str = "gt-widget-prelabel",
    label_attribute: str = "label-ref",
    progress: bool = True,
    on_error: Callable[[str, str], None] | None = None,
) -> PrelabelReport:
    """Segment every prompted image of ``source`` and write masks + Ground Truth outputs (module doc).

    ``segmenter`` defaults to ``load_segmenter()`` (MobileSAM, else GrabCut). ``labels`` fixes the label
    order (default: first appearance in ``prompts``); an object whose label is not in ``labels`` fails its
    image. Returns a ``PrelabelReport``; only bad arguments (missing source, malformed prompts) raise.
    """
    from tqdm import tqdm

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
    layout = OutputLayout(Path(out_dir).resolve() / job_name)
    job_dir = layout.job_dir
    report = PrelabelReport(job_dir=job_dir, labels=labels)
    if segmenter is None:
        from gt_widget.segment import load_segmenter

        segmenter = load_segmenter()

    lines: list[dict[str, Any]] = []
    todo = [(i, it, _lookup(table, it)) for i, it in enumerate(items)]
    for _i, it, objs in todo:
        if objs is None:
            report.no_prompts.append(it.source_ref)
    known = {key for it in items for key in it.keys}
    report.unmatched = [key for key in table if key not in known]
    bar = tqdm([t for t in todo if t[2] is not None], desc="pre-labeling", unit="img", disable=not progress)
    for index, item, objects in bar:
        assert objects is not None
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", GtWidgetWarning)
                label_map, score = _segment_one(segmenter, item, objects, labels)
            for w in caught:
                if issubclass(w.category, GtWidgetWarning):
                    report.warned.append((item.source_ref, str(w.message)))
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            stem = Path(item.path).stem
            atomic_write_bytes(job_dir / "masks" / f"{index:05d}_{stem}.png", encode_png(label_map))
            png_path = layout.consolidated_png_path(index, datetime.now(timezone.utc))
            atomic_write_bytes(png_path, consolidated_png(label_map, colors))
            lines.append(
                output_manifest_line(
                    item.source_ref,
                    label_attribute,
                    layout.ref(png_path),
                    labels,
                    job_name=job_name,
                    colors=colors,
                    confidence=round(score, 4),
                    human_annotated=False,
                    extra=item.extra,
                )
            )
            report.written.append(item.source_ref)
        except GtWidgetError as exc:
            report.failed.append((item.source_ref, str(exc)))
            if on_error is not None:
                on_error(item.source_ref, str(exc))
    write_output_manifest(report.manifest, lines)
    summary = {
        "labels": labels,
        "written": report.written,
        "failed": [{"source-ref": k, "error": m} for k, m in report.failed],
        "no_prompts": report.no_prompts,
        "unmatched_prompts": report.unmatched,
        "warnings": [{"source-ref": k, "warning": m} for k, m in report.warned],
        "segmenter": getattr(segmenter, "name", type(segmenter).__name__),
    }
    atomic_write_bytes(job_dir / "prelabel-report.json", json.dumps(summary, indent=1).encode())
    return report


def _lookup(table: Mapping[str, list[dict[str, Any]]], item: ImageItem) -> list[dict[str, Any]] | None:
    for key in item.keys:
        if key in table:
            return table[key]
    return None


def _segment_one(
    segmenter: Segmenter, item: ImageItem, objects: list[dict[str, Any]], labels: Sequence[str]
) -> tuple[np.ndarray, float]:
    image = load_image(item.path)
    segmenter.set_image(image)
    label_map = np.zeros(image.shape[:2], np.uint8)
    scores: list[float] = []
    for k, obj in enumerate(objects):
        if obj["label"] not in labels:
            raise FormatError(f"object {k} has label {obj['label']!r}, which is not among the labels {list(labels)}")
        try:
            if "extreme_points" in obj:
                pred = segmenter.predict(extreme_points=obj["extreme_points"])
            else:
                pred = segmenter.predict(box=obj["box"])
        except GtWidgetError as exc:
            raise type(exc)(f"object {k} ({obj['label']}): {exc}") from None
        except (TypeError, ValueError) as exc:  # e.g. a box of strings that slipped through
            raise FormatError(f"object {k} ({obj['label']}): bad coordinates ({exc})") from None
        label_map[pred.mask] = labels.index(obj["label"]) + 1
        scores.append(float(pred.score))
    return label_map, float(np.mean(scores)) if scores else 0.0
