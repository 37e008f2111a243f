"""Evaluation on your own labels: the benchmark protocol, run against any finished labels.

``gt-widget evaluate OUTPUT_DIR`` (a job folder), a COCO JSON file or a folder of mask PNGs (``--images``):
every labeled object (a semantic label's pixels, an instance, a COCO annotation) gets the protocol of
../shared/data/README.md -- its 4 extreme points, then simulated corrective clicks -- with each recipe
(``default``, ``fast``, ``fallback``: gt_widget.segment.named) and the figures the project's benchmarks
report: mIoU, NoC@85 / NoC@90 and seconds per object. ``evaluate_labels`` returns the same as a table
(a list of dicts, one per recipe) for notebooks.

The protocol core (extreme points, jitter, IoU, the corrective click, the NoC loop) lives here and
benchmarks/protocol.py imports it, so the project's figures and the user's come from one code path:
- extreme points: top-, bottom-, left-, right-most foreground pixels of the GT mask; ties are broken by
  the median of the tied pixels (the middle one of the sorted tied coordinates, so the point is a real
  foreground pixel);
- jittered variant: each coordinate moved by a seeded uniform offset in [-5, 5] px, clipped to the image;
- IoU per object with void pixels ignored;
- NoC@85 / NoC@90: after the first mask, click the interior-most pixel (largest distance-transform value)
  of the largest error region, positive for a miss and negative for a false alarm; the count includes the
  4 extreme points; capped at 20 (an object that never reaches the threshold counts 20).
Conventions: (x, y) pixels; bool (H, W) masks.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gt_widget.errors import FormatError

JITTER_PX = 5.0
MAX_CLICKS = 20


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


# ------------------------------------------------------------------------------- the user's labels


@dataclass
class LabeledObject:
    """One object of the user's labels: its image (path), bool (H, W) mask and a readable name."""

    image: str
    mask: np.ndarray
    name: str


def _objects_of_map(image: str, index_map: np.ndarray, names: Sequence[str]) -> Iterator[LabeledObject]:
    for v in np.unique(index_map).tolist():
        if v == 0:
            continue
        mask = index_map == v
        name = names[v - 1] if 0 < v <= len(names) else f"value {v}"
        yield LabeledObject(image, mask, f"{Path(image).name}: {name}")


def labeled_objects(
    source: str | os.PathLike[str], images: str | os.PathLike[str] | None = None
) -> list[LabeledObject]:
    """Every object of a job folder (semantic: one per label; instance: one per instance), a COCO JSON
    file (one per annotation; ``images`` = the folder its ``file_name`` values are relative to, default the
    file's folder) or a folder of mask PNGs (one per nonzero value; ``images`` = the folder holding the
    image of the same stem)."""
    src = Path(source)
    if src.is_dir() and (src / "manifests" / "output" / "output.manifest").is_file():
        from gt_widget.widget.export import read_job_output

        out: list[LabeledObject] = []
        for item in read_job_output(src):
            names = [i.label for i in item.instances] if item.instances is not None else item.classes
            out += _objects_of_map(item.source_ref, item.index_map, names)
        return out
    if src.is_file() and src.suffix.lower() == ".json":
        return _coco_objects(src, Path(images) if images is not None else src.parent)
    if src.is_dir():
        if images is None:
            raise FormatError(
                f"{str(src)!r} is a folder of masks, not a job folder (no manifests/output/output.manifest): "
                "pass --images FOLDER with the images of the same names"
            )
        from PIL import Image

        out = []
        for mp in sorted(src.glob("*.png")):
            found = sorted(Path(images).glob(f"{mp.stem}.*"))
            if not found:
                raise FormatError(f"no image named {mp.stem}.* in {str(images)!r} for mask {mp.name}")
            arr = np.asarray(Image.open(mp))
            if arr.ndim == 3:
                arr = arr[..., 0]
            out += _objects_of_map(str(found[0]), arr, [])
        if not out:
            raise FormatError(f"no labeled objects in the mask PNGs of {str(src)!r}")
        return out
    raise FormatError(f"{str(src)!r} is neither a job folder, a COCO JSON file nor a folder of mask PNGs")


def _coco_objects(path: Path, root: Path) -> list[LabeledObject]:
    from gt_widget.widget.export import rle_decode

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        imgs = {int(i["id"]): i for i in data["images"]}
        cats = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
        anns = list(data["annotations"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"{str(path)!r} is not a COCO JSON file with images and annotations ({exc})") from None
    out: list[LabeledObject] = []
    for a in anns:
        img = imgs.get(int(a["image_id"]))
        if img is None:
            raise FormatError(f"annotation {a.get('id')} refers to image {a['image_id']}, which the file lacks")
        h, w = int(img["height"]), int(img["width"])
        seg = a.get("segmentation")
        if isinstance(seg, dict):
            mask = rle_decode(seg)
        elif isinstance(seg, list):
            canvas = np.zeros((h, w), np.uint8)
            polys = [np.asarray(p, np.float64).reshape(-1, 2) for p in seg]
            cv2.fillPoly(canvas, [np.rint(p).astype(np.int32) for p in polys], 1)
            mask = canvas.astype(bool)
        else:
            raise FormatError(f"annotation {a.get('id')} has no RLE or polygon segmentation")
        if mask.any():
            name = cats.get(int(a.get("category_id", 0)), "object")
            out.append(LabeledObject(str(root / img["file_name"]), mask, f"{img['file_name']}: {name}"))
    return out


def evaluate_object(
    segmenter: Any, gt: np.ndarray, void: np.ndarray | None = None, *, clicks: bool = True
) -> dict[str, Any]:
    """The protocol on one object of the segmenter's current image: IoU from its extreme points and the
    NoC loop; {"iou", "noc85", "noc90", "seconds"} (seconds = the model's time for this object)."""
    v = np.zeros_like(gt) if void is None else void
    pts = extreme_points(gt)
    t = time.perf_counter()
    pred = segmenter.predict(extreme_points=pts)
    spent = time.perf_counter() - t
    row: dict[str, Any] = {"iou": iou(pred.mask, gt, v)}
    if clicks:

        def step(cl: list[tuple[float, float, bool]], prev: Any) -> tuple[np.ndarray, Any]:
            p = segmenter.predict(extreme_points=pts, clicks=cl, previous=prev)
            return p.mask, p

        t = time.perf_counter()
        trace = click_trace(step, pred.mask, pred, gt, v)
        spent += time.perf_counter() - t
        row["noc85"], row["noc90"] = trace.noc(0.85), trace.noc(0.90)
        row["trace"] = [round(x, 4) for x in trace.ious]
    row["seconds"] = spent
    return row


def evaluate_labels(
    source: str | os.PathLike[str],
    recipes: Sequence[str] = ("default", "fast", "fallback"),
    *,
    images: str | os.PathLike[str] | None = None,
    weights: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    clicks: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """The protocol on the user's labels (``labeled_objects``) for each recipe: one row per recipe with
    ``recipe``, ``objects``, ``miou``, ``noc85``, ``noc90``, ``never90_pct`` (percent), ``s_per_object``
    (model seconds per object) and ``encode_s_per_image``. A recipe that cannot load (no weights) gets
    ``error`` instead."""
    from tqdm import tqdm

    from gt_widget.errors import GtWidgetError
    from gt_widget.imageio import load_image
    from gt_widget.segment.named import load_recipe

    objects = labeled_objects(source, images)[:limit] if limit else labeled_objects(source, images)
    if not objects:
        raise FormatError(f"no labeled objects found in {str(source)!r}")
    table: list[dict[str, Any]] = []
    for name in recipes:
        try:
            seg = load_recipe(name, weights=weights)
        except GtWidgetError as exc:
            table.append({"recipe": name, "objects": 0, "error": str(exc)})
            continue
        rows: list[dict[str, Any]] = []
        encode = 0.0
        current = None
        for obj in tqdm(objects, desc=f"evaluate {name}", unit="obj", disable=not progress):
            if obj.image != current:
                t = time.perf_counter()
                seg.set_image(load_image(obj.image))
                encode += time.perf_counter() - t
                current = obj.image
            rows.append(evaluate_object(seg, obj.mask, clicks=clicks) | {"object": obj.name})
        n_images = len({o.image for o in objects})
        out: dict[str, Any] = {
            "recipe": name,
            "objects": len(rows),
            "miou": round(100 * float(np.mean([r["iou"] for r in rows])), 2),
        }
        if clicks:
            out["noc85"] = round(float(np.mean([r["noc85"] for r in rows])), 2)
            out["noc90"] = round(float(np.mean([r["noc90"] for r in rows])), 2)
            out["never90_pct"] = round(100 * sum(r["noc90"] >= MAX_CLICKS for r in rows) / len(rows), 1)
        out["s_per_object"] = round(float(np.mean([r["seconds"] for r in rows])), 3)
        out["encode_s_per_image"] = round(encode / max(n_images, 1), 3)
        out["rows"] = rows
        table.append(out)
    return table


def format_table(table: Sequence[dict[str, Any]]) -> str:
    """The table of ``evaluate_labels`` for people (one line per recipe)."""
    lines = [f"{'recipe':<10} {'objects':>7} {'mIoU':>7} {'NoC@85':>7} {'NoC@90':>7} {'never90%':>8} {'s/object':>9}"]
    for r in table:
        if "error" in r:
            lines.append(f"{r['recipe']:<10} unavailable: {r['error']}")
            continue
        lines.append(
            f"{r['recipe']:<10} {r['objects']:>7} {r['miou']:>7.2f} {r.get('noc85', float('nan')):>7.2f} "
            f"{r.get('noc90', float('nan')):>7.2f} {r.get('never90_pct', float('nan')):>8.1f} {r['s_per_object']:>9.3f}"
        )
    return "\n".join(lines)
