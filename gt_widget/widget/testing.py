"""A tiny deterministic segmenter for tests, scripts and headless demos that must not need model weights.

``BoxSegmenter`` follows ``gt_widget.segment.base.Segmenter``: the mask of 4 extreme points is the filled box
they span (pixel centres inside ``[min x, max x] x [min y, max y]`` after rounding), its candidates are that
box shrunk by ``shrink`` pixels per side and grown by ``shrink`` pixels per side; every click then adds
(positive) or removes (negative) the disc of ``click_radius`` around it, in order. ``set_image`` can be
slowed down (``delay`` seconds) or held until ``gate`` is set, to test that clicks made while the model is
busy are queued, not dropped. It is ``Prefetchable`` (``prepare``/``get_state``/``set_state``) so prefetching can be exercised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from gt_widget.errors import PromptError
from gt_widget.imageio import ImageSource, load_image
from gt_widget.segment.base import Candidate, Prediction, validate_clicks, validate_extreme_points, validate_points


class BoxSegmenter:
    """Deterministic stand-in for a real model (see module docstring)."""

    name = "box"

    def __init__(
        self,
        *,
        delay: float = 0.0,
        gate: threading.Event | None = None,
        scores: Sequence[float] = (0.95, 0.6, 0.4),
        shrink: int = 2,
        click_radius: float = 3.0,
        predict_delay: float = 0.0,
    ) -> None:
        self.delay = delay
        self.gate = gate
        self.scores = list(scores)
        self.shrink = shrink
        self.click_radius = click_radius
        self.predict_delay = predict_delay
        self._shape: tuple[int, int] | None = None
        self._image_id = 0
        self.set_image_calls = 0
        self.prepare_calls = 0
        self.predict_calls = 0
        self.threads: set[str] = set()

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the current image, or None before ``set_image``."""
        return self._shape

    def set_image(self, image: ImageSource) -> None:
        """Remember the image size (after the optional delay / gate)."""
        self.threads.add(threading.current_thread().name)
        rgb = load_image(image)
        if self.gate is not None and not self.gate.wait(timeout=60):
            raise TimeoutError("BoxSegmenter gate was never released")
        if self.delay:
            time.sleep(self.delay)
        self._shape = (int(rgb.shape[0]), int(rgb.shape[1]))
        self._image_id += 1
        self.set_image_calls += 1

    def prepare(self, image: ImageSource) -> Any:
        """Encode another image without changing the current one (``segment.base.Prefetchable``)."""
        self.threads.add(threading.current_thread().name)
        rgb = load_image(image)
        self.prepare_calls += 1
        return ((int(rgb.shape[0]), int(rgb.shape[1])), -self.prepare_calls)

    def get_state(self) -> Any:
        """Opaque per-image state (here just the size)."""
        return (self._shape, self._image_id)

    def set_state(self, state: Any) -> None:
        """Restore a state from ``get_state``."""
        self._shape, self._image_id = state

    def _box(self, pts: np.ndarray, grow: int) -> np.ndarray:
        assert self._shape is not None
        h, w = self._shape
        x0, x1 = int(np.rint(pts[:, 0].min())) - grow, int(np.rint(pts[:, 0].max())) + grow
        y0, y1 = int(np.rint(pts[:, 1].min())) - grow, int(np.rint(pts[:, 1].max())) + grow
        m = np.zeros((h, w), bool)
        m[max(0, y0) : max(0, y1 + 1), max(0, x0) : max(0, x1 + 1)] = True
        return m

    def predict(
        self,
        extreme_points: Sequence[Sequence[float]] | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        previous: Prediction | None = None,
        box: Sequence[float] | None = None,
    ) -> Prediction:
        """Box of the points (and candidates), then the clicks' discs added / removed."""
        self.threads.add(threading.current_thread().name)
        if self._shape is None:
            raise PromptError("call set_image before predict")
        if self.predict_delay:
            time.sleep(self.predict_delay)
        self.predict_calls += 1
        h, w = self._shape
        if extreme_points is not None:
            pts = validate_extreme_points(extreme_points, self._shape)
            bases = [self._box(pts, 0), self._box(pts, -self.shrink), self._box(pts, self.shrink)]
        elif box is not None:
            b = validate_points([(box[0], box[1]), (box[2], box[3])], self._shape, "box")
            bases = [self._box(b, 0), self._box(b, -self.shrink), self._box(b, self.shrink)]
        else:
            bases = [np.zeros((h, w), bool)] * 3
        xy, positive = validate_clicks(clicks, self._shape)
        r = self.click_radius
        masks = []
        for base in bases:
            m = base.copy()
            for (cx, cy), pos in zip(xy, positive, strict=True):
                # only the disc's bounding square is computed (a full-size coordinate grid of a 99 Mpx image
                # is 1.6 GB: bench_session_memory would measure this stand-in instead of the widget)
                x0, x1 = max(0, int(np.floor(cx - r))), min(w, int(np.ceil(cx + r)) + 1)
                y0, y1 = max(0, int(np.floor(cy - r))), min(h, int(np.ceil(cy + r)) + 1)
                gy, gx = np.ogrid[y0:y1, x0:x1]
                disc = (gx - cx) ** 2 + (gy - cy) ** 2 <= r**2
                if pos:
                    m[y0:y1, x0:x1] |= disc
                else:
                    m[y0:y1, x0:x1] &= ~disc
            masks.append(m)
        cands = [Candidate(m, float(s)) for m, s in zip(masks, self.scores, strict=False)]
        best = cands[0]
        return Prediction(mask=best.mask, score=best.score, candidates=cands, state=len(xy))
