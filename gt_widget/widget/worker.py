"""Background model work: one thread runs every segmenter call, in order, off the kernel's main thread.

Why one thread: a segmenter is not thread-safe (gt_widget.segment.base), and a click made while the image
embedding is still being computed must wait for it, then run. Jobs therefore run FIFO, so nothing the user
does while the model is busy is dropped; prefetching the next image's embedding runs only when no
interactive job waits (lower priority), and is never counted as "busy" for the current image.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

INTERACTIVE = 0
"""Image loads, auto-segments, clicks: FIFO among themselves."""
BACKGROUND = 1
"""Prefetching the next image: only when nothing interactive waits."""


class ModelWorker:
    """A single daemon thread with a two-level priority queue of jobs; ``on_busy(bool)`` reports changes.

    The thread ends after ``linger_s`` seconds without a job (a later ``submit`` starts a new one). Every
    thread that runs torch keeps its own OpenMP thread team; while more of those exist than the machine has
    cores, libgomp's workers stop spinning between parallel regions and sleep, and each of the decoder's
    ~300 regions then pays a wake-up (a 34 ms ``predict`` takes ~43 ms, ~58 ms after a pause, with one idle
    team beside it). A worker that only runs occasional background work therefore passes ``linger_s=0``:
    its team goes with its thread as soon as its queue is empty."""

    def __init__(
        self, on_busy: Callable[[bool], None] | None = None, name: str = "gt-widget-model", linger_s: float = 30.0
    ) -> None:
        self._on_busy = on_busy
        self._name = name
        self._linger_s = float(linger_s)
        self._cv = threading.Condition()
        self._queue: list[tuple[int, int, Callable[[], Any], Future[Any]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._running_priority: int | None = None
        self._closed = False
        self._busy = False
        self._report_lock = threading.Lock()

    def submit(self, fn: Callable[[], Any], priority: int = INTERACTIVE) -> Future[Any]:
        """Queue ``fn``; its result (or exception) arrives in the returned future."""
        fut: Future[Any] = Future()
        with self._cv:
            if self._closed:
                fut.set_exception(RuntimeError("the widget was closed"))
                return fut
            heapq.heappush(self._queue, (priority, next(self._seq), fn, fut))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cv.notify_all()
        self._report()
        return fut

    def on_worker_thread(self) -> bool:
        """Whether the caller runs on the model thread (inside a job or a callback it triggered)."""
        return threading.current_thread() is self._thread

    @property
    def busy(self) -> bool:
        """Whether interactive work (image embedding, predictions) is queued or running."""
        with self._cv:
            return self._running_priority == INTERACTIVE or any(p == INTERACTIVE for p, *_ in self._queue)

    @property
    def idle(self) -> bool:
        """Whether no job at all (prefetch included) is queued or running."""
        with self._cv:
            return self._running_priority is None and not self._queue

    def wait_idle(self, timeout: float | None = 60.0) -> bool:
        """Block until every queued job (prefetch included) has finished; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: self._running_priority is None and not self._queue, timeout)

    def close(self) -> None:
        """Cancel queued jobs and let the thread end after its current job."""
        with self._cv:
            self._closed = True
            pending, self._queue = self._queue, []
            self._cv.notify_all()
        for *_, fut in pending:
            fut.cancel()

    def _report(self) -> None:
        with self._report_lock:
            busy = self.busy
            if busy == self._busy:
                return
            self._busy = busy
            if self._on_busy is not None:
                with contextlib.suppress(Exception):  # a UI callback must never kill the worker
                    self._on_busy(busy)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    if self._linger_s > 0:
                        self._cv.wait(timeout=self._linger_s)
                    if not self._queue:
                        # idle for a while: end the thread (a later submit starts a new one)
                        if not self._closed:
                            self._thread = None
                        return
                if self._closed and not self._queue:
                    return
                priority, _, fn, fut = heapq.heappop(self._queue)
                self._running_priority = priority
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:
                    fut.set_exception(exc)
            with self._cv:
                self._running_priority = None
                self._cv.notify_all()
            self._report()
