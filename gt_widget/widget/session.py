"""A labeling session: many images, one ``SegmentationWidget``, autosave in Ground Truth's output layout, resume.

One job: walk a list of images (``gt_widget.sources``) with next / prev / jump controls and save every
result the moment it changes, exactly where Ground Truth would put it (reference §1.3, §1.6, §3.2, §3.3)::

    <output_dir>/<job_name>/annotations/worker-response/iteration-1/<datasetObjectId>/YYYY-MM-DD_HH:MM:SS.json
    <output_dir>/<job_name>/annotations/consolidated-annotation/output/<datasetObjectId>_<timestamp>.png
    <output_dir>/<job_name>/manifests/output/output.manifest
    <output_dir>/<job_name>/gt-widget-session.json      (ours: labels, mode, sources, current index)
    <output_dir>/<job_name>/gt-widget-journal.bin       (ours: the write-ahead journal of edits)
    <output_dir>/<job_name>/gt-widget-session.lock      (ours: one writer at a time)

Paths and line shapes come from ``groundtruth/output.py``; persistence (journal, writer, retries, lock) from
``widget/store.py``. Around this module (construction, navigation, autosave): ``session_options.py`` (checks),
``session_state.py`` (our state file), ``session_results.py`` (counts, results, save/accept, exports),
``session_ui.py`` (the controls), ``session_import.py`` (initial labels).

Side that owns what: the kernel owns everything (label maps, files); the browser only shows the widget.
``datasetObjectId`` is the 0-based position of the image in the source order, as Ground Truth numbers the
lines of an input manifest. Coordinates are (x, y) pixels; label maps uint8 (H, W), 0 = BACKGROUND.

Choices:
- Autosave: every committed edit is appended to the session's journal and fsynced before it counts; one
  background writer derives Ground Truth's files from the newest state of each image (``store.py``). A failed
  write (full disk, read-only folder) is retried until it succeeds; the progress line says "unsaved" meanwhile
  and navigation never discards the edits. ``flush()`` waits for the writer (tests, scripts, before export).
- Every file is written atomically (temp file in the same folder, then ``os.replace``).
- Only the latest version of each object is kept (Ground Truth keeps one answer per worker per object).
- Resume: the newest worker-response JSON of each object, then the journal records it misses.
- The output manifest has one line per input line, in input order; an image not labeled yet appears as its
  input line without the label attribute (``groundtruth/output.py``). "Labeled" means a result was saved,
  even an empty one (the user edited, then erased everything).
- Semantic sessions write ``<attr>-ref`` palette PNGs; instance sessions are written exactly as a custom
  Ground Truth job's output (``"<attr>": {}`` + ``worker-response-ref``; the masks are in the worker response;
  default attribute ``label``, which must not end in ``-ref``; reference §8).
- ``-ref`` values are absolute local paths, or ``output_uri + "/<job>/annotations/..."`` when ``output_uri``
  (e.g. ``s3://bucket/prefix``) is given; ``source-ref`` is the input line's, as written.
- One writer per output folder: a second session in another process gets ``SessionError`` naming the holder
  (``read_only=True`` opens it without saving); re-creating the session in the same process takes over.
- Initial labels (``initial_labels=``: what ``gt_widget.formats.import_*`` return, or a ``gt-widget import``
  job folder) are checked in full before anything is written, then written once with ``human-annotated:
  "no"`` and shown as "imported, to review" until edited or accepted (``accept()``, ``save()``, the Accept
  button: then "yes"). The import is the start of each image's undo history; a resumed session never imports
  again (the state file records it), and never over an image that already has a result.
- An unreadable image is reported in the status line; the session continues, the widget is hidden and nothing
  is saved for that image.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gt_widget.errors import ImageLoadError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import InstanceResult, SemanticResult
from gt_widget.groundtruth.output import OutputLayout
from gt_widget.imageio import load_image
from gt_widget.promptlog import log_path
from gt_widget.sources import ImageCache, SourceItem, SourceSpec, list_sources
from gt_widget.widget import memory
from gt_widget.widget.session_import import InitialLabels, Planned, as_imported, plan_import
from gt_widget.widget.session_options import SessionError, check_options
from gt_widget.widget.session_state import STATE_FILE, STATE_VERSION, read_state, write_state
from gt_widget.widget.session_ui import SessionUI
from gt_widget.widget.store import SessionStore, StoreError

if TYPE_CHECKING:
    from gt_widget.segment.base import Segmenter

__all__ = ["STATE_FILE", "STATE_VERSION", "LabelingSession", "SessionError"]

_PLACEHOLDER = np.full((64, 64, 3), 240, np.uint8)


class LabelingSession(SessionUI):
    """Label a folder / list / input manifest of images with one reused ``SegmentationWidget``.

    ``source``: a folder, an input manifest (local or ``s3://``, JSON Lines with ``source-ref``), an ``s3://``
    prefix ending in ``/``, or a list of paths / URIs / manifest-line dicts. ``s3_endpoint_url`` (default:
    boto3's ``AWS_ENDPOINT_URL_S3``) reaches an S3-compatible server; ``cache_dir`` (default
    ``<output_dir>/.gt-widget-cache``) holds downloaded images. Re-creating a session with the same
    ``output_dir`` and ``job_name`` (e.g. after a kernel restart) resumes it: same image, every result intact.
    ``initial_labels``: imported labels to start from (module doc).
    """

    def __init__(
        self,
        source: SourceSpec,
        labels: Sequence[str],
        output_dir: str | os.PathLike[str],
        mode: str = "semantic",
        segmenter: Segmenter | None = None,
        label_attribute: str | None = None,
        job_name: str = "gt-widget-local",
        *,
        s3_endpoint_url: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        output_uri: str | None = None,
        worker_id: str = "local-notebook",
        prefetch: bool = True,
        read_only: bool = False,
        initial_labels: InitialLabels | None = None,
    ) -> None:
        # 1. checks that write nothing (a retry with fixed arguments must work)
        self._options = check_options(labels, mode, label_attribute, job_name)
        self.labels: list[str] = self._options.labels
        self.mode: str = self._options.mode
        self.label_attribute: str = self._options.label_attribute
        self.job_name: str = job_name
        self.output_dir: Path = Path(output_dir).expanduser().resolve()
        self.job_dir: Path = self.output_dir / job_name
        self.output_uri = output_uri.rstrip("/") if output_uri else None
        self.worker_id = worker_id
        self._prefetch_enabled = prefetch
        self._items: list[SourceItem] = list_sources(source, endpoint_url=s3_endpoint_url)
        self.sources: list[str] = [item.ref for item in self._items]
        self._cache = ImageCache(
            Path(cache_dir) if cache_dir is not None else self.output_dir / ".gt-widget-cache",
            endpoint_url=s3_endpoint_url,
        )
        self.read_only = read_only
        self._loading = False
        self._shown_at = datetime.now(timezone.utc)
        self.error: str | None = None
        """Why the current image cannot be shown (nothing is saved for it), or None."""
        self.notice: str | None = None
        self.state_error: str | None = None
        planned: Planned | None = None
        if initial_labels is not None:
            if read_only:
                raise SessionError("initial_labels needs a session that can save: drop read_only=True")
            planned = plan_import(as_imported(initial_labels), self._items, self._options, self._image_size)

        # 2. the folder, its state and its store (the store's writer may call _refresh_ui from now on: it
        # does nothing until the controls exist)
        if not read_only:
            self.job_dir.mkdir(parents=True, exist_ok=True)
        elif not self.job_dir.is_dir():
            raise SessionError(f"read_only=True needs an existing job folder; {self.job_dir} does not exist")
        saved = read_state(self.job_dir, self._options, self.sources)
        self.index: int = saved.index
        self._imported_done = saved.imported is not None
        try:
            self._store = SessionStore(
                OutputLayout(self.job_dir, self.output_uri),
                self._items,
                self.labels,
                mode=self.mode,
                label_attribute=self.label_attribute,
                worker_id=self.worker_id,
                read_only=read_only,
                on_change=self._refresh_ui,
                to_review=saved.imported or (),
            )
        except StoreError as exc:
            raise SessionError(str(exc)) from None
        if planned is not None and not self._imported_done:
            self._import(planned)
        elif planned is not None:
            self.notice = "initial labels were imported into this job before: not imported again (your edits stay)"
        self._write_state()
        atexit.register(_flush_at_exit, weakref.ref(self))

        # 3. the widget and its controls, then the first image
        from gt_widget.widget import SegmentationWidget

        self.widget: Any = SegmentationWidget(_PLACEHOLDER, self.labels, mode=self.mode, segmenter=segmenter)
        self.widget.observe_changes(self._on_change)
        self._build_ui()
        self._show(self.index)

    def _image_size(self, item: SourceItem) -> tuple[int, int]:
        """(H, W) of ``item`` from its header; ``SessionError`` when it cannot be read."""
        from PIL import Image

        try:
            with Image.open(self._cache.local_path(item)) as img:
                width, height = img.size
        except (OSError, ImageLoadError) as exc:
            raise SessionError(f"cannot read {item.ref} to check its imported labels: {exc}") from None
        return int(height), int(width)

    def _import(self, planned: Planned) -> None:
        """Write the imported labels once (human-annotated "no"), never over an image that has a result."""
        now = datetime.now(timezone.utc)
        for index, (index_map, instances) in sorted(planned.items()):
            if not self._store.is_labeled(index):
                self._store.record(index, index_map, instances, now, force=True, human=False)
        self._imported_done = True

    # ------------------------------------------------------------------------------------------ properties

    @property
    def job_state_path(self) -> Path:
        """The session state file (ours, not Ground Truth's)."""
        return self.job_dir / STATE_FILE

    @property
    def output_manifest_path(self) -> Path:
        """``<job>/manifests/output/output.manifest``."""
        return OutputLayout(self.job_dir).output_manifest_path

    @property
    def current(self) -> SourceItem:
        """The item shown now."""
        return self._items[self.index]

    @property
    def items(self) -> list[SourceItem]:
        """All items, in order (``ref`` + passed-through manifest keys)."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    # ----------------------------------------------------------------------------------------- navigation

    def next(self) -> int:
        """Show the next image (stays on the last one, saying so); returns the new index."""
        if self.index >= len(self._items) - 1:
            return self._stay(f"already at the last image ({len(self._items)})")
        return self.go(self.index + 1)

    def prev(self) -> int:
        """Show the previous image (stays on the first one, saying so); returns the new index."""
        if self.index <= 0:
            return self._stay("already at the first image")
        return self.go(self.index - 1)

    def next_unlabeled(self) -> int:
        """Show the first image after the current one (wrapping) that is unlabeled or holds imported labels to
        review; stays put when there is none, saying so."""
        n = len(self._items)
        for step in range(1, n + 1):
            i = (self.index + step) % n
            if not self.is_labeled(i) or self.is_to_review(i):
                return self.go(i)
        return self._stay(f"all {n} images are labeled")

    def _stay(self, notice: str) -> int:
        """Navigation that cannot move: tell the user instead of doing nothing."""
        self.notice = notice
        self._refresh_ui()
        return self.index

    def go(self, index: int) -> int:
        """Show image ``index`` (0-based; negative counts from the end); returns the new index."""
        n = len(self._items)
        if not isinstance(index, (int, np.integer)) or not -n <= int(index) < n:
            raise SessionError(f"image index {index!r} is out of range: this session has {n} images (0..{n - 1})")
        self._finish_model_work()
        self._show(int(index) % n)
        return self.index

    def _finish_model_work(self) -> None:
        # A queued auto-segment must land on the image it was made for, and be saved, before we switch.
        with contextlib.suppress(Exception):
            self.widget.wait_idle(timeout=120)

    def _show(self, index: int) -> None:
        self.index = index
        item = self._items[index]
        self._loading = True
        try:
            try:
                image = load_image(self._cache.local_path(item))
            except ImageLoadError as exc:
                self.error = f"image {index + 1} ({item.name}) cannot be shown: {exc}. Skip it with Next."
                self.widget.load_image(_PLACEHOLDER)
                return
            previous = self._store.result(index)
            if previous is not None:
                size = _result_shape(previous)
                if size != image.shape[:2]:
                    self.error = (
                        f"image {index + 1} ({item.name}) is {image.shape[1]}x{image.shape[0]} but its saved labels "
                        f"are {size[1]}x{size[0]}: the file changed; delete "
                        f"{self._answer_path(index)} to label it again"
                    )
                    self.widget.load_image(_PLACEHOLDER)
                    return
            self.widget.load_image(image, initial_value=previous)
            if previous is not None:  # labeled before: its saved prompt log goes on (gt_widget.promptlog)
                self.widget.prompts.resume(log_path(self.job_dir, index))
            current, instances = self.widget.snapshot()
            self._store.show(index, current, instances if self.mode == "instance" else None)
            self.error = None
            self._shown_at = datetime.now(timezone.utc)
        finally:
            self._loading = False
            self._write_state()
            self._refresh_ui()
        if self._prefetch_enabled and index + 1 < len(self._items):
            threading.Thread(target=self._prefetch, args=(index + 1,), name="gt-widget-prefetch", daemon=True).start()

    def _prefetch(self, index: int) -> None:
        try:
            path = self._cache.local_path(self._items[index])  # an S3 image is downloaded now, either way
            if _decoded_bytes(path) > memory.MEMORY_BUDGET_BYTES:
                return  # a huge image is decoded when shown, not twice at once (memory.py)
            image = load_image(path)
            if self.index == index - 1:
                self.widget.prefetch(image)
        except Exception:  # a bad next image is reported when it is shown, not here
            return

    # -------------------------------------------------------------------------------------------- autosave

    def _on_change(self, _widget: Any = None) -> None:
        if self._loading or self.error is not None:
            return
        self._enqueue()

    def _enqueue(self, force: bool = False) -> None:
        if self.error is not None or self.read_only:
            return
        reviewing = self.is_to_review(self.index)
        # The snapshot and its record in one step under the widget's lock: edits committed on other threads
        # (model answers, widget messages on another kernel thread) are then journaled in the order they were
        # made, never an older snapshot after a newer one (an undo lost behind the stroke it undid).
        with self.widget._lock:
            index_map, instances = self.widget.snapshot()
            try:
                self._store.record(
                    self.index, index_map, instances if self.mode == "instance" else None, self._shown_at, force=force
                )
            except StoreError as exc:
                raise SessionError(f"{exc}; create a new LabelingSession to keep labeling") from None
        if reviewing and not self.is_to_review(self.index):
            self._write_state()  # the image left "imported, to review": a resumed session must know
        self._save_prompt_log()
        self._refresh_ui()

    def _save_prompt_log(self) -> None:
        """The image's prompt log (gt_widget.promptlog) beside the output, where Ground Truth never reads."""
        log = self.widget.prompts.log
        if log is None or self.read_only:
            return
        with self.widget._lock:
            log.index, log.source_ref = self.index, self._items[self.index].ref
            data = log.to_json().encode("utf-8")
        try:
            atomic_write_bytes(log_path(self.job_dir, self.index), data)
        except OSError as exc:  # a full disk: the labels themselves are journaled; the log is retried next edit
            self.notice = f"prompt log of image {self.index + 1} not saved: {exc}"

    def _write_state(self) -> None:
        if self.read_only:
            return
        imported = self._store.to_review if self._imported_done else None
        self.state_error = write_state(self.job_dir, self._options, self.sources, self.index, imported)


def _result_shape(result: SemanticResult | InstanceResult) -> tuple[int, int]:
    arr = result.instance_map if isinstance(result, InstanceResult) else result.label_map
    return int(arr.shape[0]), int(arr.shape[1])


def _decoded_bytes(path: Path) -> int:
    """Bytes of ``path`` decoded as RGB, from its header only (0 when unreadable: the loader will say why)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return int(img.size[0]) * int(img.size[1]) * 3
    except Exception:
        return 0


def _flush_at_exit(ref: weakref.ReferenceType[LabelingSession]) -> None:
    session = ref()
    if session is not None:
        with contextlib.suppress(Exception):
            session.flush(timeout=30)
