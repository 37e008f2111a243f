"""The model worker's thread lifetime: a background worker leaves no idle thread (and OpenMP team) behind."""

from __future__ import annotations

import threading
import time

import numpy as np

from gt_widget.widget.assist import Assist
from gt_widget.widget.worker import BACKGROUND, ModelWorker


def _alive(name: str) -> bool:
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def _gone_within(name: str, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(name):
            return True
        time.sleep(0.01)
    return not _alive(name)


def test_worker_without_linger_ends_its_thread_when_the_queue_is_empty() -> None:
    worker = ModelWorker(name="gtw-test-no-linger", linger_s=0.0)
    try:
        assert worker.submit(lambda: 41 + 1).result(timeout=5) == 42
        assert _gone_within("gtw-test-no-linger", 2.0)
        # a later job starts a new thread and runs normally
        assert worker.submit(lambda: "again", BACKGROUND).result(timeout=5) == "again"
        assert _gone_within("gtw-test-no-linger", 2.0)
    finally:
        worker.close()


def test_worker_with_linger_keeps_its_thread_for_the_next_job() -> None:
    worker = ModelWorker(name="gtw-test-linger", linger_s=30.0)
    try:
        first = worker.submit(threading.get_ident).result(timeout=5)
        time.sleep(0.2)
        assert _alive("gtw-test-linger")
        assert worker.submit(threading.get_ident).result(timeout=5) == first  # same thread, same torch team
    finally:
        worker.close()


def test_queued_jobs_all_run_before_a_no_linger_thread_ends() -> None:
    worker = ModelWorker(name="gtw-test-burst", linger_s=0.0)
    gate = threading.Event()
    try:
        futs = [worker.submit(gate.wait)] + [worker.submit(lambda i=i: i) for i in range(5)]
        gate.set()
        assert [f.result(timeout=5) for f in futs[1:]] == list(range(5))
    finally:
        worker.close()


def test_the_widgets_background_thread_ends_after_its_work() -> None:
    """Prefetching leaves no ``gt-widget-background`` thread: its idle OpenMP team would make libgomp's
    workers sleep between the model thread's parallel regions (the decoder's predict ~1.5x slower)."""

    def ignore(_value: object) -> None:
        return None

    assist = Assist(None, ignore, ignore, ignore, ignore)
    try:
        assert assist.background.submit(lambda: np.zeros(3).sum(), BACKGROUND).result(timeout=5) == 0
        assert _gone_within("gt-widget-background", 2.0)
    finally:
        assist.close()
