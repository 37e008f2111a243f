"""Helpers for the preview tests: a Chromium page that may only talk to 127.0.0.1, and pointer helpers that
hit exact image pixels ((x, y) pixels of the original image, (0, 0) the centre of the top-left pixel)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image


def extreme_points(mask: np.ndarray) -> list[tuple[float, float]]:
    """Top-, bottom-, left-, right-most pixels of a mask (ties: the median tied pixel), as (x, y)."""
    ys, xs = np.nonzero(mask)

    def pick(sel: np.ndarray, along: np.ndarray) -> float:
        vals = np.sort(along[sel])
        return float(vals[len(vals) // 2])

    top, bottom = ys.min(), ys.max()
    left, right = xs.min(), xs.max()
    return [
        (pick(ys == top, xs), float(top)),
        (pick(ys == bottom, xs), float(bottom)),
        (float(left), pick(xs == left, ys)),
        (float(right), pick(xs == right, ys)),
    ]


def iou(a: np.ndarray, b: np.ndarray, ignore: np.ndarray | None = None) -> float:
    keep = np.ones(a.shape, bool) if ignore is None else ~ignore
    inter = np.logical_and(a, b)[keep].sum()
    union = np.logical_or(a, b)[keep].sum()
    return float(inter / union) if union else 1.0


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

    def click(self, x: float, y: float) -> None:
        self.page.mouse.click(*self.client(x, y))

    def drag(self, points: list[tuple[float, float]], steps: int = 8) -> None:
        mouse = self.page.mouse
        mouse.move(*self.client(*points[0]))
        mouse.down()
        for p in points[1:]:
            mouse.move(*self.client(*p), steps=steps)
        mouse.up()

    def tool(self, name: str) -> None:
        self.page.locator(f'{self.tag} button[data-tool="{name}"]').click()


@pytest.fixture
def llama(grabcut_dir: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """(image path, bool GT mask, bool void band) of the GrabCut set's llama."""
    image = grabcut_dir / "images" / "llama.png"
    mask = np.asarray(Image.open(grabcut_dir / "masks" / "llama.png").convert("L")) > 127
    void_path = grabcut_dir / "void" / "llama.png"
    void = np.asarray(Image.open(void_path).convert("L")) > 127 if void_path.exists() else np.zeros_like(mask)
    return image, mask, void


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[[str], tuple[Any, list[str]]]]:
    """open_page(url) -> (page, outside): a 1600x1100 page; requests to anything but 127.0.0.1 are
    aborted and listed in ``outside`` (the preview must work offline). Console errors are collected too."""
    contexts: list[Any] = []

    def opener(url: str) -> tuple[Any, list[str]]:
        ctx = browser.new_context(viewport={"width": 1600, "height": 1100})
        contexts.append(ctx)
        outside: list[str] = []

        def guard(route: Any) -> None:
            outside.append(route.request.url)
            route.abort()

        # only requests that leave 127.0.0.1 are intercepted (local ones never wait for this Python thread)
        ctx.route(lambda u: not u.startswith(("http://127.0.0.1:", "data:", "blob:")), guard)
        page = ctx.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        return page, outside

    yield opener
    for ctx in contexts:
        ctx.close()
