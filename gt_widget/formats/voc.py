"""Pascal VOC-style segmentation folders: index PNGs with VOC's colour palette.

Layout (VOC2012's, as CVAT and torchvision's ``VOCSegmentation`` read it)::

    <out>/JPEGImages/<stem>.<ext>            copies of the images (when local files)
    <out>/SegmentationClass/<stem>.png        8-bit "P" PNG: value = label index (1-based), 0 = background
    <out>/SegmentationObject/<stem>.png       instance mode: value = instance id (1-based), 0 = none
    <out>/ImageSets/Segmentation/default.txt  the stems
    <out>/labelmap.txt                        CVAT's "name:r,g,b::" per value, background first

The palette is VOC's own (``voc_colormap``); VOC's 255 "void" border is not written (we know every pixel).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gt_widget.fileio import atomic_write_bytes
from gt_widget.formats.common import collect_labels, copy_image, unique_stems
from gt_widget.formats.job import read_job_output
from gt_widget.groundtruth.formats import encode_png
from gt_widget.palette import rgb_to_hex


def voc_colormap(n: int = 256) -> list[tuple[int, int, int]]:
    """VOC's palette: the bits of the index spread over the high bits of R, G and B in turn."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def export_voc(
    job_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    copy_images: bool = True,
) -> Path:
    """Write the job's output as a VOC-style folder (module doc); returns ``out_dir``."""
    images = list(read_job_output(job_dir))
    names = collect_labels(images, labels)
    root = Path(out_dir)
    palette = [rgb_to_hex(c) for c in voc_colormap()]
    stems = unique_stems(i.source_ref for i in images)
    for img, stem in zip(images, stems, strict=True):
        atomic_write_bytes(
            root / "SegmentationClass" / f"{stem}.png", encode_png(img.label_map(names), palette=palette)
        )
        if img.instances is not None:
            atomic_write_bytes(root / "SegmentationObject" / f"{stem}.png", encode_png(img.index_map, palette=palette))
        if copy_images:
            copy_image(img.source_ref, root / "JPEGImages", stem)
    atomic_write_bytes(root / "ImageSets" / "Segmentation" / "default.txt", "".join(s + "\n" for s in stems).encode())
    cmap = voc_colormap(len(names) + 1)
    legend = [f"{name}:{','.join(str(v) for v in cmap[i])}::" for i, name in enumerate(["background", *names])]
    atomic_write_bytes(root / "labelmap.txt", ("# label:color_rgb:parts:actions\n" + "\n".join(legend) + "\n").encode())
    return root


def read_labelmap(path: str | os.PathLike[str]) -> list[str]:
    """Label names of a ``labelmap.txt`` (value order, background dropped)."""
    names = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.startswith("#"):
            names.append(raw.split(":", 1)[0])
    return names[1:] if names and names[0].lower() in ("background", "_background_") else names


def index_png(path: str | os.PathLike[str]) -> np.ndarray:
    """uint8 (H, W) values of an index PNG ("P" or "L"); ``FormatError`` for colour PNGs."""
    from PIL import Image

    from gt_widget.errors import FormatError

    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise FormatError(
                    f"{path} is a {im.mode} PNG; masks must be index PNGs (mode P or L, value = label index)"
                )
            return np.asarray(im, dtype=np.uint8).copy()
    except OSError as exc:
        raise FormatError(f"cannot read mask {path}: {exc}") from None
