"""Helpers shared by the exporters: file names, image copies, label order."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from gt_widget.formats.job import LabeledImage

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def unique_stems(refs: Iterable[str]) -> list[str]:
    """A file-system-safe, unique stem per image (``cat``, ``cat_1``, ... when names repeat)."""
    out: list[str] = []
    seen: set[str] = set()
    for ref in refs:
        base = _UNSAFE.sub("_", Path(ref.rsplit("/", 1)[-1]).stem).strip("_") or "image"
        stem, k = base, 1
        while stem in seen:
            stem, k = f"{base}_{k}", k + 1
        seen.add(stem)
        out.append(stem)
    return out


def local_image(ref: str) -> Path | None:
    """The local file of a ``source-ref`` (path or ``file://``), or None (``s3://``, missing)."""
    if ref.startswith("s3://"):
        return None
    path = Path(ref[len("file://") :] if ref.startswith("file://") else ref)
    return path if path.is_file() else None


def copy_image(ref: str, target_dir: Path, stem: str) -> Path | None:
    """Copy the image of ``ref`` to ``target_dir/<stem><suffix>``; None when it is not a local file."""
    src = local_image(ref)
    if src is None:
        return None
    target_dir.mkdir(parents=True, exist_ok=True)
    dst = target_dir / f"{stem}{src.suffix.lower()}"
    shutil.copyfile(src, dst)
    return dst


def collect_labels(images: Sequence[LabeledImage], labels: Sequence[str] | None) -> list[str]:
    """``labels`` if given, else every class / instance label in order of first appearance."""
    if labels is not None:
        return list(labels)
    out: list[str] = []
    for img in images:
        for name in [i.label for i in img.instances] if img.instances is not None else img.classes:
            if name not in out:
                out.append(name)
    return out


def objects_of(img: LabeledImage) -> list[tuple[int, str]]:
    """(value in ``img.index_map``, label) of each instance (instance mode) or class (semantic mode)."""
    names = [i.label for i in img.instances] if img.instances is not None else img.classes
    return list(enumerate(names, start=1))
