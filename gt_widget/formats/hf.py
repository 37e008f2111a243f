"""A job's output as a Hugging Face ``datasets.Dataset`` (``pip install 'gt_widget[formats]'``).

Columns: ``image`` (``Image``, the original file's bytes; None when not a local file), ``source_ref``
(string), ``mask`` (``Image``, the uint8 semantic label map), ``instance_mask`` (``Image``, uint8 instance
ids; None in semantic mode) and ``instance_labels`` (a sequence of ``ClassLabel``, the label of instance
k at position k - 1). One ``ClassLabel`` names the values: ``["BACKGROUND", *labels]``, so mask value v is
``names[v]`` (``dataset.features["instance_labels"].feature.names``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gt_widget.errors import FormatError
from gt_widget.formats.common import collect_labels, local_image
from gt_widget.formats.job import read_job_output
from gt_widget.groundtruth.formats import encode_png


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise FormatError("the Hugging Face export needs datasets: pip install 'gt_widget[formats]'") from None
    return datasets


def export_hf(
    job_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    labels: Sequence[str] | None = None,
) -> Any:
    """The job's output as a ``datasets.Dataset`` (module doc); saved with ``save_to_disk`` when ``out_dir``."""
    ds_mod = _datasets()
    images = list(read_job_output(job_dir))
    names = collect_labels(images, labels)
    class_label = ds_mod.ClassLabel(names=["BACKGROUND", *names])
    features = ds_mod.Features(
        {
            "image": ds_mod.Image(),
            "source_ref": ds_mod.Value("string"),
            "mask": ds_mod.Image(),
            "instance_mask": ds_mod.Image(),
            "instance_labels": ds_mod.Sequence(class_label),
        }
    )
    rows: dict[str, list[Any]] = {k: [] for k in features}
    for img in images:
        src = local_image(img.source_ref)
        rows["image"].append({"bytes": src.read_bytes(), "path": src.name} if src is not None else None)
        rows["source_ref"].append(img.source_ref)
        rows["mask"].append({"bytes": encode_png(img.label_map(names)), "path": None})
        if img.instances is not None:
            rows["instance_mask"].append({"bytes": encode_png(img.index_map), "path": None})
            rows["instance_labels"].append([names.index(i.label) + 1 for i in img.instances])
        else:
            rows["instance_mask"].append(None)
            rows["instance_labels"].append([])
    dataset = ds_mod.Dataset.from_dict(rows, features=features)
    if out_dir is not None:
        dataset.save_to_disk(str(Path(out_dir)))
    return dataset
