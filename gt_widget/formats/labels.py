"""Imported labels: what every importer returns, usable as a widget's ``initial_value`` or written as a
Ground Truth output folder (the layout a pre-labeling run writes; ``gt-widget export`` and adjustment jobs
read it).

Conventions: semantic results are ``SemanticResult`` (uint8 (H, W) label map, 0 = BACKGROUND, i =
``labels[i - 1]``); instance results are ``InstanceResult`` (uint8 instance map, k = ``instances[k - 1]``,
each instance its own colour from ``gt_widget.palette``). Images are named by the path they were found at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from gt_widget.errors import FormatError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import (
    Instance,
    InstanceResult,
    SemanticResult,
    consolidated_png,
    consolidated_png_key,
    output_manifest_line,
)
from gt_widget.groundtruth.labels import check_labels
from gt_widget.palette import PALETTE, label_colors

Mode = Literal["semantic", "instance"]


@dataclass
class ImportedImage:
    """One image's imported labels: the image's path (``source_ref``) and its result."""

    source_ref: str
    result: SemanticResult | InstanceResult


@dataclass
class ImportedLabels:
    """All imported images, over one label list, in one mode."""

    labels: list[str]
    mode: Mode
    images: list[ImportedImage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = check_labels(self.labels)

    @classmethod
    def from_job(cls, job_dir: str | os.PathLike[str]) -> ImportedLabels:
        """The labels of a Ground Truth output folder (``write_job``'s, i.e. ``gt-widget import``'s, or any job's):
        every labeled line, over the labels in order of appearance; instance mode when the lines are instance
        results. ``FormatError`` when the folder has no output manifest or mixes modes."""
        from gt_widget.groundtruth.export import read_job_output

        folder = Path(job_dir)
        if not (folder / "manifests" / "output" / "output.manifest").is_file():
            raise FormatError(
                f"{folder} is not a job folder (no manifests/output/output.manifest); pass the folder "
                "`gt-widget import --out OUT --job-name NAME` wrote, OUT/NAME"
            )
        images: list[ImportedImage] = []
        labels: list[str] = []
        modes: set[str] = set()
        for item in read_job_output(folder):
            result: SemanticResult | InstanceResult
            if item.instances is not None:
                result = InstanceResult(item.index_map, list(item.instances))
                names = [i.label for i in item.instances]
                modes.add("instance")
            else:
                result = SemanticResult(item.index_map, list(item.classes))
                names = list(item.classes)
                modes.add("semantic")
            labels += [n for n in names if n not in labels]
            images.append(ImportedImage(item.source_ref, result))
        if len(modes) > 1:
            raise FormatError(f"{folder} mixes semantic and instance results; import one mode at a time")
        if not images:
            raise FormatError(f"{folder} has no labeled image to import")
        mode: Mode = "instance" if modes == {"instance"} else "semantic"
        return cls(labels, mode, images)

    def initial_value(self, image: str | os.PathLike[str]) -> SemanticResult | InstanceResult:
        """The result for ``image`` (its path, or a file name when unambiguous), to pass as
        ``SegmentationWidget(image, labels, mode=..., initial_value=...)``."""
        key = str(image)
        for item in self.images:
            if item.source_ref == key:
                return item.result
        named = [i for i in self.images if Path(i.source_ref).name == Path(key).name]
        if len(named) == 1:
            return named[0].result
        raise FormatError(f"no imported labels for {key!r}; imported: {[i.source_ref for i in self.images][:5]}...")

    def write_job(
        self,
        out_dir: str | os.PathLike[str],
        *,
        job_name: str = "gt-widget-import",
        label_attribute: str = "label-ref",
    ) -> Path:
        """Write ``<out_dir>/<job_name>/`` in Ground Truth's output layout (consolidated PNGs and an
        ``output.manifest`` with ``human-annotated: "no"``); returns the job folder."""
        out = Path(out_dir)
        colors = list(label_colors(self.labels).values())
        lines = []
        for index, item in enumerate(self.images):
            png_path = out / consolidated_png_key(job_name, index)
            if isinstance(item.result, InstanceResult):
                insts = item.result.instances
                atomic_write_bytes(png_path, consolidated_png(item.result.instance_map, [i.color for i in insts]))
                line = output_manifest_line(
                    item.source_ref,
                    label_attribute,
                    str(png_path.resolve()),
                    self.labels,
                    job_name=job_name,
                    mode="instance",
                    instances=insts,
                    human_annotated=False,
                )
            else:
                label_map = remap(item.result, self.labels)
                atomic_write_bytes(png_path, consolidated_png(label_map, colors))
                line = output_manifest_line(
                    item.source_ref,
                    label_attribute,
                    str(png_path.resolve()),
                    self.labels,
                    job_name=job_name,
                    colors=colors,
                    human_annotated=False,
                )
            lines.append(json.dumps(line, separators=(",", ":")) + "\n")
        job_dir = out / job_name
        atomic_write_bytes(job_dir / "manifests" / "output" / "output.manifest", "".join(lines).encode("utf-8"))
        return job_dir


def remap(result: SemanticResult, labels: Sequence[str]) -> np.ndarray:
    """The result's label map re-indexed onto ``labels`` by name."""
    lut = np.zeros(256, np.uint8)
    for i, name in enumerate(result.labels):
        if name not in labels:
            raise FormatError(f"label {name!r} is not among {list(labels)}")
        lut[i + 1] = list(labels).index(name) + 1
    return lut[result.label_map]


def build_result(
    masks: Sequence[tuple[np.ndarray, str]], shape: tuple[int, int], labels: Sequence[str], mode: Mode
) -> SemanticResult | InstanceResult:
    """Paint (bool mask, label) objects in order (a later object wins where two overlap) into a result."""
    if len(masks) > 255:
        raise FormatError(f"{len(masks)} objects in one image; Ground Truth's 8-bit PNG holds at most 255")
    index = np.zeros(shape, np.uint8)
    if mode == "instance":
        instances = []
        for k, (mask, name) in enumerate(masks, start=1):
            index[mask] = k
            instances.append(Instance(name, PALETTE[k - 1]))
        return InstanceResult(index, instances)
    for mask, name in masks:
        index[mask] = list(labels).index(name) + 1
    return SemanticResult(index, list(labels), label_colors(labels))


def object_masks(result: SemanticResult | InstanceResult, labels: Sequence[str]) -> list[tuple[np.ndarray, str]]:
    """(bool mask, label) per object: one per instance, or one per label present (semantic)."""
    if isinstance(result, InstanceResult):
        return [(result.instance_map == k, inst.label) for k, inst in enumerate(result.instances, start=1)]
    label_map = remap(result, labels)
    return [(label_map == i + 1, name) for i, name in enumerate(labels) if (label_map == i + 1).any()]
