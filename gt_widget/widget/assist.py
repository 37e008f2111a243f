"""Model assistance: the segmenter, its threads, the embedding cache, prefetch and staged requests.

Knows nothing about label maps or the UI: it runs model calls and hands answers to callbacks.

Threads: interactive work (embedding the current image, auto-segment, clicks) runs FIFO on one thread
(``gt-widget-model``); background work (prefetching the next image, the refined second pass of a staged
answer) runs on a separate thread (``gt-widget-background``), so a click never queues behind an encoder
run. That split relies on the segmenter contract (``gt_widget.segment.base``): ``Prefetchable.prepare`` and
``StagedPrediction.refine`` are safe beside ``predict``. Capabilities are tested with ``isinstance``.

Generations: every ``load_image`` bumps ``gen``; an answer for an older generation is dropped.

Live preview: ``latest(job)`` is a one-job slot on the interactive thread. A newer job replaces the one
waiting (the stale one never runs), at most one runs at a time, it runs only when no interactive job waits
(a click never queues behind a preview), and the next one starts no sooner than ``PREVIEW_GAP`` or the last
run's own duration after it, so hovering keeps the model thread at most about half busy.

Hop timings: ``Trace`` (on with ``GT_WIDGET_TRACE=1``; one attribute test when off) keeps the last request's
wall-clock marks (ms since the epoch) so a benchmark can print where the time goes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from gt_widget.errors import GtWidgetError
from gt_widget.imageio import ImageSource, load_image
from gt_widget.segment import doubt
from gt_widget.segment.base import Prediction, Prefetchable, Segmenter, StagedPrediction, predict_staged
from gt_widget.widget import memory
from gt_widget.widget.state import WidgetError
from gt_widget.widget.worker import BACKGROUND, INTERACTIVE, ModelWorker

PREVIEW_GAP = 0.05
"""Seconds between the end of one preview and the start of the next, at least (and at least its duration)."""

DOUBT_MARGIN = doubt.MARGIN
"""The "other shapes available" cue: raised when the best other candidate, clearly different from the chosen
mask, scores within this margin of it (``gt_widget.segment.doubt``, calibrated on ../shared/data: fitted on
DAVIS-345 half A, precision 0.23 / recall 0.50 on half B where the old rule had 0.14 / 0.50)."""

UNSURE_SCORE: float | None = None
"""Optional extra trigger: a chosen score below this also raises the cue. Off by default, because the
calibration found a low score alone is no sign that another candidate is better."""

CACHE_SIZE = 6
"""Prefetched / visited images whose decoded pixels and model state are kept, at most; fewer when their
bytes pass ``memory.MEMORY_BUDGET_BYTES`` (the shown image's entry does not count: it is needed)."""


def message(exc: BaseException) -> str:
    """A one-line description of ``exc`` for the status line."""
    return str(exc) if isinstance(exc, GtWidgetError) else f"{type(exc).__name__}: {exc}"


def model_doubts(pred: Prediction, unsure_score: float | None = UNSURE_SCORE, margin: float = DOUBT_MARGIN) -> bool:
    """Is another shape likely better? The calibrated rule of ``gt_widget.segment.doubt`` applied to the best
    candidate other than the chosen mask (or, when ``unsure_score`` is set, a chosen score below it)."""
    if unsure_score is not None and pred.score < unsure_score:
        return True
    others = [c for c in pred.candidates if c.mask is not pred.mask]
    if not others:
        return False
    runner_up = max(others, key=lambda c: c.score)
    chosen, other = np.asarray(pred.mask, bool), np.asarray(runner_up.mask, bool)
    union = int(np.count_nonzero(chosen | other))
    overlap = int(np.count_nonzero(chosen & other)) / union if union else 1.0
    return doubt.doubt_rule(float(pred.score), float(runner_up.score), overlap, margin=margin)


def precision_of(seg: Segmenter | None) -> str | None:
    """The numeric precision a segmenter computes in ("bf16", "fp32"), when it says (``precision``)."""
    value = getattr(seg, "precision", None)
    return value if isinstance(value, str) and value else None


class Trace:
    """Per-hop wall-clock marks of the latest requests (ms since the epoch), for benchmarks.

    Off unless ``GT_WIDGET_TRACE=1``: then ``mark`` costs one attribute test. ``begin(kind)`` opens a record
    (a 4th click "auto", a hover "preview"), ``mark(record, hop)`` stamps a hop, ``done`` keeps the record in a
    ring buffer of ``size`` and hands it to ``on_record`` (the widget sends it to the browser).

    Marks of a 4th click: ``received`` (pointer event in the kernel), ``queued``, ``dequeued`` (its job starts
    on the model thread), ``model_start`` / ``model_end`` (the model run whose answer it applies: its own, or
    the preview's it commits, which the pointer's last move started and which may begin before ``queued``),
    ``applied``, ``sent`` (overlay message handed to the comm), ``after``."""

    def __init__(self, enabled: bool | None = None, size: int = 64) -> None:
        self.on = os.environ.get("GT_WIDGET_TRACE", "") == "1" if enabled is None else enabled
        self.records: deque[dict[str, Any]] = deque(maxlen=size)
        self.on_record: Callable[[dict[str, Any]], None] | None = None
        self.received: float | None = None
        """When the kernel received the latest pointer event (set by the screen)."""

    @staticmethod
    def now() -> float:
        return time.time() * 1000.0

    def begin(self, kind: str) -> dict[str, Any] | None:
        if not self.on:
            return None
        rec: dict[str, Any] = {"kind": kind, "received": self.received, "queued": self.now()}
        return rec

    def mark(self, rec: dict[str, Any] | None, hop: str) -> None:
        if rec is not None:
            rec[hop] = self.now()

    def done(self, rec: dict[str, Any] | None) -> None:
        if rec is None:
            return
        self.records.append(rec)
        if self.on_record is not None:
            with contextlib.suppress(Exception):  # a closed comm must not break the request
                self.on_record(rec)


class Cached:
    """A visited or prefetched image: decoded pixels and (Prefetchable segmenters) its model state."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.model_state: Any = None


def path_key(image: ImageSource) -> str | None:
    """Cache key of an image file (path, mtime, size), None for in-memory images."""
    if isinstance(image, (str, os.PathLike)):
        p = Path(image)
        try:
            st = p.stat()
        except OSError:
            return None
        return f"path:{p.resolve()}:{st.st_mtime_ns}:{st.st_size}"
    return None


def content_key(rgb: np.ndarray) -> str:
    """Cache key of decoded pixels."""
    return "rgb:" + hashlib.blake2b(rgb.data, digest_size=16).hexdigest() + f":{rgb.shape}"


class Assist:
    """Runs the segmenter for the current image (see module docstring).

    ``on_busy(bool)``: interactive work started / finished. ``on_note(text)``: what the model does now.
    ``on_status(text)``: a message for the user. ``on_refining(bool)``: a refined pass runs / ended.
    """

    def __init__(
        self,
        segmenter: Segmenter | None,
        on_busy: Callable[[bool], None],
        on_note: Callable[[str], None],
        on_status: Callable[[str], None],
        on_refining: Callable[[bool], None],
    ) -> None:
        if segmenter is not None and not callable(getattr(segmenter, "predict", None)):
            raise WidgetError("segmenter must follow gt_widget.segment.base.Segmenter (set_image and predict)")
        self.segmenter = segmenter
        self._error: str | None = None
        self._on_note, self._on_status, self._on_refining = on_note, on_status, on_refining
        self.worker = ModelWorker(on_busy=on_busy)
        # no idle thread (and OpenMP team) beside the model thread's between background jobs: worker.py
        self.background = ModelWorker(name="gt-widget-background", linger_s=0.0)
        self.cache: OrderedDict[str, Cached] = OrderedDict()
        self._cache_lock = threading.Lock()  # the model and background threads both remember entries
        self.gen = 0
        self._embedded_gen = -1
        self._rgb: np.ndarray | None = None
        self._refine_token: object | None = None
        self.trace = Trace()
        self._slot_lock = threading.Lock()
        self._slot: Callable[[], Any] | None = None
        self._slot_armed = False
        self._slot_next = 0.0

    # ------------------------------------------------------------------ images

    def decode(self, image: ImageSource) -> tuple[np.ndarray, Cached | None, list[str]]:
        """(rgb, cache entry or None, cache keys) for ``image``, reusing a prefetched decode."""
        pkey = path_key(image)
        cached = self.cache.get(pkey) if pkey else None
        rgb = cached.rgb if cached is not None else load_image(image)
        ckey = content_key(rgb)
        if cached is None:
            cached = self.cache.get(ckey)
        return rgb, cached, [k for k in (pkey, ckey) if k]

    def start_image(self, rgb: np.ndarray, entry: Cached | None, keys: list[str]) -> int:
        """Make ``rgb`` the current image and embed it on the model thread; returns its generation."""
        self.gen += 1
        gen = self.gen
        self._rgb = rgb
        self._refine_token = None
        self._on_note("computing the image embedding")
        self.worker.submit(lambda: self._embed(gen, rgb, entry, keys), INTERACTIVE)
        return gen

    def ensure_segmenter(self) -> Segmenter:
        """The segmenter, loading the default one lazily (model thread)."""
        if self.segmenter is not None:
            return self.segmenter
        if self._error is not None:
            raise WidgetError(self._error)
        try:
            from gt_widget.segment import load_segmenter

            self._on_note("loading the segmentation model")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.segmenter = load_segmenter()
            for w in caught:  # e.g. "MobileSAM unavailable, using GrabCut": the user must see it
                self._on_status(f"⚠ {w.message}")
        except Exception as exc:
            self._error = (
                f"no segmentation model: {message(exc)}. Brush, eraser, polygon and fill still work; pass "
                "segmenter=... or fix the model to use auto-segment"
            )
            raise WidgetError(self._error) from None
        return self.segmenter

    def _embed(self, gen: int, rgb: np.ndarray, entry: Cached | None, keys: list[str]) -> None:
        """Model thread: make the segmenter ready for image ``gen`` (restoring a prefetched state if any)."""
        if gen != self.gen:
            return  # another image was loaded meanwhile
        try:
            seg = self.ensure_segmenter()
            self._on_note("computing the image embedding")
            if isinstance(seg, Prefetchable) and entry is not None and entry.model_state is not None:
                seg.set_state(entry.model_state)
            else:
                seg.set_image(rgb)
                if isinstance(seg, Prefetchable):
                    done = entry or Cached(rgb)
                    done.model_state = seg.get_state()
                    for k in keys:
                        self._remember(k, done)
            self._embedded_gen = gen
            if gen == self.gen:
                self._on_note("")
        except Exception as exc:
            if gen == self.gen:
                self._on_status(f"⚠ {message(exc)}")
            raise

    def ready(self, gen: int) -> Segmenter:
        """Model thread: the segmenter, embedded for image ``gen`` (retrying a failed embedding)."""
        seg = self.ensure_segmenter()
        if self._embedded_gen != gen and self._rgb is not None:
            self._embed(gen, self._rgb, None, [])
        self._on_note("segmenting")
        return seg

    @property
    def embedded(self) -> bool:
        """Whether the current image's embedding is ready."""
        return self._embedded_gen == self.gen

    def _remember(self, key: str, entry: Cached) -> None:
        """Cache ``entry`` under ``key`` (an entry has a path key and a content key), then evict whole entries,
        oldest first, while there are more than ``CACHE_SIZE`` or the ones other than the shown image hold
        more than ``memory.MEMORY_BUDGET_BYTES`` (pixels and model state, ``memory.nbytes``)."""
        with self._cache_lock:
            self.cache[key] = entry
            self.cache.move_to_end(key)
            while True:
                entries = list({id(e): e for e in self.cache.values()}.values())  # oldest first, each once
                shown = self._rgb
                others = [e for e in entries if e.rgb is not shown]
                if len(entries) <= CACHE_SIZE and memory.nbytes(*others) <= memory.MEMORY_BUDGET_BYTES:
                    return
                victim = others[0] if others else entries[0]
                for k in [k for k, e in self.cache.items() if e is victim]:
                    del self.cache[k]

    def prefetch(self, image: ImageSource) -> None:
        """Decode ``image`` and, for a ``Prefetchable`` segmenter, encode it, on the background thread."""
        pkey = path_key(image)

        def job() -> None:
            rgb = load_image(image)
            ckey = content_key(rgb)
            if (pkey and pkey in self.cache) or ckey in self.cache:
                return
            entry = Cached(rgb)
            try:
                seg: Segmenter | None = self.ensure_segmenter()
            except WidgetError:
                seg = None
            if isinstance(seg, Prefetchable):
                entry.model_state = seg.prepare(rgb)  # encodes without touching the current image
            for k in (pkey, ckey):
                if k:
                    self._remember(k, entry)

        self.background.submit(job, BACKGROUND)

    # ------------------------------------------------------------------ requests

    def submit(self, job: Callable[[], Any]) -> Future[Any]:
        """Queue an interactive job (FIFO on the model thread)."""
        return self.worker.submit(job, INTERACTIVE)

    def latest(self, job: Callable[[], Any]) -> None:
        """Put ``job`` in the latest-only slot (see module docstring); a job already waiting is dropped."""
        with self._slot_lock:
            self._slot = job
            if self._slot_armed:
                return
            self._slot_armed = True
            delay = self._slot_next - time.monotonic()
        self._arm(delay)

    def drop_latest(self) -> None:
        """Forget the job waiting in the slot (one already running finishes)."""
        with self._slot_lock:
            self._slot = None

    def _arm(self, delay: float) -> None:
        if delay > 0:
            timer = threading.Timer(delay, lambda: self.worker.submit(self._run_latest, BACKGROUND))
            timer.daemon = True
            timer.start()
        else:
            self.worker.submit(self._run_latest, BACKGROUND)

    def _run_latest(self) -> None:
        with self._slot_lock:
            job, self._slot = self._slot, None
        t0 = time.monotonic()
        try:
            if job is not None:
                job()
        finally:
            end = time.monotonic()
            with self._slot_lock:
                self._slot_next = end + (max(PREVIEW_GAP, end - t0) if job is not None else 0.0)
                again = self._slot is not None
                self._slot_armed = again
                delay = self._slot_next - end
            if again:
                self._arm(delay)

    @property
    def latest_pending(self) -> bool:
        """Whether a slot job waits or runs (tests and benchmarks wait on it)."""
        with self._slot_lock:
            return self._slot_armed

    def staged(self, gen: int, **prompt: Any) -> StagedPrediction:
        """Model thread: a staged prediction for image ``gen`` (see ``segment.base.predict_staged``)."""
        return predict_staged(self.ready(gen), **prompt)

    def refine_later(
        self, gen: int, refine: Callable[[], Prediction], apply: Callable[[Prediction], bool]
    ) -> Future[Any]:
        """Run ``refine`` on the background thread, then ``apply`` its answer unless the image changed or
        ``keep_first`` was called meanwhile (the future's result: whether it was applied). The "refining…"
        mark is on while it runs."""
        token = object()
        self._refine_token = token
        self._on_refining(True)

        def job() -> bool:
            try:
                if self._refine_token is not token or gen != self.gen:
                    return False
                pred = refine()
                return self._refine_token is token and gen == self.gen and apply(pred)
            finally:
                if self._refine_token is token:
                    self._refine_token = None
                    self._on_refining(False)

        return self.background.submit(job, INTERACTIVE)

    @property
    def refining(self) -> bool:
        """Whether a refined pass is pending or running."""
        return self._refine_token is not None

    def keep_first(self) -> bool:
        """Drop the pending refined pass (the user keeps the first answer); True if there was one."""
        if self._refine_token is None:
            return False
        self._refine_token = None
        self._on_refining(False)
        return True

    # ------------------------------------------------------------------ lifecycle

    @property
    def busy(self) -> bool:
        """Interactive work queued or running."""
        return self.worker.busy

    def on_model_thread(self) -> bool:
        """Whether the caller runs on one of the model threads."""
        return self.worker.on_worker_thread() or self.background.on_worker_thread()

    def wait_idle(self, timeout: float | None) -> bool:
        """Block until both threads are idle (a refined pass may queue more interactive work: loop)."""
        if self.on_model_thread():
            raise WidgetError(
                "wait_idle was called on the model thread (from an observe_changes callback), where it would "
                "wait for itself; call it from the notebook instead"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.latest_pending:  # a preview waits for its timer or runs
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        for _ in range(4):
            if not (self.worker.wait_idle(timeout) and self.background.wait_idle(timeout)):
                return False
            if self.worker.idle and self.background.idle:
                return True
        return self.worker.idle and self.background.idle

    def close(self) -> None:
        """Stop both threads."""
        self.worker.close()
        self.background.close()
