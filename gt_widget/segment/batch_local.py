"""The local batch engine: image decoding, model work and file writing overlap in threads.

Kernel side, no UI; ``batch.prelabel(engine="local")`` runs it. Three kinds of thread:

- one reader decodes the next images (``load_image``) into a small bounded queue, so the model never
  waits for a JPEG;
- ``workers`` model threads segment them. A segmenter that can encode several images at once
  (``ParallelSegmenter``: MobileSAM's ``prepare`` / ``predict_on``) gets one worker per core, each with one
  torch thread, all on one shared model: two single-threaded encoder runs use two cores better than one
  two-threaded run (no OpenMP barrier waits, and a busy core slows one worker instead of stalling both).
  Any other segmenter runs in one worker (``set_image`` / ``predict``);
- one writer encodes the PNGs and writes every file (atomic, fsynced), so disk waits never stall the model.

Images finish out of order; every file is named by the image's index and ``batch`` builds the manifest
from the done-records in source order, so the output is the same as processing them one by one.
Warnings: each image's ``GtWidgetWarning`` messages are collected on the thread that raised them
(``warnings.catch_warnings`` is process-wide, so the run installs one router instead).
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, runtime_checkable

import numpy as np

from gt_widget.errors import GtWidgetError, GtWidgetWarning
from gt_widget.groundtruth.formats import consolidated_png, encode_png
from gt_widget.imageio import load_image
from gt_widget.segment.base import Prediction, Segmenter

Task = tuple[int, Any, list[dict[str, Any]]]
"""(index in the source, ``batch.ImageItem``, its prompts), as ``batch.Task``."""


@runtime_checkable
class ParallelSegmenter(Protocol):
    """A segmenter whose encoder runs may overlap: ``prepare`` encodes an image into a state without
    touching the current image, ``predict_on`` segments on such a state; ``threads`` fixes torch threads."""

    threads: int | None

    def prepare(self, image: Any, *, background: bool = True, cache: bool = True) -> Any:
        """Encode ``image`` (an RGB uint8 array) into a state."""

    def predict_on(
        self, state: Any, extreme_points: Any = None, clicks: Any = (), previous: Any = None, box: Any = None
    ) -> Prediction:
        """Segment one object on ``state``."""


@dataclass
class _Done:
    """A segmented image on its way to the writer."""

    task: Task
    label_map: np.ndarray
    score: float
    warnings: tuple[str, ...]


class _WarningRouter:
    """Collects ``GtWidgetWarning`` messages per thread while installed; other warnings pass through."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Route warnings for the duration of the run (restores the warning machinery afterwards)."""
        with warnings.catch_warnings():
            warnings.simplefilter("always", GtWidgetWarning)
            original = warnings.showwarning

            def show(
                message: Warning | str,
                category: type[Warning],
                filename: str,
                lineno: int,
                file: TextIO | None = None,
                line: str | None = None,
            ) -> None:
                sink = getattr(self._local, "sink", None)
                if sink is not None and issubclass(category, GtWidgetWarning):
                    sink.append(str(message))
                else:
                    original(message, category, filename, lineno, file, line)

            warnings.showwarning = show
            yield

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Messages of the ``GtWidgetWarning``s this thread raises inside the block."""
        sink: list[str] = []
        self._local.sink = sink
        try:
            yield sink
        finally:
            self._local.sink = None


def label_map_for(
    predict: Callable[[dict[str, Any]], Prediction],
    shape: tuple[int, int],
    objects: list[dict[str, Any]],
    labels: Sequence[str],
) -> tuple[np.ndarray, float]:
    """Paint each object's mask with its label index (1-based, list order: later objects win) into a
    uint8 (H, W) label map; returns it and the mean score. ``predict`` segments one prompt object;
    raises ``GtWidgetError`` naming the object that failed."""
    from gt_widget.errors import FormatError

    label_map = np.zeros(shape, np.uint8)
    scores: list[float] = []
    for k, obj in enumerate(objects):
        if obj["label"] not in labels:
            raise FormatError(f"object {k} has label {obj['label']!r}, which is not among the labels {list(labels)}")
        try:
            pred = predict(obj)
        except GtWidgetError as exc:
            raise type(exc)(f"object {k} ({obj['label']}): {exc}") from None
        except (TypeError, ValueError) as exc:  # e.g. a box of strings that slipped through
            raise FormatError(f"object {k} ({obj['label']}): bad coordinates ({exc})") from None
        label_map[pred.mask] = labels.index(obj["label"]) + 1
        scores.append(float(pred.score))
    return label_map, float(np.mean(scores)) if scores else 0.0


def prompt_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``predict`` for one prompt object (extreme points or a box)."""
    if "extreme_points" in obj:
        return {"extreme_points": obj["extreme_points"]}
    return {"box": obj["box"]}


def default_workers(segmenter: Segmenter) -> int:
    """One worker per core we may use for a ``ParallelSegmenter`` on the CPU, else one."""
    from gt_widget.segment.mobilesam.runtime import affinity_cores

    if not isinstance(segmenter, ParallelSegmenter):
        return 1
    device = getattr(getattr(segmenter, "model", None), "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        return 1  # one GPU: one stream of work
    return affinity_cores()


def run_local(
    segmenter: Segmenter,
    tasks: Sequence[Task],
    labels: Sequence[str],
    colors: Sequence[str],
    write: Callable[[Task, Any], object],
    failed: Callable[[Task, str], None],
    *,
    workers: int | None = None,
    progress: Callable[[], None] = lambda: None,
) -> None:
    """Segment ``tasks`` and hand each result to ``write(task, SegmentedImage)`` (on the writer thread);
    ``failed(task, message)`` for an image that could not be read, segmented or written. ``workers``:
    model threads (default ``default_workers``; more than one only for a ``ParallelSegmenter``).
    ``progress()`` is called once per finished image. Returns when every task is written or failed."""
    from gt_widget.segment.batch import SegmentedImage

    parallel = isinstance(segmenter, ParallelSegmenter)
    n = max(1, min(int(workers or default_workers(segmenter)), len(tasks) or 1))
    if not parallel:
        n = 1
    router = _WarningRouter()
    inbox: queue.Queue[tuple[Task, np.ndarray | None, tuple[str, ...], str | None] | None] = queue.Queue(n + 1)
    outbox: queue.Queue[_Done | None] = queue.Queue(2 * n)
    report_lock = threading.Lock()
    errors: list[Exception] = []

    def fail(task: Task, message: str) -> None:
        with report_lock:
            try:
                failed(task, message)
            except Exception as exc:  # e.g. the failure record cannot be written: raised at the end
                errors.append(exc)
            progress()

    def read() -> None:
        try:
            for task in tasks:
                with router.capture() as caught:
                    try:
                        image, error = load_image(task[1].path), None
                    except GtWidgetError as exc:
                        image, error = None, str(exc)
                    except Exception as exc:  # a bad file never stops the run
                        image, error = None, f"{type(exc).__name__}: {exc}"
                inbox.put((task, image, tuple(caught), error))
        finally:
            for _ in range(n):
                inbox.put(None)

    def segment() -> None:
        while (job := inbox.get()) is not None:
            task, image, read_warnings, error = job
            if error is not None or image is None:
                fail(task, error or "the image could not be read")
                continue
            try:
                with router.capture() as caught:
                    label_map, score = _segment(segmenter, parallel, image, task[2], labels)
            except GtWidgetError as exc:
                fail(task, str(exc))
                continue
            except Exception as exc:  # one bad image (or a model error on it) never stops the run
                fail(task, f"{type(exc).__name__}: {exc}")
                continue
            outbox.put(_Done(task, label_map, score, read_warnings + tuple(caught)))

    def write_all() -> None:
        while (done := outbox.get()) is not None:
            try:
                png = encode_png(done.label_map)
                result = SegmentedImage(png, consolidated_png(done.label_map, list(colors)), done.score, done.warnings)
                write(done.task, result)
            except GtWidgetError as exc:
                fail(done.task, str(exc))
                continue
            except OSError as exc:  # full disk, read-only folder: reported for this image, retried on resume
                fail(done.task, f"could not write the outputs: {exc}")
                continue
            except Exception as exc:  # never leave the model threads blocked on a full queue
                fail(done.task, f"{type(exc).__name__}: {exc}")
                continue
            with report_lock:
                progress()

    tuned = segmenter if isinstance(segmenter, ParallelSegmenter) and n > 1 else None
    threads_before = tuned.threads if tuned is not None else None
    if tuned is not None:
        tuned.threads = 1  # one torch thread per worker: n workers on n cores
    try:
        with router.installed():
            reader = threading.Thread(target=read, name="gtw-batch-read", daemon=True)
            model = [threading.Thread(target=segment, name=f"gtw-batch-model-{i}", daemon=True) for i in range(n)]
            writer = threading.Thread(target=write_all, name="gtw-batch-write", daemon=True)
            for t in (reader, *model, writer):
                t.start()
            for t in model:
                t.join()
            outbox.put(None)
            writer.join()
            reader.join()
    finally:
        if tuned is not None:
            tuned.threads = threads_before
    if errors:
        raise errors[0]


def _segment(
    segmenter: Segmenter, parallel: bool, image: np.ndarray, objects: list[dict[str, Any]], labels: Sequence[str]
) -> tuple[np.ndarray, float]:
    shape = (int(image.shape[0]), int(image.shape[1]))
    if parallel:
        assert isinstance(segmenter, ParallelSegmenter)
        state = segmenter.prepare(image, background=False, cache=False)
        return label_map_for(lambda obj: segmenter.predict_on(state, **prompt_of(obj)), shape, objects, labels)
    segmenter.set_image(image)
    return label_map_for(lambda obj: segmenter.predict(**prompt_of(obj)), shape, objects, labels)
