"""COCO instance-segmentation JSON -> labels (export: ``gt_widget.formats.job.export_coco``, RLE masks).

Each annotation becomes an object painted in file order: ``segmentation`` as polygons (rasterised by
pycocotools, COCO's reference implementation, ``pip install 'gt_widget[formats]'``) or as RLE (uncompressed
counts or COCO's compressed string, decoded by our pycocotools-compatible codec). Labels are the
categories in id order. Images are found under ``images`` by ``file_name`` (else by the ``source_ref`` our
export writes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gt_widget.errors import FormatError
from gt_widget.formats.job import rle_decode
from gt_widget.formats.labels import ImportedImage, ImportedLabels, Mode, build_result


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """Bool (H, W) mask of COCO polygons ([[x1, y1, x2, y2, ...], ...]), rasterised by pycocotools."""
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        raise FormatError("COCO polygons need pycocotools: pip install 'gt_widget[formats]'") from None
    rles = mask_utils.frPyObjects([list(map(float, p)) for p in polygons if len(p) >= 6], height, width)
    if not rles:
        return np.zeros((height, width), bool)
    return np.asarray(mask_utils.decode(mask_utils.merge(rles)), dtype=bool)


def segmentation_mask(seg: Any, height: int, width: int, where: str) -> np.ndarray:
    """Bool (H, W) mask of one annotation's ``segmentation`` (polygons or RLE)."""
    if isinstance(seg, list):
        return polygons_to_mask(seg, height, width)
    if isinstance(seg, Mapping):
        mask = rle_decode(dict(seg))
        if mask.shape != (height, width):
            raise FormatError(f"{where}: RLE size {list(mask.shape)} differs from the image's {[height, width]}")
        return mask
    raise FormatError(f"{where}: segmentation must be a list of polygons or an RLE object")


def import_coco(
    coco: str | os.PathLike[str] | Mapping[str, Any],
    *,
    images: str | os.PathLike[str] | None = None,
    mode: Mode = "instance",
) -> ImportedLabels:
    """Labels of a COCO JSON (module doc); ``mode="semantic"`` paints annotations by category instead."""
    if isinstance(coco, Mapping):
        data: Any = coco
        base = Path(images) if images is not None else Path.cwd()
    else:
        path = Path(coco)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise FormatError(f"cannot read COCO JSON {str(path)!r}: {exc}") from None
        base = Path(images) if images is not None else path.parent
    if not isinstance(data, Mapping) or not all(k in data for k in ("images", "annotations", "categories")):
        raise FormatError("a COCO JSON needs 'images', 'annotations' and 'categories'")
    cats = sorted(data["categories"], key=lambda c: int(c["id"]))
    names = [str(c["name"]) for c in cats]
    by_id = {int(c["id"]): str(c["name"]) for c in cats}
    anns: dict[int, list[Mapping[str, Any]]] = {}
    for ann in data["annotations"]:
        anns.setdefault(int(ann["image_id"]), []).append(ann)
    out = ImportedLabels(names, mode)
    for img in data["images"]:
        h, w = int(img["height"]), int(img["width"])
        objects = []
        for ann in anns.get(int(img["id"]), []):
            where = f"annotation {ann.get('id')} of image {img.get('file_name')}"
            if int(ann["category_id"]) not in by_id:
                raise FormatError(f"{where}: category_id {ann['category_id']} is not in 'categories'")
            objects.append((segmentation_mask(ann["segmentation"], h, w, where), by_id[int(ann["category_id"])]))
        if not objects:
            continue
        local = base / str(img["file_name"])
        ref = str(local) if local.is_file() else str(img.get("source_ref") or local)
        out.images.append(ImportedImage(ref, build_result(objects, (h, w), names, mode)))
    return out
