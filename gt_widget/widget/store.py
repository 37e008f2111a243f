"""Persistence of a labeling session: journal first, Ground Truth's files derived from it, retried until written.

Side: kernel; one ``SessionStore`` per job folder and process, owned by ``LabelingSession``. Conventions: image
``index`` = ``datasetObjectId`` = 0-based position of the input line; maps are uint8 (H, W) (semantic: label
map, 0 = BACKGROUND; instance: instance map, 0 = none, k = ``instances[k - 1]``).

The life of an edit:
1. ``record`` (on the thread that committed it) appends the changed box of the map to the journal and
   fsyncs it (``journal.py``); only then does the edit count. The new map becomes the pending snapshot of
   its image (no copy: maps handed to the store are never modified afterwards).
2. One writer thread turns the newest snapshot of each image into Ground Truth's files (``groundtruth/output``:
   worker response, consolidated PNG for semantic jobs, output manifest), then writes a journal checkpoint.
   A failed write (full disk, read-only folder) keeps the snapshot, says so (``last_error``, ``is_unsaved``)
   and retries with backoff (``RETRY_SECONDS``) until it succeeds; nothing but a newer snapshot of the same
   image replaces it, so navigating away never discards work.
3. Reopening replays the journal records the files miss (after each image's last checkpoint) and writes
   them. When every record is in the files the journal is emptied.
Imported labels ("to review", ``human-annotated: "no"``) leave that state with the first human edit or
accept. The mark travels with the edit: each journal record says whether it is human, and the output
manifest line says it once written, so on reopening both override the session state file's ``imported``
list, which is written only after the edit (a kernel dying in between loses nothing).
A journal append that fails (full disk) keeps the edit in memory as a pending snapshot and makes the next
record of that image a full one, so the journal never depends on a record it lost.

Memory: pending snapshots of images other than the one shown are zlib-compressed once their total passes
``memory.MEMORY_BUDGET_BYTES`` (label maps compress ~100x), so unsaved work on many huge images stays bounded.

One writer per folder: ``FolderLock``. A second session of the same folder in the same process (re-running
the notebook cell) takes over from the first: the old store stops its writer, hands over its unsaved
snapshots and releases the lock. In another process the second session gets ``SessionError`` naming the
holder, or opens read-only (``read_only=True``: nothing is written, locked or deleted).
"""

from __future__ import annotations

import contextlib
import json
import threading
import warnings
import weakref
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from gt_widget.errors import GtWidgetError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import (
    INSTANCE_ELEMENT_NAME,
    SEMANTIC_ELEMENT_NAME,
    Instance,
    InstanceResult,
    SemanticResult,
    consolidated_png,
    instance_answer,
    output_manifest_line,
    read_answer,
    semantic_answer,
    worker_response,
)
from gt_widget.groundtruth.output import (
    OutputLayout,
    instance_line,
    parse_worker_response_name,
    read_output_manifest,
    write_output_manifest,
)
from gt_widget.palette import label_colors
from gt_widget.sources import SourceItem
from gt_widget.widget import memory
from gt_widget.widget.journal import EDIT, FolderLock, Journal, LockedError, Record, apply, changed_box

RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
"""Waits between attempts to write a snapshot that failed (the last one repeats)."""

_LIVE: dict[Path, weakref.ReferenceType[SessionStore]] = {}
_LIVE_LOCK = threading.Lock()


class StoreError(GtWidgetError, ValueError):
    """The store cannot start (folder locked by another process) or was closed."""


@dataclass
class _Saved:
    """The latest version of one object on disk."""

    answer_path: Path
    png_path: Path | None
    line: dict[str, Any]


@dataclass
class Snapshot:
    """The newest state of one image not yet in Ground Truth's files: ``map`` (or its zlib bytes), instances
    (instance mode), journal ``seq`` it includes, when the image was shown and when it was edited."""

    index: int
    map: np.ndarray | None
    shape: tuple[int, int]
    instances: list[Instance] | None
    seq: int
    accepted: datetime
    submitted: datetime
    packed: bytes | None = None
    failures: int = field(default=0)
    human: bool = True

    def array(self) -> np.ndarray:
        """The map (decompressed when it was packed)."""
        if self.map is not None:
            return self.map
        assert self.packed is not None
        return np.frombuffer(zlib.decompress(self.packed), np.uint8).reshape(self.shape).copy()

    def pack(self) -> None:
        """Keep the map compressed only."""
        if self.map is not None:
            self.packed = zlib.compress(np.ascontiguousarray(self.map).tobytes(), 1)
            self.map = None

    @property
    def nbytes(self) -> int:
        """Memory held."""
        return int(self.map.nbytes) if self.map is not None else len(self.packed or b"")


class SessionStore:
    """Journal, pending snapshots, writer thread and saved-file index of one job folder (module doc)."""

    def __init__(
        self,
        layout: OutputLayout,
        items: Sequence[SourceItem],
        labels: Sequence[str],
        *,
        mode: str,
        label_attribute: str,
        worker_id: str,
        read_only: bool = False,
        on_change: Callable[[], None] | None = None,
        to_review: Collection[int] = (),
    ) -> None:
        self.layout = layout
        self.items = list(items)
        self.labels = list(labels)
        self.mode = mode
        self.label_attribute = label_attribute
        self.worker_id = worker_id
        self.read_only = read_only
        self._colors = list(label_colors(self.labels).values())
        self._on_change = on_change or (lambda: None)
        self.journal = Journal(layout.job_dir / "gt-widget-journal.bin")
        self.lock = FolderLock(layout.job_dir)
        self._cond = threading.Condition(threading.RLock())
        self._saved: dict[int, _Saved] = {}
        self._pending: dict[int, Snapshot] = {}
        self._unjournaled: set[int] = set()  # images whose next record must be full (a record was lost)
        self._base: dict[int, tuple[np.ndarray, list[tuple[str, str]] | None]] = {}  # diff base of the image shown
        self._checkpoint: dict[int, int] = {}
        self._seq = 0
        self._last_moment: datetime | None = None
        self._busy = False
        self._attempts = 0
        self._closed = False
        self.last_error: str | None = None
        self.journal_bytes = 0
        self.current: int | None = None
        self._to_review: set[int] = set(to_review)  # imported, nobody edited or accepted them: human-annotated "no"

        if not read_only:
            self._take_lock()
        self._recover()
        self._writer: threading.Thread | None = None
        if not read_only:
            self._writer = threading.Thread(target=self._writer_loop, name="gt-widget-autosave", daemon=True)
            self._writer.start()

    # ------------------------------------------------------------------------------------------- lock

    def _take_lock(self) -> None:
        key = self.layout.job_dir
        with _LIVE_LOCK:
            ref = _LIVE.get(key)
            old = ref() if ref is not None else None
            if old is not None and old is not self:
                self._pending.update(old.hand_over())  # a re-run cell: take over, keep its unsaved work
            try:
                self.lock.acquire()
            except LockedError as exc:
                raise StoreError(str(exc)) from None
            _LIVE[key] = weakref.ref(self)

    def hand_over(self) -> dict[int, Snapshot]:
        """Stop writing (finishing the file being written), release the lock, return the unsaved snapshots."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._writer is not None and self._writer is not threading.current_thread():
            self._writer.join(timeout=60)
        self.lock.release()
        with self._cond:
            pending, self._pending = dict(self._pending), {}
        return pending

    # ---------------------------------------------------------------------------------------- queries

    def is_labeled(self, index: int) -> bool:
        """Saved or pending."""
        with self._cond:
            return index in self._saved or index in self._pending

    def is_unsaved(self, index: int) -> bool:
        """Whether image ``index`` has edits not yet in Ground Truth's files."""
        with self._cond:
            return index in self._pending

    @property
    def labeled(self) -> set[int]:
        """Indices with a saved or pending result."""
        with self._cond:
            return set(self._saved) | set(self._pending)

    @property
    def unsaved(self) -> set[int]:
        """Indices whose newest edits are not in the files yet."""
        with self._cond:
            return set(self._pending)

    @property
    def to_review(self) -> set[int]:
        """Indices holding imported labels nobody edited or accepted (written with human-annotated "no")."""
        with self._cond:
            return set(self._to_review)

    def saved(self, index: int) -> _Saved | None:
        """The saved files of ``index`` (None when nothing is saved)."""
        with self._cond:
            return self._saved.get(index)

    def result(self, index: int) -> SemanticResult | InstanceResult | None:
        """Newest result of ``index``: the unsaved snapshot when there is one, else the saved worker response."""
        with self._cond:
            snap = self._pending.get(index)
            saved = self._saved.get(index)
        if snap is not None:
            arr = snap.array().copy()
            if snap.instances is not None:
                return InstanceResult(arr, [Instance(i.label, i.color) for i in snap.instances])
            return SemanticResult(arr, list(self.labels), dict(zip(self.labels, self._colors, strict=True)))
        if saved is None:
            return None
        return read_answer(json.loads(saved.answer_path.read_text(encoding="utf-8")), self.labels)

    def pending_bytes(self) -> int:
        """Memory held by unsaved snapshots."""
        with self._cond:
            return sum(s.nbytes for s in self._pending.values())

    # ------------------------------------------------------------------------------------------ edits

    def show(self, index: int, current: np.ndarray, instances: Sequence[Instance] | None) -> None:
        """Image ``index`` is now shown with map ``current`` (the base the next edit is diffed against)."""
        with self._cond:
            self._base = {index: (current, _meta(instances))}
            self.current = index
            self._bound_memory()

    def record(
        self,
        index: int,
        new: np.ndarray,
        instances: list[Instance] | None,
        accepted: datetime,
        *,
        force: bool = False,
        human: bool = True,
    ) -> None:
        """A completed edit of image ``index`` whose result is ``new`` (not modified afterwards): journal it
        durably, then queue it for the writer. ``force`` queues it even when nothing changed; ``human=False``
        marks imported labels (human-annotated "no" until a human edit or a forced save of the image)."""
        if self.read_only:
            return
        with self._cond:
            if self._closed:
                raise StoreError("this session was closed or replaced by a newer one; edits here are not saved")
            base, base_meta = self._base.get(index, (None, None))
            same_meta = base_meta == _meta(instances)
            box = changed_box(base, new)
            if box is None and same_meta and not force:
                return
            full = index in self._unjournaled
            if full:
                box = (0, int(new.shape[0]), 0, int(new.shape[1]))
            self._seq += 1
            try:
                self.journal_bytes += self.journal.append_edit(
                    index, self._seq, new, box, _meta(instances), human=human
                )
                self._unjournaled.discard(index)
            except OSError as exc:
                self._unjournaled.add(index)
                self.last_error = f"image {index + 1}: the edit is kept in memory only, the journal failed ({exc})"
            self._base[index] = (new, _meta(instances))
            snap = Snapshot(
                index,
                new,
                (int(new.shape[0]), int(new.shape[1])),
                [Instance(i.label, i.color) for i in instances] if instances is not None else None,
                self._seq,
                accepted,
                datetime.now(timezone.utc),
                human=human,
            )
            if human:
                self._to_review.discard(index)
            else:
                self._to_review.add(index)
            self._pending[index] = snap
            self._cond.notify_all()
        self._on_change()

    def flush(self, timeout: float = 120.0) -> bool:
        """Wait until every snapshot is in the files; False on timeout or when a write failed (then
        ``last_error`` says why and the writer keeps retrying)."""
        with self._cond:
            start = self._attempts
            failures_at_start = {i: s.failures for i, s in self._pending.items()}

            def settled() -> bool:
                if not self._pending and not self._busy:
                    return True
                if self._writer is None or self._closed:
                    return True
                failed_since = any(s.failures > failures_at_start.get(i, 0) for i, s in self._pending.items())
                return failed_since and self._attempts > start and not self._busy

            self._cond.wait_for(settled, timeout=timeout)
            return not self._pending and not self._busy

    def close(self) -> None:
        """Flush (briefly), stop the writer, release the lock. Edits that could not be written stay in the
        journal (replayed by the next session); a warning names the images whose edits were in memory only."""
        self.flush(timeout=30)
        with self._cond:
            lost = sorted(i + 1 for i in self._pending if i in self._unjournaled)
            unsaved = sorted(i + 1 for i in self._pending)
        if lost:
            warnings.warn(
                f"closing with edits of images {lost} that could be neither saved nor journaled "
                f"({self.last_error}); they are lost. Free disk space before closing next time",
                RuntimeWarning,
                stacklevel=2,
            )
        elif unsaved:
            warnings.warn(
                f"edits of images {unsaved} are not in Ground Truth's files yet ({self.last_error}); they are in "
                "the journal and the next session on this folder writes them",
                RuntimeWarning,
                stacklevel=2,
            )
        self.hand_over()
        with _LIVE_LOCK:
            ref = _LIVE.get(self.layout.job_dir)
            if ref is not None and ref() is self:
                del _LIVE[self.layout.job_dir]

    # ----------------------------------------------------------------------------------------- writer

    def _writer_loop(self) -> None:
        delay_index = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._ready() is not None)
                if self._closed:
                    return
                snap = self._ready()
                assert snap is not None
                self._busy = True
            error: str | None = None
            try:
                self._write(snap)
            except Exception as exc:  # disk full, read-only, ... : keep the snapshot and retry
                error = f"autosave of image {snap.index + 1} failed, retrying ({type(exc).__name__}: {exc})"
            with self._cond:
                self._busy = False
                self._attempts += 1
                if error is None:
                    if self._pending.get(snap.index) is snap:
                        del self._pending[snap.index]
                    if not any(s.failures for s in self._pending.values()):
                        self.last_error = None
                    delay_index = 0
                    if not self._pending:
                        self._compact()
                else:
                    snap.failures += 1
                    self.last_error = error
                self._cond.notify_all()
            self._on_change()
            if error is not None:
                with self._cond:
                    self._cond.wait(timeout=RETRY_SECONDS[min(delay_index, len(RETRY_SECONDS) - 1)])
                delay_index += 1

    def _ready(self) -> Snapshot | None:
        # oldest failure last: a fresh snapshot of the image being edited goes first
        if not self._pending:
            return None
        return min(self._pending.values(), key=lambda s: (s.failures, s.seq))

    def _compact(self) -> None:
        """Every record is in the files: empty the journal (caller holds the condition)."""
        try:
            self.journal.reset()
            self._checkpoint.clear()
        except OSError:
            return

    def _next_moment(self, wanted: datetime) -> datetime:
        # strictly increasing moments, so a newer save never sorts before an older one
        # whole milliseconds, as the worker response's submissionTime spells them, so recovery finds the same
        # consolidated PNG name from the file alone
        moment = wanted.replace(microsecond=wanted.microsecond // 1000 * 1000)
        if self._last_moment is not None and moment <= self._last_moment:
            moment = self._last_moment + timedelta(milliseconds=1)
        self._last_moment = moment
        return moment

    def _write(self, snap: Snapshot) -> None:
        with self._cond:
            moment = self._next_moment(snap.submitted)
        index_map = snap.array()
        layout = self.layout
        answer_path = layout.worker_response_path(snap.index, moment)
        if snap.instances is not None:
            answer = instance_answer(index_map, snap.instances)
            element = INSTANCE_ELEMENT_NAME
        else:
            answer = semantic_answer(index_map, self.labels)
            element = SEMANTIC_ELEMENT_NAME
        response = worker_response(
            answer,
            element_name=element,
            worker_id=self.worker_id,
            acceptance_time=min(snap.accepted, moment),
            submission_time=moment,
        )
        atomic_write_bytes(answer_path, json.dumps(response).encode("utf-8"))
        png_path = None
        if snap.instances is None:  # instance (custom) jobs have no consolidated PNG (reference §8)
            png_path = layout.consolidated_png_path(snap.index, moment)
            atomic_write_bytes(png_path, consolidated_png(index_map, self._colors))
        line = self._line(snap.index, answer_path, png_path, moment, human=snap.human)
        with self._cond:
            previous = self._saved.get(snap.index)
            self._saved[snap.index] = _Saved(answer_path, png_path, line)
            try:
                self._write_manifest()
            except BaseException:
                if previous is None:
                    del self._saved[snap.index]
                else:
                    self._saved[snap.index] = previous
                raise
        with self._cond, contextlib.suppress(OSError):
            self.journal.append_checkpoint(snap.index, snap.seq)
        self._remove_stale(snap.index, answer_path, png_path)

    def _line(
        self, index: int, answer_path: Path, png_path: Path | None, moment: datetime, *, human: bool = True
    ) -> dict[str, Any]:
        item = self.items[index]
        input_line = {"source-ref": item.source_ref, **item.extra}
        if png_path is None:
            return instance_line(
                input_line,
                self.label_attribute,
                job_name=self.layout.job_name,
                worker_response_ref=self.layout.ref(answer_path),
                moment=moment,
                human_annotated=human,
            )
        return output_manifest_line(
            item.source_ref,
            self.label_attribute,
            self.layout.ref(png_path),
            self.labels,
            job_name=self.layout.job_name,
            colors=self._colors,
            moment=moment,
            extra=item.extra,
            human_annotated=human,
        )

    def _write_manifest(self) -> None:
        """One line per input line, in input order; unlabeled images as their input line (output.py doc)."""
        lines: list[Mapping[str, Any]] = []
        for i, item in enumerate(self.items):
            saved = self._saved.get(i)
            lines.append(saved.line if saved is not None else {"source-ref": item.source_ref, **item.extra})
        write_output_manifest(self.layout.output_manifest_path, lines)

    def _remove_stale(self, index: int, answer_path: Path, png_path: Path | None) -> None:
        # one answer per object, as Ground Truth keeps one per worker (session.py doc)
        for path in self.layout.worker_responses(index):
            if path != answer_path:
                path.unlink(missing_ok=True)
        for path in self.layout.consolidated_pngs(index):
            if path != png_path:
                path.unlink(missing_ok=True)

    # ---------------------------------------------------------------------------------------- recover

    def _recover(self) -> None:
        """Saved files, then the journal records they miss (module doc)."""
        job_dir = self.layout.job_dir
        if not self.read_only:
            for leftover in job_dir.rglob(".*.tmp"):  # ours: we hold the folder's lock
                leftover.unlink(missing_ok=True)
        records = list(self.journal.records())
        self._recover_review(records)
        for index in range(len(self.items)):
            self._recover_files(index)
        replay = self._replay(records)
        with self._cond:
            for index, snap in replay.items():
                if index not in self._pending:
                    self._pending[index] = snap
        if not self.read_only:
            self.journal.cut_torn_tail()
            if self._saved or self._pending:
                with contextlib.suppress(OSError):
                    self._write_manifest()

    def _recover_review(self, records: Sequence[Record]) -> None:
        """Which images are still "to review": the state file's list (``to_review``) corrected by what was
        saved with the edits themselves, first the output manifest (a line written as human-annotated "yes"
        was edited or accepted), then the journal's records in order (newer than the files)."""
        attr = f"{self.label_attribute}-metadata"
        try:
            lines = read_output_manifest(self.layout.output_manifest_path)
        except (OSError, ValueError, GtWidgetError):
            lines = []
        for index, (line, item) in enumerate(zip(lines, self.items, strict=False)):
            meta = line.get(attr)
            same = line.get("source-ref") == item.source_ref
            if same and isinstance(meta, dict) and meta.get("human-annotated") == "yes":
                self._to_review.discard(index)
        for r in records:
            if r.kind != EDIT or r.human is None or r.index >= len(self.items):
                continue
            if r.human:
                self._to_review.discard(r.index)
            else:
                self._to_review.add(r.index)

    def _recover_files(self, index: int) -> None:
        found = self.layout.worker_responses(index)
        for answer_path in reversed(found):
            try:
                payload = json.loads(answer_path.read_text(encoding="utf-8"))
                result = read_answer(payload, self.labels)
            except (OSError, ValueError, GtWidgetError):
                continue
            moment = _submitted(payload) or parse_worker_response_name(answer_path.name) or datetime.now(timezone.utc)
            png_path: Path | None = None
            if isinstance(result, SemanticResult):
                pngs = self.layout.consolidated_pngs(index)
                png_path = pngs[-1] if pngs else self.layout.consolidated_png_path(index, moment)
                if not pngs and not self.read_only:  # died between the JSON and the PNG: rebuild it
                    atomic_write_bytes(png_path, consolidated_png(result.label_map, self._colors))
            line = self._line(index, answer_path, png_path, moment, human=index not in self._to_review)
            self._saved[index] = _Saved(answer_path, png_path, line)
            if self._last_moment is None or moment > self._last_moment:
                self._last_moment = moment
            if not self.read_only:
                self._remove_stale(index, answer_path, png_path)
            return

    def _replay(self, records: Sequence[Record]) -> dict[int, Snapshot]:
        checkpoint: dict[int, int] = {}
        for r in records:
            self._seq = max(self._seq, r.seq)
            if r.kind != EDIT:
                checkpoint[r.index] = max(checkpoint.get(r.index, 0), r.seq)
        self._checkpoint = checkpoint
        todo: dict[int, list[Record]] = {}
        for r in records:
            if r.kind == EDIT and r.seq > checkpoint.get(r.index, 0) and r.index < len(self.items):
                todo.setdefault(r.index, []).append(r)
        out: dict[int, Snapshot] = {}
        now = datetime.now(timezone.utc)
        for index, recs in todo.items():
            prior = self.result(index) if index in self._saved else None
            if isinstance(prior, InstanceResult):
                base, insts = prior.instance_map, [(i.label, i.color) for i in prior.instances]
            elif isinstance(prior, SemanticResult):
                base, insts = prior.label_map, None
            else:
                base, insts = np.zeros(recs[0].shape, np.uint8), None
            base = np.array(base, np.uint8, copy=True)
            for r in recs:
                base = apply(base, r)
                if r.instances is not None:
                    insts = r.instances
            instances = [Instance(a, b) for a, b in insts] if insts is not None else None
            if self.mode == "instance" and instances is None:
                instances = []
            human = index not in self._to_review
            out[index] = Snapshot(index, base, base.shape[:2], instances, recs[-1].seq, now, now, human=human)  # type: ignore[arg-type]
        return out

    # ----------------------------------------------------------------------------------------- memory

    def _bound_memory(self) -> None:
        """Compress unsaved snapshots of images not shown once they pass ``memory.MEMORY_BUDGET_BYTES``."""
        total = 0
        for snap in sorted(self._pending.values(), key=lambda s: -s.seq):
            if snap.index == self.current or snap.map is None:
                continue
            total += snap.nbytes
            if total > memory.MEMORY_BUDGET_BYTES:
                snap.pack()


def _meta(instances: Sequence[Instance] | None) -> list[tuple[str, str]] | None:
    return [(i.label, i.color) for i in instances] if instances is not None else None


def _submitted(payload: Any) -> datetime | None:
    """``answers[0].submissionTime`` of a worker-response file (ours are whole milliseconds, UTC)."""
    try:
        text = str(payload["answers"][0]["submissionTime"]).replace("Z", "+00:00")
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
