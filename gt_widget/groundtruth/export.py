"""Exports of a labeling job's saved Ground Truth output: COCO JSON with RLE masks, and plain PNG masks.

One job: read what a session (or a real Ground Truth job) wrote under ``<output_dir>/<job_name>/`` (through
``groundtruth.output``: consolidated PNGs for semantic jobs, worker responses for instance jobs; reference
§1.6, §3.2, §8) and write it in the formats training code
expects. Exports work from the files alone, so they run after the kernel is gone (``gt-widget export``).

Conventions: masks are bool (H, W); label maps uint8 (H, W), 0 = BACKGROUND, i = i-th class of the line's
``internal-color-map``. COCO RLE is our own encoder: runs over the mask in column-major (Fortran) order,
starting with a run of zeros (possibly empty), ``{"size": [H, W], "counts": [...]}``; the compressed
``counts`` string uses COCO's 6-bit, delta-coded variable-length encoding (see ``rle_to_string``).

Choices: semantic mode gives one COCO annotation per (image, label) present, instance mode one per instance;
both with ``iscrowd`` 0 (COCO's "stuff" annotations also use RLE with iscrowd 0); category ids are 1-based in
label order, so ``category_id`` equals the label-map value. Images not labeled yet (output lines without a
label attribute) are not in the exports.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gt_widget.errors import FormatError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import Instance, InstanceResult, encode_png
from gt_widget.groundtruth.output import read_job_output as read_output

# ------------------------------------------------------------------------------------------------ RLE


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE of a bool (H, W) mask: ``{"size": [H, W], "counts": [zeros, ones, zeros, ...]}``."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise FormatError(f"a mask must be 2-D (H, W), got shape {m.shape}")
    flat = m.astype(bool).ravel(order="F")
    if flat.size == 0:
        return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": [0]}
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": [int(r) for r in runs]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Bool (H, W) mask of a COCO RLE (``counts`` as a list or as COCO's compressed string)."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts_raw = rle["counts"]
    except (KeyError, TypeError, ValueError):
        raise FormatError("an RLE needs 'size': [H, W] and 'counts'") from None
    counts = rle_from_string(counts_raw) if isinstance(counts_raw, (str, bytes)) else [int(c) for c in counts_raw]
    if sum(counts) != h * w or any(c < 0 for c in counts):
        raise FormatError(f"RLE counts sum to {sum(counts)}, but the mask has {h}x{w} = {h * w} pixels")
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((w, h)).T.copy()


def rle_to_string(counts: Sequence[int]) -> str:
    """COCO's compressed ``counts`` string (as pycocotools' ``rleToString``).

    Each count from the third on is stored as the difference to the count two before it; every value is
    written in 5-bit groups, least significant first, as characters ``48 + group``; bit 0x20 says "more
    groups follow" and bit 0x10 of the last group carries the sign.
    """
    out: list[str] = []
    for i, count in enumerate(counts):
        x = int(count)
        if i > 2:  # sic: pycocotools deltas from index 3 on (its decoder mirrors this)
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_from_string(text: str | bytes) -> list[int]:
    """Counts list of a COCO compressed RLE string (inverse of ``rle_to_string``)."""
    s = text.decode("ascii") if isinstance(text, bytes) else text
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(s):
                raise FormatError("compressed RLE string ends in the middle of a count")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise FormatError(f"compressed RLE string has an invalid character {s[p]!r} at {p}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO ``bbox`` [x, y, width, height] of a bool mask, in pixels; [0, 0, 0, 0] when empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]


# ------------------------------------------------------------------------------------- reading outputs


@dataclass
class LabeledImage:
    """One output manifest line, decoded: ``index_map`` is uint8 (H, W) over ``classes`` (1-based: value i =
    ``classes[i - 1]``); in instance mode ``instances`` lists each instance and ``index_map`` holds instance ids."""

    source_ref: str
    index_map: np.ndarray
    classes: list[str]
    instances: list[Instance] | None = None
    line: dict[str, Any] = field(default_factory=dict)

    def label_map(self, labels: Sequence[str]) -> np.ndarray:
        """Semantic uint8 label map over ``labels`` (instances collapse to their label)."""
        lut = np.zeros(256, np.uint8)
        names = [i.label for i in self.instances] if self.instances is not None else self.classes
        for k, name in enumerate(names, start=1):
            if name not in labels:
                raise FormatError(f"class {name!r} of {self.source_ref} is not among the labels {list(labels)}")
            lut[k] = list(labels).index(name) + 1
        return lut[self.index_map]


def read_job_output(job_dir: str | os.PathLike[str]) -> Iterator[LabeledImage]:
    """Decode every labeled line of ``<job_dir>``'s output (ours or a real job's, via ``groundtruth.output``);
    lines of images not labeled yet are skipped."""
    for item in read_output(job_dir):
        result = item.result
        if result is None:
            continue
        if isinstance(result, InstanceResult):
            yield LabeledImage(item.source_ref, result.instance_map, [], list(result.instances), item.line)
        else:
            yield LabeledImage(item.source_ref, result.label_map, list(result.labels), None, item.line)


# --------------------------------------------------------------------------------------------- writing


def _collect_labels(images: Sequence[LabeledImage], labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        return list(labels)
    out: list[str] = []
    for img in images:
        names = [i.label for i in img.instances] if img.instances is not None else img.classes
        for name in names:
            if name not in out:
                out.append(name)
    return out


def export_coco(
    job_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    compressed: bool = False,
) -> Path:
    """Write a COCO instances JSON (RLE masks) of the job's output; returns the file written (atomically).

    ``labels`` fixes the category order (default: order of first appearance); ``compressed`` writes COCO's
    compressed ``counts`` strings instead of count lists.
    """
    images = list(read_job_output(job_dir))
    names = _collect_labels(images, labels)
    coco: dict[str, Any] = {
        "info": {"description": f"gt_widget export of {Path(job_dir).name}", "version": "1.0"},
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(names)],
    }
    ann_id = 1
    for image_id, img in enumerate(images, start=1):
        h, w = img.index_map.shape
        coco["images"].append(
            {
                "id": image_id,
                "file_name": img.source_ref.rsplit("/", 1)[-1],
                "height": h,
                "width": w,
                "source_ref": img.source_ref,
            }
        )
        if img.instances is not None:
            regions = [(img.index_map == k, inst.label) for k, inst in enumerate(img.instances, start=1)]
        else:
            regions = [(img.index_map == k, name) for k, name in enumerate(img.classes, start=1)]
        for mask, name in regions:
            area = int(mask.sum())
            if area == 0:
                continue
            rle = rle_encode(mask)
            if compressed:
                rle["counts"] = rle_to_string(rle["counts"])
            coco["annotations"].append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": names.index(name) + 1,
                    "segmentation": rle,
                    "area": area,
                    "bbox": mask_bbox(mask),
                    "iscrowd": 0,
                }
            )
            ann_id += 1
    target = Path(out_path)
    atomic_write_bytes(target, json.dumps(coco).encode("utf-8"))
    return target


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("_") or "x"


def export_png_masks(
    job_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, labels: Sequence[str] | None = None
) -> list[Path]:
    """Write one label-map PNG per image (8-bit, pixel value = 1-based label index, 0 = BACKGROUND, with the
    labels' colours as palette) as ``<n>_<image stem>.png``; in instance mode also one 0/255 PNG per instance,
    ``<n>_<stem>_instance<k>_<label>.png``. Also writes ``labels.json`` (value -> label). Returns the files."""
    images = list(read_job_output(job_dir))
    names = _collect_labels(images, labels)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    from gt_widget.palette import BACKGROUND_HEX, label_colors

    palette = [BACKGROUND_HEX, *label_colors(names).values()]
    written: list[Path] = []
    for n, img in enumerate(images):
        stem = f"{n:05d}_{_safe(Path(img.source_ref.rsplit('/', 1)[-1]).stem)}"
        path = root / f"{stem}.png"
        atomic_write_bytes(path, encode_png(img.label_map(names), palette=palette))
        written.append(path)
        for k, inst in enumerate(img.instances or [], start=1):
            mask = (img.index_map == k).astype(np.uint8) * 255
            ipath = root / f"{stem}_instance{k}_{_safe(inst.label)}.png"
            atomic_write_bytes(ipath, encode_png(mask))
            written.append(ipath)
    legend = {"0": "BACKGROUND", **{str(i + 1): name for i, name in enumerate(names)}}
    atomic_write_bytes(root / "labels.json", json.dumps(legend, indent=2).encode("utf-8"))
    written.append(root / "labels.json")
    return written


def read_mask_png(path: str | os.PathLike[str]) -> np.ndarray:
    """uint8 (H, W) values of a PNG written by ``export_png_masks``."""
    with Image.open(path) as img:
        return np.asarray(img, dtype=np.uint8).copy()
