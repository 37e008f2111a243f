"""The evaluation protocol of ../shared/data/README.md, shared by every quality benchmark.

- extreme points: top-, bottom-, left-, right-most foreground pixels of the GT mask; ties are broken by
  the median of the tied pixels (the middle one of the sorted tied coordinates, so the point is a real
  foreground pixel);
- jittered variant: each coordinate moved by a seeded uniform offset in [-5, 5] px, clipped to the image;
- IoU per object with void pixels ignored;
- NoC@85 / NoC@90: after the first mask, click the interior-most pixel (largest distance-transform value)
  of the largest error region, positive for a miss and negative for a false alarm; the count includes the
  4 extreme points; capped at 20 (an object that never reaches the threshold counts 20).

Data sets are read in place from ../shared/data (never copied).

Halves of DAVIS-345 (tune on one, report on the other): the frames of one DAVIS sequence are contiguous
in the set (000-344), but their sequence names are lost (README.txt). The set is cut into 16 contiguous
blocks at fixed frame indices (``DAVIS_BLOCKS``): each cut was put at the largest change of the image
(mean absolute difference of 32x18 thumbnails) within 6 frames of the even cut k*345/16, i.e. at a
sequence boundary; even blocks form half A (174 frames), odd blocks half B (171 frames). The split is
fixed here and never re-derived.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GT_WIDGET_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"
JITTER_PX = 5.0
MAX_CLICKS = 20
DAVIS_BLOCKS = (0, 16, 47, 69, 85, 107, 129, 155, 172, 193, 213, 238, 261, 283, 304, 324, 345)
"""Frame indices where DAVIS-345's 16 contiguous blocks start (the last is the end); see the module doc."""
HALVES = ("A", "B")


def davis_half(frame: str | int) -> str:
    """``"A"`` or ``"B"``: the DAVIS-345 half of a frame (``"042"`` or 42; instance ids like
    ``"042_obj1"`` work too)."""
    idx = int(str(frame).split("_", 1)[0])
    if not DAVIS_BLOCKS[0] <= idx < DAVIS_BLOCKS[-1]:
        raise ValueError(f"DAVIS-345 frame index must be in [0, {DAVIS_BLOCKS[-1] - 1}], got {frame!r}")
    block = sum(1 for start in DAVIS_BLOCKS[1:-1] if idx >= start)
    return HALVES[block % 2]


def select_half(samples: list[Sample], half: str | None) -> list[Sample]:
    """The samples of one DAVIS-345 half (other sets are not split: returned whole); None = all."""
    if half is None:
        return samples
    if half not in HALVES:
        raise ValueError(f"half must be 'A' or 'B', got {half!r}")
    return [s for s in samples if s.set_name != "davis345" or davis_half(s.id) == half]


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


def _median_tie(values: np.ndarray) -> float:
    v = np.sort(values)
    return float(v[(len(v) - 1) // 2])


def extreme_points(mask: np.ndarray) -> np.ndarray:
    """(4, 2) float (x, y): top, bottom, left, right-most foreground pixels, ties -> median pixel."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError("empty mask has no extreme points")
    top_y, bot_y, left_x, right_x = ys.min(), ys.max(), xs.min(), xs.max()
    return np.array(
        [
            [_median_tie(xs[ys == top_y]), top_y],
            [_median_tie(xs[ys == bot_y]), bot_y],
            [left_x, _median_tie(ys[xs == left_x])],
            [right_x, _median_tie(ys[xs == right_x])],
        ],
        np.float64,
    )


def jitter(points: np.ndarray, shape: tuple[int, int], seed: int) -> np.ndarray:
    """``points`` moved by uniform [-5, 5] px per coordinate (seeded), clipped into the (H, W) image."""
    rng = np.random.default_rng(seed)
    out = points + rng.uniform(-JITTER_PX, JITTER_PX, size=points.shape)
    h, w = shape
    out[:, 0] = np.clip(out[:, 0], 0, w - 1)
    out[:, 1] = np.clip(out[:, 1], 0, h - 1)
    return out


def sample_seed(set_name: str, sample_id: str) -> int:
    """A stable per-object seed (independent of Python's hash randomisation)."""
    return int.from_bytes(f"{set_name}/{sample_id}".encode(), "little") % (2**32)


def iou(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """IoU of bool masks, void pixels ignored; 1.0 when both are empty."""
    valid = ~void if void is not None else np.ones_like(gt)
    inter = np.count_nonzero(pred & gt & valid)
    union = np.count_nonzero((pred | gt) & valid)
    return 1.0 if union == 0 else inter / union


def next_click(pred: np.ndarray, gt: np.ndarray, void: np.ndarray) -> tuple[float, float, bool] | None:
    """The protocol's corrective click: interior-most pixel of the largest error region, or None."""
    valid = ~void
    fn = gt & ~pred & valid
    fp = pred & ~gt & valid
    best: tuple[int, np.ndarray, bool] | None = None
    for err, positive in ((fn, True), (fp, False)):
        if not err.any():
            continue
        _n, labels, stats, _ = cv2.connectedComponentsWithStats(err.astype(np.uint8), connectivity=8)
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[k, cv2.CC_STAT_AREA])
        if best is None or area > best[0]:
            best = (area, labels == k, positive)
    if best is None:
        return None
    region = np.pad(best[1], 1).astype(np.uint8)  # the image border counts as the region's edge
    dt = cv2.distanceTransform(region, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
    return float(x), float(y), best[2]


@dataclass
class ClickTrace:
    """IoU after 4 extreme points (index 0) and after each corrective click (index k = k clicks)."""

    ious: list[float]

    def noc(self, threshold: float) -> int:
        """Clicks (counting the 4 extreme points) to reach ``threshold``; MAX_CLICKS if never."""
        for k, v in enumerate(self.ious):
            if v >= threshold:
                return 4 + k
        return MAX_CLICKS


def click_trace(
    predict: Callable[[list[tuple[float, float, bool]], Any], tuple[np.ndarray, Any]],
    first: np.ndarray,
    first_state: Any,
    gt: np.ndarray,
    void: np.ndarray,
    stop_at: float = 0.90,
) -> ClickTrace:
    """Run the NoC loop. ``predict(clicks, previous_state) -> (mask, state)``; stops at ``stop_at`` or cap."""
    ious = [iou(first, gt, void)]
    clicks: list[tuple[float, float, bool]] = []
    mask, state = first, first_state
    while ious[-1] < stop_at and 4 + len(clicks) < MAX_CLICKS:
        click = next_click(mask, gt, void)
        if click is None:
            break
        clicks.append(click)
        mask, state = predict(list(clicks), state)
        ious.append(iou(mask, gt, void))
    return ClickTrace(ious)


def iter_loaded(samples: list[Sample]) -> Iterator[tuple[Sample, np.ndarray, np.ndarray, np.ndarray]]:
    """Each sample with its loaded (image, gt, void)."""
    for s in samples:
        image, gt, void = s.load()
        yield s, image, gt, void
