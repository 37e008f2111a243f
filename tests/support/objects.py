"""Benchmark objects for tests: a GrabCut image with its ground truth, and the evaluation protocol's
extreme points and IoU. One implementation of the protocol exists (benchmarks/protocol.py); tests use it
through these wrappers so they measure what the benchmarks measure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import protocol


def extreme_points(mask: np.ndarray) -> list[tuple[float, float]]:
    """The protocol's top-, bottom-, left-, right-most points (ties: median pixel) as (x, y) tuples."""
    return [(float(x), float(y)) for x, y in protocol.extreme_points(mask)]


def iou(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """The protocol's IoU of bool masks, void pixels ignored."""
    return float(protocol.iou(pred, gt, void))


@dataclass
class GrabCutObject:
    """One GrabCut-50 object: image file, bool (H, W) ground truth and void band, protocol extreme points."""

    image: Path
    gt: np.ndarray
    void: np.ndarray

    @property
    def points(self) -> list[tuple[float, float]]:
        return extreme_points(self.gt)


def load_grabcut_object(grabcut_dir: Path, image_id: str) -> GrabCutObject:
    """``../shared/data/grabcut`` object ``image_id`` (e.g. "elefant"); void is all False where none exists."""
    gt = np.asarray(Image.open(grabcut_dir / "masks" / f"{image_id}.png")) > 127
    void_path = grabcut_dir / "void" / f"{image_id}.png"
    void = np.asarray(Image.open(void_path)) > 127 if void_path.exists() else np.zeros_like(gt)
    image = next((grabcut_dir / "images").glob(f"{image_id}.*"))
    return GrabCutObject(image, gt, void)
