"""The kernel-side segmenter behind the preview's ``/api/segment`` and ``/api/segment/refined``.

Two stages, as the widget: ``segment(request)`` answers at once with the segmenter's fast first mask
(``gt_widget.segment.base.predict_staged``) and, when a refined mask is coming, a ``refine`` id; the refinement
runs on one background thread; ``refined({"refine": id})`` waits for it (long poll) and answers the refined mask,
or ``{"stale": true}`` when a newer request superseded it (the page then keeps what it has).

Conventions: (x, y) pixels of the original image; masks travel as row-major run lengths starting with a run of
0s (``mask_to_rle``; js/src/rle.js decodes them). A request with the previous request's points and its clicks
plus more is a corrective click: the previous prediction (the refined one once it arrived) is passed as
``previous``. Interactive ``predict`` calls are serialised by one lock; ``refine`` runs outside it (the
``StagedPrediction`` contract: the segmenter keeps that safe), except that a switch to another image waits
for a running refinement (and cancels queued ones) first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from gt_widget.preview.images import ImageStore, PreviewError
from gt_widget.segment.base import Prediction, Segmenter, predict_staged

REFINE_WAIT_S = 60.0
"""Longest a ``/api/segment/refined`` request waits before answering ``{"pending": true}`` (the page asks again)."""
_KEEP_JOBS = 16


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """Row-major run lengths of a bool (H, W) mask, alternating, starting with a (maybe empty) run of 0s."""
    flat = np.asarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return [0]
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    return [0, *runs] if flat[0] else runs


def rle_to_mask(counts: list[int], height: int, width: int) -> np.ndarray:
    """Inverse of ``mask_to_rle``: bool (H, W)."""
    if sum(counts) != height * width:
        raise ValueError(f"runs cover {sum(counts)} pixels, the mask has {height}x{width}")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(height, width)


class SegmentService:
    """Answers auto-segment requests: the fast first mask now, the refined one later (see the module doc)."""

    def __init__(self, images: ImageStore, segmenter: Segmenter | str | None = None) -> None:
        self._images = images
        self._spec = segmenter
        self._segmenter: Segmenter | None = segmenter if not isinstance(segmenter, (str, type(None))) else None
        self._current: str | None = None
        # the last request and its prediction: a follow-up with the same points and more clicks refines it
        self._last: tuple[str, Any, list[Any], Prediction] | None = None
        self._lock = threading.Lock()  # one interactive predict / set_image at a time; requests queue on it
        self._state = threading.Lock()  # guards _generation, _last, _jobs (never held while computing)
        self._generation = 0  # bumped by every request: older refinements become stale
        self._jobs: dict[int, Future[dict[str, Any] | None]] = {}
        self._refiner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gt-preview-refine")

    @property
    def segmenter(self) -> Segmenter:
        """The segmenter, loading it on first use (MobileSAM, else GrabCut; see ``load_segmenter``)."""
        if self._segmenter is None:
            from gt_widget.segment import load_segmenter

            self._segmenter = load_segmenter(self._spec if isinstance(self._spec, str) else None)
        return self._segmenter

    @property
    def last_prediction(self) -> Prediction | None:
        """The prediction behind the last mask sent (the refined one once the page received it)."""
        return self._last[3] if self._last is not None else None

    def close(self) -> None:
        """Drop pending refinements and stop the background thread, waiting for a running one (idempotent):
        the segmenter may be handed to another preview or widget afterwards."""
        self._refiner.shutdown(wait=True, cancel_futures=True)

    def segment(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one ``/api/segment`` request with the first mask (and ``refine``: an id, or None if final)."""
        src = request.get("src")
        points = request.get("points")
        clicks = request.get("clicks") or []
        if not isinstance(src, str) or not isinstance(points, list) or not isinstance(clicks, list):
            raise PreviewError(
                'auto-segment request needs {"src": image URL, "points": [[x, y], ...4], "clicks": [...]}'
            )
        _check_prompt(points, clicks)
        token = self._images.token_of_url(src)
        image = self._images.image(token)
        h, w = image.shape[:2]
        with self._lock:
            with self._state:
                self._generation += 1
                generation = self._generation
                pending = list(self._jobs.values())
            seg = self.segmenter
            t0 = time.perf_counter()
            if self._current != token:
                # another image: no refinement of the old one may run while the segmenter switches images
                for job in pending:
                    job.cancel()
                wait(pending)
                self._current = None
                seg.set_image(image)
                self._current = token
            t1 = time.perf_counter()
            previous = None
            with self._state:
                last = self._last
            if last is not None:
                last_token, last_points, last_clicks, last_pred = last
                if last_token == token and last_points == points and clicks[: len(last_clicks)] == last_clicks:
                    previous = last_pred if clicks else None
            staged = predict_staged(seg, extreme_points=points, clicks=[tuple(c) for c in clicks], previous=previous)
            t2 = time.perf_counter()
            name = str(getattr(seg, "name", type(seg).__name__))
            with self._state:
                self._last = (token, points, list(clicks), staged.first)
                if staged.refine is not None:
                    # queued while the segmenter lock is held: a later switch of image sees it in _jobs
                    self._jobs[generation] = self._refiner.submit(
                        self._refine_job, staged.refine, generation, (token, points, list(clicks)), h, w, name
                    )
                    for old in sorted(self._jobs)[:-_KEEP_JOBS]:
                        self._jobs.pop(old).cancel()
        answer = _answer(staged.first, h, w, name)
        answer.update(set_image_s=round(t1 - t0, 4), predict_s=round(t2 - t1, 4))
        answer["refine"] = generation if staged.refine is not None else None
        return answer

    def _refine_job(
        self,
        refine: Callable[[], Prediction],
        generation: int,
        key: tuple[str, Any, list[Any]],
        h: int,
        w: int,
        name: str,
    ) -> dict[str, Any] | None:
        """Run on the background thread: the refined answer, or None when a newer request superseded it."""
        if generation != self._generation:
            return None  # superseded before it started
        r0 = time.perf_counter()
        pred = refine()
        out = _answer(pred, h, w, name)
        out["refine_s"] = round(time.perf_counter() - r0, 4)
        with self._state:
            if generation != self._generation:
                return None
            self._last = (*key, pred)
        return out

    def refined(self, request: dict[str, Any], timeout: float = REFINE_WAIT_S) -> dict[str, Any]:
        """Answer ``/api/segment/refined``: the refined mask, ``{"stale": true}`` or ``{"pending": true}``."""
        job_id = request.get("refine")
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            raise PreviewError('a refined-mask request needs {"refine": the id the first answer gave}')
        with self._state:
            job = self._jobs.get(job_id)
        if job is None:
            return {"stale": True}
        try:
            result = job.result(timeout=timeout)
        except FutureTimeout:
            return {"pending": True}
        except CancelledError:
            return {"stale": True}
        return {"stale": True} if result is None else result


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_prompt(points: list[Any], clicks: list[Any]) -> None:
    """JSON shapes of a request's prompt (the segmenter checks the values against the image)."""
    if len(points) != 4 or not all(isinstance(p, list) and len(p) == 2 and all(map(_is_number, p)) for p in points):
        raise PreviewError(
            f"auto-segment needs exactly 4 extreme points [[x, y], ...] in pixels; got {len(points)} items"
        )
    for i, c in enumerate(clicks):
        if not (
            isinstance(c, list) and len(c) == 3 and _is_number(c[0]) and _is_number(c[1]) and isinstance(c[2], bool)
        ):
            raise PreviewError(
                f"click {i} must be [x, y, true|false] (true: part of the object); check the page's script"
            )


def _answer(pred: Prediction, h: int, w: int, name: str) -> dict[str, Any]:
    mask = np.asarray(pred.mask, dtype=bool)
    if mask.shape != (h, w):
        raise PreviewError(f"the segmenter returned a {mask.shape} mask for a {h}x{w} image")
    return {"width": w, "height": h, "counts": mask_to_rle(mask), "score": float(pred.score), "segmenter": name}
