"""Helpers of the preview tests (and benchmarks/bench_preview.py): the benchmark protocol's extreme points,
IoU, and pointer actions that hit exact image pixels ((x, y) pixels of the original image, (0, 0) the centre
of the top-left pixel)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from gt_widget.segment.base import Prediction, StagedPrediction, validate_clicks, validate_extreme_points
from tests.support.objects import extreme_points, iou

__all__ = ["ImagePointer", "TwoStageSegmenter", "corrective_click", "extreme_points", "iou"]


def corrective_click(pred: np.ndarray, gt: np.ndarray) -> tuple[tuple[int, int], bool]:
    """The protocol's next corrective click (interior-most pixel of the largest error region)."""
    from benchmarks.protocol import next_click

    click = next_click(pred, gt, np.zeros_like(gt))
    assert click is not None, "the mask is already perfect: no corrective click to make"
    return (int(click[0]), int(click[1])), bool(click[2])


class ImagePointer:
    """Pointer actions on the ``canvas.ui`` of a segmentation element, in image pixels."""

    def __init__(self, page: Any, tag: str) -> None:
        self.page = page
        self.tag = tag

    def _geometry(self) -> tuple[dict[str, float], int, int]:
        canvas = self.page.locator(f"{self.tag} canvas.ui")
        box = canvas.bounding_box()
        w, h = canvas.evaluate("c => [c.width, c.height]")
        return box, int(w), int(h)

    def client(self, x: float, y: float) -> tuple[float, float]:
        box, w, h = self._geometry()
        return box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h

    def click(self, x: float, y: float, button: str = "left") -> None:
        self.page.mouse.click(*self.client(x, y), button=button)

    def drag(self, points: list[tuple[float, float]], steps: int = 8) -> None:
        mouse = self.page.mouse
        mouse.move(*self.client(*points[0]))
        mouse.down()
        for p in points[1:]:
            mouse.move(*self.client(*p), steps=steps)
        mouse.up()

    def tool(self, name: str) -> None:
        self.page.locator(f'{self.tag} button[data-tool="{name}"]').click()


class TwoStageSegmenter:
    """A deterministic ``StagedSegmenter``: the first answer is the extreme points' box shrunk by ``inset``
    pixels, the refined one (after ``delay`` seconds, on the server's background thread) the full box; each
    click sets a 5x5 square to its polarity. Records every call (prompt, previous, stage)."""

    name = "two-stage"

    def __init__(self, delay: float = 1.5, inset: int = 10) -> None:
        self.delay = delay
        self.inset = inset
        self.shape: tuple[int, int] | None = None
        self.calls: list[tuple[str, list[Any]]] = []
        self.refine_started = threading.Event()

    def set_image(self, image: Any) -> None:
        self.calls.append(("set_image", []))
        self.shape = tuple(np.asarray(image).shape[:2])  # type: ignore[assignment]

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self.shape

    def _mask(self, points: Any, clicks: Any, inset: int) -> np.ndarray:
        assert self.shape is not None
        pts = validate_extreme_points(points, self.shape)
        xy, positive = validate_clicks(clicks, self.shape)
        mask = np.zeros(self.shape, bool)
        x0, y0 = np.round(pts.min(axis=0)).astype(int) + inset
        x1, y1 = np.round(pts.max(axis=0)).astype(int) - inset
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
        for (x, y), pos in zip(np.round(xy).astype(int), positive, strict=True):
            mask[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3] = pos
        return mask

    def predict(self, extreme_points: Any = None, clicks: Any = (), previous: Any = None, box: Any = None) -> Any:
        self.calls.append(("predict", [tuple(c) for c in clicks]))
        return Prediction(mask=self._mask(extreme_points, clicks, 0), score=0.9)

    def predict_staged(
        self, extreme_points: Any = None, clicks: Any = (), previous: Any = None, box: Any = None
    ) -> StagedPrediction:
        if clicks:  # corrective clicks are answered at once, as MobileSAM does
            return StagedPrediction(self.predict(extreme_points, clicks, previous, box))
        self.calls.append(("first", []))
        first = Prediction(mask=self._mask(extreme_points, (), self.inset), score=0.5)

        def refine() -> Prediction:
            self.calls.append(("refine-start", []))
            self.refine_started.set()
            time.sleep(self.delay)
            self.calls.append(("refined", []))
            return Prediction(mask=self._mask(extreme_points, (), 0), score=0.9)

        return StagedPrediction(first, refine)
