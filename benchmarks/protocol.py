"""The evaluation protocol of ../shared/data/README.md, shared by every quality benchmark.

- extreme points: top-, bottom-, left-, right-most foreground pixels of the GT mask; ties are broken by
  the median of the tied pixels (the middle one of the sorted tied coordinates, so the point is a real
  foreground pixel);
- jittered variant: each coordinate moved by a seeded uniform offset in [-5, 5] px, clipped to the image;
- IoU per object with void pixels ignored;
- NoC@85 / NoC@90: after the first mask, click the interior-most pixel (largest distance-transform value)
  of the largest error region, positive for a miss and negative for a false alarm; the count includes the
  4 extreme points; capped at 20 (an object that never reaches the threshold counts 20).

The protocol's core (extreme points, jitter, seeds, IoU, the corrective click, the NoC loop) lives in
gt_widget/evaluate.py, so ``gt-widget evaluate`` on a user's labels computes exactly what the benchmarks
do; it is re-exported here under the same names. This module keeps the data sets. Data sets are read in
place from ../shared/data (never copied).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gt_widget.evaluate import (
    JITTER_PX,
    MAX_CLICKS,
    ClickTrace,
    click_trace,
    extreme_points,
    iou,
    jitter,
    next_click,
    sample_seed,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GT_WIDGET_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
__all__ = [
    "DATA",
    "JITTER_PX",
    "MAX_CLICKS",
    "ClickTrace",
    "Sample",
    "click_trace",
    "extreme_points",
    "instance_areas",
    "iou",
    "iter_loaded",
    "jitter",
    "load_instances",
    "load_set",
    "next_click",
    "sample_seed",
]


@dataclass
class Sample:
    """One evaluation object: its image, GT mask and void mask (paths), and the object's id."""

    set_name: str
    id: str
    image_path: Path
    mask_path: Path
    void_path: Path | None

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(RGB uint8 image, bool GT mask, bool void mask)."""
        from gt_widget.imageio import load_image

        image = load_image(self.image_path)
        gt = np.asarray(Image.open(self.mask_path).convert("L")) > 127
        if self.void_path is not None and self.void_path.exists():
            void = np.asarray(Image.open(self.void_path).convert("L")) > 127
        else:
            void = np.zeros_like(gt)
        return image, gt, void


def load_set(name: str, limit: int | None = None) -> list[Sample]:
    """Samples of ``grabcut`` or ``davis345`` (union masks), in manifest order."""
    root = DATA / name
    manifest = root / "manifest.csv"
    if not manifest.exists():
        raise FileNotFoundError(f"benchmark set {name!r} not found at {root}; set GT_WIDGET_SHARED")
    out: list[Sample] = []
    with manifest.open(newline="") as fh:
        for row in csv.DictReader(fh):
            void = root / row["void"] if row.get("void") else None
            out.append(Sample(name, row["id"], root / row["image"], root / row["mask"], void))
    return out[:limit] if limit else out


def instance_areas(name: str = "davis345") -> dict[str, float]:
    """Frame id -> foreground fraction of its smallest instance (for the small-object analysis)."""
    root = DATA / name
    out: dict[str, float] = {}
    with (root / "manifest.csv").open(newline="") as fh:
        sizes = {r["id"]: int(r["width"]) * int(r["height"]) for r in csv.DictReader(fh)}
    with (root / "instances.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            frac = int(r["fg_pixels"]) / sizes[r["frame"]]
            out[r["frame"]] = min(out.get(r["frame"], 1.0), frac)
    return out


def load_instances(name: str = "davis345", max_area: float = 1.0) -> list[Sample]:
    """Per-object samples (``instances.csv``) whose mask covers under ``max_area`` of the frame."""
    root = DATA / name
    with (root / "manifest.csv").open(newline="") as fh:
        sizes = {r["id"]: int(r["width"]) * int(r["height"]) for r in csv.DictReader(fh)}
    out: list[Sample] = []
    with (root / "instances.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            if int(r["fg_pixels"]) / sizes[r["frame"]] < max_area:
                out.append(Sample(name, r["id"], root / r["image"], root / r["mask"], None))
    return out


def iter_loaded(samples: list[Sample]) -> Iterator[tuple[Sample, np.ndarray, np.ndarray, np.ndarray]]:
    """Each sample with its loaded (image, gt, void)."""
    for s in samples:
        image, gt, void = s.load()
        yield s, image, gt, void
