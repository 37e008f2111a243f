"""Imported labels (``gt_widget.formats``) matched to a session's images, checked before anything is written.

Accepted: an ``ImportedLabels`` (what ``import_coco`` / ``import_yolo`` / ``import_masks`` return) or the job
folder ``gt-widget import`` wrote (``ImportedLabels.from_job``). Matching: the imported image's path equals an
item's ``ref`` / ``source-ref`` (or the same file once resolved); else its file name names exactly one session
image. Refused with ``SessionError`` (nothing written): labels not among the session's, an imported image the
session does not hold (or two imported images for one session image), a size that differs from the image.
Conventions: semantic maps uint8 (H, W) over the session's labels (0 = BACKGROUND); instance maps uint8
(H, W), k = ``instances[k - 1]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gt_widget.errors import GtWidgetError
from gt_widget.formats.labels import ImportedLabels
from gt_widget.groundtruth.formats import Instance, InstanceResult, SemanticResult
from gt_widget.sources import SourceItem
from gt_widget.widget.initial import decode
from gt_widget.widget.session_options import SessionError, SessionOptions

InitialLabels = ImportedLabels | str | os.PathLike[str]
"""What ``LabelingSession(initial_labels=...)`` takes."""

Planned = dict[int, tuple[np.ndarray, list[Instance] | None]]
"""Image index -> (map, instances in instance mode else None), ready for the store."""


def as_imported(initial: InitialLabels) -> ImportedLabels:
    """``initial`` as ``ImportedLabels`` (a job folder is read with ``ImportedLabels.from_job``)."""
    if isinstance(initial, ImportedLabels):
        return initial
    if isinstance(initial, (str, os.PathLike)):
        try:
            return ImportedLabels.from_job(initial)
        except GtWidgetError as exc:
            raise SessionError(f"initial_labels: {exc}") from None
    raise SessionError(
        f"initial_labels must be what import_coco / import_yolo / import_masks return, or the job folder "
        f"`gt-widget import` wrote; got {type(initial).__name__}"
    )


def _used_labels(result: SemanticResult | InstanceResult) -> list[str]:
    if isinstance(result, InstanceResult):
        return [i.label for i in result.instances]
    values = [int(v) for v in np.unique(result.label_map) if v]
    return [result.labels[v - 1] if v <= len(result.labels) else f"<value {v}>" for v in values]


def _local_key(ref: str) -> str | None:
    if "://" in ref:
        return None
    try:
        return str(Path(ref).expanduser().resolve())
    except OSError:
        return None


def match_images(imported: ImportedLabels, items: Sequence[SourceItem]) -> dict[int, int]:
    """Imported image position -> session image index; ``SessionError`` naming the images the session lacks."""
    by_ref: dict[str, int] = {}
    by_name: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        for ref in (item.ref, item.source_ref, _local_key(item.ref)):
            if ref is not None:
                by_ref.setdefault(ref, i)
        by_name.setdefault(item.name, []).append(i)
    out: dict[int, int] = {}
    missing: list[str] = []
    for k, image in enumerate(imported.images):
        ref = image.source_ref
        index = by_ref.get(ref)
        if index is None:
            local = _local_key(ref)
            index = by_ref.get(local) if local is not None else None
        if index is None:
            named = by_name.get(ref.rstrip("/").rsplit("/", 1)[-1], [])
            index = named[0] if len(named) == 1 else None
        if index is None:
            missing.append(ref)
        else:
            out[k] = index
    if missing:
        raise SessionError(
            f"{len(missing)} imported image(s) are not in this session (matched by path, else by a unique file "
            f"name): {missing[:5]}. Pass a source that holds them, or import only this session's images"
        )
    taken: dict[int, int] = {}
    for k, index in out.items():
        if index in taken:
            raise SessionError(
                f"imported images {imported.images[taken[index]].source_ref!r} and {imported.images[k].source_ref!r} "
                f"both match session image {index + 1} ({items[index].name}); keep one of them"
            )
        taken[index] = k
    return out


def plan_import(
    imported: ImportedLabels,
    items: Sequence[SourceItem],
    options: SessionOptions,
    image_size: Callable[[SourceItem], tuple[int, int]],
) -> Planned:
    """Every imported result as the session's map, by image index (module doc for what is refused).
    ``image_size(item)`` is (H, W) of the session's image."""
    bad = sorted({n for img in imported.images for n in _used_labels(img.result) if n not in options.labels})
    if bad:
        raise SessionError(
            f"the imported labels use {bad}, which are not among this session's labels {options.labels}; "
            "add them to labels= (or rename them in the imported data)"
        )
    matches = match_images(imported, items)
    sizes: list[str] = []
    planned: Planned = {}
    for k, index in matches.items():
        result = imported.images[k].result
        shape = result.instance_map.shape if isinstance(result, InstanceResult) else result.label_map.shape
        h, w = image_size(items[index])
        if (int(shape[0]), int(shape[1])) != (h, w):
            sizes.append(f"{items[index].name}: labels {shape[1]}x{shape[0]}, image {w}x{h}")
            continue
        try:
            index_map, instances = decode(result, options.labels, options.mode, (h, w))  # type: ignore[arg-type]
        except GtWidgetError as exc:
            raise SessionError(f"imported labels of {items[index].name}: {exc}") from None
        planned[index] = (np.ascontiguousarray(index_map, np.uint8), instances if options.mode == "instance" else None)
    if sizes:
        raise SessionError(
            f"{len(sizes)} imported label map(s) differ in size from their image ({'; '.join(sizes[:5])}): they "
            "belong to other images or to resized copies; import labels made on these files"
        )
    return planned
