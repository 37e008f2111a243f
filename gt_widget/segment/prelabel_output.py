"""Writing machine-made label maps as a Ground Truth job folder: the one place where proposals pre-labels
and ``resegment`` call the output-format writers (the layout itself: gt_widget.groundtruth.formats; it
moves to gt_widget.groundtruth.output, after which only this module changes).

Layout (as gt_widget.segment.batch writes it): ``<out_dir>/<job_name>/masks/<index>_<stem>.png`` (the
index map), ``annotations/consolidated-annotation/output/<index>_<ts>.png`` (palette PNG) and
``manifests/output/output.manifest`` with ``human-annotated: "no"``. Instance mode: the index map holds
instance ids, the manifest line lists ``instances`` (gt_widget.groundtruth.formats, §3.2 choice).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import (
    Instance,
    consolidated_png,
    consolidated_png_key,
    encode_png,
    output_manifest_line,
)
from gt_widget.palette import label_colors


@dataclass
class MachineLabel:
    """One image's machine-made result: uint8 (H, W) ``index_map`` (label index, or instance id when
    ``instances`` is given), the image's ``source_ref`` and 0-based ``index``, a ``confidence``."""

    source_ref: str
    index: int
    index_map: np.ndarray
    instances: list[Instance] | None = None
    confidence: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def write_job(
    out_dir: str | os.PathLike[str],
    job_name: str,
    labels: Sequence[str],
    results: Sequence[MachineLabel],
    *,
    label_attribute: str = "label-ref",
) -> Path:
    """Write ``results`` as the job folder ``<out_dir>/<job_name>`` (module doc); returns its path."""
    job_dir = Path(out_dir) / job_name
    colors = list(label_colors(list(labels)).values())
    lines: list[dict[str, Any]] = []
    for r in results:
        stem = Path(r.source_ref).stem or "image"
        atomic_write_bytes(job_dir / "masks" / f"{r.index:05d}_{stem}.png", encode_png(r.index_map))
        png_path = Path(out_dir) / consolidated_png_key(job_name, r.index)
        pal = colors if r.instances is None else [i.color for i in r.instances]
        atomic_write_bytes(png_path, consolidated_png(r.index_map, pal))
        lines.append(
            output_manifest_line(
                r.source_ref,
                label_attribute,
                str(png_path.resolve()),
                labels,
                job_name=job_name,
                mode="semantic" if r.instances is None else "instance",
                instances=r.instances,
                colors=colors,
                confidence=round(float(r.confidence), 4),
                human_annotated=False,
                extra=r.extra,
            )
        )
    manifest = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    atomic_write_bytes(job_dir / "manifests" / "output" / "output.manifest", manifest.encode())
    return job_dir
