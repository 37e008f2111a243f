"""Folders of index-PNG masks -> labels: our PNG export, a VOC-style folder, or any folder of label maps.

A mask is matched to its image by stem (``cat.png`` <-> ``images/cat.jpg``); pixel value v > 0 is label
``labels[v - 1]``. Label names come from ``labels=``, else ``labels.json`` (our PNG export) or
``labelmap.txt`` (VOC/CVAT). A VOC folder's ``SegmentationObject/`` makes instance results, each object's
label being the class most of its pixels have in ``SegmentationClass/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gt_widget.errors import FormatError
from gt_widget.formats.labels import ImportedImage, ImportedLabels, Mode, build_result
from gt_widget.formats.voc import index_png, read_labelmap

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _names(folder: Path, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        return list(labels)
    for candidate in (folder / "labels.json", folder.parent / "labels.json"):
        if candidate.is_file():
            legend = json.loads(candidate.read_text(encoding="utf-8"))
            return [str(legend[k]) for k in sorted(legend, key=int) if int(k) != 0]
    for candidate in (folder / "labelmap.txt", folder.parent / "labelmap.txt"):
        if candidate.is_file():
            return read_labelmap(candidate)
    raise FormatError(f"no label names for the masks in {str(folder)!r}: pass labels=[...] (value 1 first)")


def _find_image(images: Path | None, stem: str, fallback: Path) -> Path:
    if images is None:
        return fallback
    stems = [stem, *([stem[6:]] if re.match(r"\d{5}_", stem) else [])]  # our PNG export's "<n>_<stem>"
    for name in stems:
        for suffix in IMAGE_SUFFIXES:
            for cand in (images / f"{name}{suffix}", images / f"{name}{suffix.upper()}"):
                if cand.is_file():
                    return cand
    raise FormatError(f"no image named {stem}.* in {str(images)!r} for mask {fallback.name}")


def import_masks(
    masks: str | os.PathLike[str],
    *,
    images: str | os.PathLike[str] | None = None,
    labels: Sequence[str] | None = None,
    mode: Mode | None = None,
) -> ImportedLabels:
    """Labels from a folder of index PNGs (module doc). ``masks`` may be a VOC folder (its
    ``SegmentationClass/``, ``SegmentationObject/`` and ``JPEGImages/`` are used). ``mode`` defaults to
    instance when object masks exist, else semantic."""
    root = Path(masks)
    object_dir: Path | None = None
    if (root / "SegmentationClass").is_dir():
        if images is None and (root / "JPEGImages").is_dir():
            images = root / "JPEGImages"
        if (root / "SegmentationObject").is_dir():
            object_dir = root / "SegmentationObject"
        class_dir = root / "SegmentationClass"
    else:
        class_dir = root
    if not class_dir.is_dir():
        raise FormatError(f"{str(root)!r} is not a folder of masks")
    names = _names(root if class_dir != root else class_dir, labels)
    mode = mode or ("instance" if object_dir is not None else "semantic")
    if mode == "instance" and object_dir is None:
        raise FormatError("instance import needs object masks (a VOC folder's SegmentationObject/)")
    image_dir = Path(images) if images is not None else None
    out = ImportedLabels(names, mode)
    pngs = sorted(p for p in class_dir.glob("*.png") if "_instance" not in p.stem)
    if not pngs:
        raise FormatError(f"no PNG masks in {str(class_dir)!r}")
    for png in pngs:
        classes = index_png(png)
        if classes.size and int(classes.max()) > len(names):
            raise FormatError(f"{png} has value {int(classes.max())} but only {len(names)} labels are known")
        objects: list[tuple[np.ndarray, str]] = []
        if mode == "instance":
            assert object_dir is not None
            ids = index_png(object_dir / png.name)
            for k in [int(v) for v in np.unique(ids) if v not in (0, 255)]:
                inside = classes[ids == k]
                inside = inside[(inside > 0) & (inside <= len(names))]
                if inside.size:
                    objects.append((ids == k, names[int(np.bincount(inside).argmax()) - 1]))
        else:
            objects = [(classes == v, names[v - 1]) for v in range(1, len(names) + 1) if (classes == v).any()]
        image = _find_image(image_dir, png.stem, png)
        out.images.append(ImportedImage(str(image), build_result(objects, classes.shape, names, mode)))
    return out
