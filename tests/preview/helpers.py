"""Helpers of the preview tests (and benchmarks/bench_preview.py): the benchmark protocol's extreme points,
IoU, and pointer actions that hit exact image pixels ((x, y) pixels of the original image, (0, 0) the centre
of the top-left pixel)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.support.objects import extreme_points, iou

__all__ = ["ImagePointer", "corrective_click", "extreme_points", "iou"]


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
