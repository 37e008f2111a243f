"""YOLO segmentation datasets (Ultralytics' layout), exported from a job's output and imported as labels.

Export layout (docs.ultralytics.com/datasets/segment/)::

    <out>/data.yaml             path, train/val = images, names {0: ..., 1: ...}
    <out>/images/<stem>.<ext>   copies of the images (when they are local files)
    <out>/labels/<stem>.txt     one line per object: <class> x1 y1 x2 y2 ... (normalised)

Objects: each instance (instance mode), or each 8-connected region of a label (semantic mode), is one line,
holes and parts joined as ``gt_widget.formats.polygons`` explains. Class indices are 0-based in label
order (YOLO's rule), i.e. Ground Truth's label-map value minus one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from gt_widget.errors import FormatError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.formats.common import collect_labels, copy_image, objects_of, unique_stems
from gt_widget.formats.job import read_job_output
from gt_widget.formats.labels import ImportedImage, ImportedLabels, Mode, build_result
from gt_widget.formats.polygons import format_line, mask_to_polygon, parse_line, polygon_to_mask
from gt_widget.imageio import load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def mask_lines(mask: np.ndarray, class_index: int, *, split_regions: bool) -> list[str]:
    """Label-file lines of one object (``split_regions``: one line per 8-connected region instead)."""
    if not split_regions:
        coords = mask_to_polygon(mask)
        return [format_line(class_index, coords)] if coords else []
    count, regions = cv2.connectedComponents(np.asarray(mask, np.uint8), connectivity=8)
    return [line for r in range(1, count) for line in mask_lines(regions == r, class_index, split_regions=False)]


def export_yolo(
    job_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    copy_images: bool = True,
) -> Path:
    """Write a YOLO segmentation dataset of the job's output (module doc); returns ``data.yaml``'s path."""
    images = list(read_job_output(job_dir))
    names = collect_labels(images, labels)
    root = Path(out_dir)
    for img, stem in zip(images, unique_stems(i.source_ref for i in images), strict=True):
        lines: list[str] = []
        for value, name in objects_of(img):
            if name not in names:
                raise FormatError(f"label {name!r} of {img.source_ref} is not among the labels {names}")
            mask = img.index_map == value
            lines += mask_lines(mask, names.index(name), split_regions=img.instances is None)
        atomic_write_bytes(root / "labels" / f"{stem}.txt", "".join(x + "\n" for x in lines).encode("utf-8"))
        if copy_images:
            copy_image(img.source_ref, root / "images", stem)
    yaml_text = (
        f"# YOLO segmentation dataset written by gt_widget from {Path(job_dir).name}\n"
        f"path: {json.dumps(str(root.resolve()))}\ntrain: images\nval: images\nnames:\n"
        + "".join(f"  {i}: {json.dumps(name)}\n" for i, name in enumerate(names))
    )
    atomic_write_bytes(root / "data.yaml", yaml_text.encode("utf-8"))
    return root / "data.yaml"


def read_names(data_yaml: str | os.PathLike[str]) -> list[str]:
    """Class names of a YOLO ``data.yaml`` (``names`` as a list or an index -> name mapping)."""
    import yaml

    try:
        data = yaml.safe_load(Path(data_yaml).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FormatError(f"cannot read {str(data_yaml)!r}: {exc}") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise FormatError(f"{str(data_yaml)!r} has no 'names' list or mapping")


def import_yolo(
    dataset: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    mode: Mode = "instance",
) -> ImportedLabels:
    """Labels of a YOLO segmentation dataset: ``dataset`` holds ``images/`` and ``labels/`` (and
    ``data.yaml`` unless ``names`` is given). Every line becomes an instance (``mode="semantic"``: painted
    by class, later lines on top), read by Ultralytics' rule (``polygon_to_mask``, no resampling)."""
    root = Path(dataset)
    if names is None:
        yaml_path = root / "data.yaml"
        if not yaml_path.is_file():
            raise FormatError(f"no data.yaml in {str(root)!r}: pass names=[...] (class 0 first)")
        names = read_names(yaml_path)
    names = list(names)
    image_dir, label_dir = root / "images", root / "labels"
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise FormatError(f"{str(root)!r} needs images/ and labels/ folders (Ultralytics' layout)")
    result = ImportedLabels(names, mode)
    for path in sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        txt = label_dir / path.relative_to(image_dir).with_suffix(".txt")
        if not txt.is_file():
            continue  # an image without a label file has no objects; nothing to pre-label
        h, w = load_image(path).shape[:2]
        objects = []
        for n, raw in enumerate(txt.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            cls, coords = parse_line(raw, f"{txt}:{n}")
            if not 0 <= cls < len(names):
                raise FormatError(f"{txt}:{n}: class {cls} is outside the {len(names)} names {names}")
            objects.append((polygon_to_mask(coords, (h, w)), names[cls]))
        result.images.append(ImportedImage(str(path), build_result(objects, (h, w), names, mode)))
    if not result.images:
        raise FormatError(f"no image in {str(image_dir)!r} has a label file in {str(label_dir)!r}")
    return result
