"""A labeling session: many images, one ``SegmentationWidget``, autosave in Ground Truth's output layout, resume.

One job: walk a list of images (``gt_widget.widget.sources``) with next / prev / jump controls and save every
result the moment it changes, exactly where Ground Truth would put it (reference §1.3, §1.6, §3.2, §3.3)::

    <output_dir>/<job_name>/annotations/worker-response/iteration-1/<datasetObjectId>/<timestamp>.json
    <output_dir>/<job_name>/annotations/consolidated-annotation/output/<datasetObjectId>_<timestamp>.png
    <output_dir>/<job_name>/manifests/output/output.manifest
    <output_dir>/<job_name>/gt-widget-session.json      (ours: labels, mode, sources, current index)

Side that owns what: the kernel owns everything (label maps, files); the browser only shows the widget.
``datasetObjectId`` is the 0-based position of the image in the source order, as Ground Truth numbers the
lines of an input manifest. Coordinates are (x, y) pixels; label maps uint8 (H, W), 0 = BACKGROUND.

Choices:
- Autosave: every committed edit (``observe_changes``) snapshots the maps and hands them to ONE background
  writer thread, so painting on a 10000x8000 image never waits for PNG encoding; snapshots of the same image
  coalesce (the newest wins). ``flush()`` waits for the writer (tests, scripts, before export/exit).
- Every file is written atomically (temp file in the same folder, then ``os.replace``), in the order
  worker-response JSON, consolidated PNG, output manifest, session state. A kernel that dies at any point
  leaves either the previous or the new version of each file, never half a file.
- Only the latest version of each object is kept: older worker-response JSONs and consolidated PNGs of the
  same object are deleted once the new ones are on disk (an autosave per stroke would otherwise pile up
  hundreds of versions; Ground Truth itself keeps one answer per worker per object).
- Resume: the newest worker-response JSON of each object is the truth; missing consolidated PNGs and the
  output manifest are rebuilt from it, stale versions and leftover temp files are removed.
- The output manifest lists labeled images only (one line each, in source order); "labeled" means a result
  was saved, even an empty one (the user edited, then erased everything).
- ``-ref`` values are absolute local paths, or ``output_uri + "/<job>/annotations/..."`` when ``output_uri``
  (e.g. ``s3://bucket/prefix``) is given, so the folder can be uploaded as a Ground Truth job's output.
- An unreadable image is reported in the status line; the session continues, the widget is hidden and nothing
  is saved for that image.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gt_widget.errors import GtWidgetError, ImageLoadError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import (
    INSTANCE_ELEMENT_NAME,
    SEMANTIC_ELEMENT_NAME,
    Instance,
    InstanceResult,
    SemanticResult,
    consolidated_png,
    creation_date,
    instance_answer,
    output_manifest_line,
    read_answer,
    semantic_answer,
    worker_response,
)
from gt_widget.groundtruth.labels import validate_label_names
from gt_widget.imageio import load_image
from gt_widget.palette import label_colors
from gt_widget.promptlog import log_path
from gt_widget.widget.sources import ImageCache, SourceItem, SourceSpec, list_sources

if TYPE_CHECKING:
    from gt_widget.segment.base import Segmenter

STATE_FILE = "gt-widget-session.json"
STATE_VERSION = 1
ITERATION = "iteration-1"
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_PLACEHOLDER = np.full((64, 64, 3), 240, np.uint8)


class SessionError(GtWidgetError, ValueError):
    """A session cannot start or continue (bad labels/mode/names, an output folder of another session)."""


@dataclass
class _Saved:
    """The latest saved version of one object."""

    stamp: str
    answer_path: Path
    png_path: Path
    line: dict[str, Any]


@dataclass
class _Snapshot:
    """What the writer thread needs to save one object (copied from the widget on the kernel's thread)."""

    index: int
    index_map: np.ndarray
    instances: list[Instance] | None
    accepted: datetime
    submitted: datetime
    done: threading.Event = field(default_factory=threading.Event)
    prompt_log: bytes | None = None
    """The image's prompt log (gt_widget.promptlog), JSON, written beside the output where GT never reads."""


class LabelingSession:
    """Label a folder / list / input manifest of images with one reused ``SegmentationWidget``.

    ``source``: a folder, an input manifest (local or ``s3://``, JSON Lines with ``source-ref``), an ``s3://``
    prefix ending in ``/``, or a list of paths / URIs / manifest-line dicts. ``s3_endpoint_url`` (default:
    boto3's ``AWS_ENDPOINT_URL_S3``) reaches an S3-compatible server; ``cache_dir`` (default
    ``<output_dir>/.gt-widget-cache``) holds downloaded images. Re-creating a session with the same
    ``output_dir`` and ``job_name`` (e.g. after a kernel restart) resumes it: same image, every result intact.
    """

    def __init__(
        self,
        source: SourceSpec,
        labels: Sequence[str],
        output_dir: str | os.PathLike[str],
        mode: str = "semantic",
        segmenter: Segmenter | None = None,
        label_attribute: str = "label-ref",
        job_name: str = "gt-widget-local",
        *,
        s3_endpoint_url: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        output_uri: str | None = None,
        worker_id: str = "local-notebook",
        prefetch: bool = True,
    ) -> None:
        self.labels: list[str] = validate_label_names(labels)  # before any file is written (a retry must work)
        if mode not in ("semantic", "instance"):
            raise SessionError(f"mode must be 'semantic' or 'instance', got {mode!r}")
        self.mode: str = mode
        if not label_attribute.endswith("-ref") or not _NAME_RE.match(label_attribute) or len(label_attribute) > 127:
            raise SessionError(
                f"label_attribute {label_attribute!r} must end in '-ref' (image segmentation, reference §3.2) "
                "and use only letters, digits and hyphens (at most 127), e.g. 'label-ref'"
            )
        self.label_attribute: str = label_attribute
        if not _NAME_RE.match(job_name) or len(job_name) > 63:
            raise SessionError(
                f"job_name {job_name!r} must be 1-63 letters, digits and hyphens, starting and ending with a "
                "letter or digit (Ground Truth's LabelingJobName rule), e.g. 'cats-2024'"
            )
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
        self._colors = list(label_colors(self.labels).values())
        self._lock = threading.RLock()
        self._saved: dict[int, _Saved] = {}
        self._last_moment: datetime | None = None
        self._loading = False
        self._shown_at = datetime.now(timezone.utc)
        self.error: str | None = None
        """Why the current image cannot be shown (nothing is saved for it), or None."""
        self.notice: str | None = None
        self.last_save_error: str | None = None

        self.job_dir.mkdir(parents=True, exist_ok=True)
        self.index: int = self._read_state()
        self._recover()
        self._write_state()

        self._pending: dict[int, _Snapshot] = {}
        self._cond = threading.Condition(self._lock)
        self._closed = False
        self._writer = threading.Thread(target=self._writer_loop, name="gt-widget-autosave", daemon=True)
        self._writer.start()
        atexit.register(_flush_at_exit, weakref.ref(self))

        from gt_widget.widget import SegmentationWidget

        self.widget: Any = SegmentationWidget(_PLACEHOLDER, self.labels, mode=self.mode, segmenter=segmenter)
        self.widget.observe_changes(self._on_change)
        self._build_ui()
        self._show(self.index)

    # ------------------------------------------------------------------------------------------ properties

    @property
    def job_state_path(self) -> Path:
        """The session state file (ours, not Ground Truth's)."""
        return self.job_dir / STATE_FILE

    @property
    def output_manifest_path(self) -> Path:
        """``<job>/manifests/output/output.manifest``."""
        return self.job_dir / "manifests" / "output" / "output.manifest"

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

    @property
    def labeled_count(self) -> int:
        """How many images have a saved result (pending autosaves included)."""
        with self._lock:
            return len(set(self._saved) | set(self._pending))

    def is_labeled(self, index: int) -> bool:
        """Whether image ``index`` has a saved (or pending) result."""
        with self._lock:
            return index in self._saved or index in self._pending

    @property
    def progress_text(self) -> str:
        """``"12 / 300 labeled"``."""
        return f"{self.labeled_count} / {len(self._items)} labeled"

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
        """Show the first unlabeled image after the current one (wrapping); stays put when all are labeled,
        saying so."""
        n = len(self._items)
        for step in range(1, n + 1):
            i = (self.index + step) % n
            if not self.is_labeled(i):
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
                self._set_error(f"image {index + 1} ({item.name}) cannot be shown: {exc}. Skip it with Next.")
                self.widget.load_image(_PLACEHOLDER)
                return
            previous = self.result(index)
            if previous is not None:
                size = _result_shape(previous)
                if size != image.shape[:2]:
                    self._set_error(
                        f"image {index + 1} ({item.name}) is {image.shape[1]}x{image.shape[0]} but its saved labels "
                        f"are {size[1]}x{size[0]}: the file changed; delete "
                        f"{self._saved[index].answer_path} to label it again"
                    )
                    self.widget.load_image(_PLACEHOLDER)
                    return
            self.widget.load_image(image, initial_value=previous)
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
            image = load_image(self._cache.local_path(self._items[index]))
            if self.index == index - 1:
                self.widget.prefetch(image)
        except Exception:  # a bad next image is reported when it is shown, not here
            return

    def _set_error(self, message: str) -> None:
        self.error = message

    # ------------------------------------------------------------------------------------------- results

    def result(self, index: int | None = None) -> SemanticResult | InstanceResult | None:
        """The saved result of image ``index`` (default: current), read back from its worker-response file."""
        i = self.index if index is None else index
        self.flush()
        with self._lock:
            saved = self._saved.get(i)
        if saved is None:
            return None
        return read_answer(json.loads(saved.answer_path.read_text(encoding="utf-8")), self.labels)

    def saved_files(self, index: int | None = None) -> tuple[Path, Path] | None:
        """(worker-response JSON, consolidated PNG) of image ``index``'s latest save, or None."""
        i = self.index if index is None else index
        self.flush()
        with self._lock:
            saved = self._saved.get(i)
        return None if saved is None else (saved.answer_path, saved.png_path)

    def save(self) -> None:
        """Save the current image now (even when unchanged) and wait until it is on disk."""
        self._finish_model_work()
        self._enqueue()
        self.flush()

    def flush(self, timeout: float = 120.0) -> bool:
        """Wait until every pending autosave is on disk; False on timeout. Re-raises nothing: a failed save is
        reported in ``last_save_error`` and the status line."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy_writing, timeout=timeout)

    def close(self) -> None:
        """Flush pending saves and stop the writer thread (the session can no longer save)."""
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._writer.join(timeout=10)

    # -------------------------------------------------------------------------------------------- autosave

    def _on_change(self, _widget: Any = None) -> None:
        if self._loading or self.error is not None:
            return
        self._enqueue()

    def _enqueue(self) -> None:
        if self.error is not None:
            return
        w = self.widget
        if self.mode == "instance":
            index_map = np.array(w.instance_map, dtype=np.uint8, copy=True)
            instances: list[Instance] | None = [Instance(label=i.label, color=i.color) for i in w.instances]
        else:
            index_map = np.array(w.label_map, dtype=np.uint8, copy=True)
            instances = None
        snap = _Snapshot(self.index, index_map, instances, self._shown_at, datetime.now(timezone.utc))
        log = w.prompts.log
        if log is not None:
            with w._lock:
                log.index, log.source_ref = self.index, self._items[self.index].ref
                snap.prompt_log = log.to_json().encode("utf-8")
        with self._cond:
            if self._closed:
                raise SessionError("this session is closed; create a new LabelingSession to keep labeling")
            self._pending[snap.index] = snap
            self._cond.notify_all()
        self._refresh_ui()

    _busy_writing = False

    def _writer_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                index = next(iter(self._pending))
                snap = self._pending.pop(index)
                self._busy_writing = True
            try:
                self._write(snap)
                self.last_save_error = None
            except Exception as exc:  # keep the session alive; the status line says what failed
                self.last_save_error = f"autosave of image {snap.index + 1} failed: {exc}"
            finally:
                with self._cond:
                    self._busy_writing = False
                    self._cond.notify_all()
                snap.done.set()
            self._refresh_ui()

    def _next_moment(self, wanted: datetime) -> datetime:
        with self._lock:
            moment = wanted
            if self._last_moment is not None and moment <= self._last_moment:
                moment = self._last_moment + timedelta(microseconds=1)
            self._last_moment = moment
            return moment

    def _answer_dir(self, index: int) -> Path:
        return self.job_dir / "annotations" / "worker-response" / ITERATION / str(index)

    def _png_dir(self) -> Path:
        return self.job_dir / "annotations" / "consolidated-annotation" / "output"

    def _ref(self, path: Path) -> str:
        if self.output_uri is None:
            return str(path)
        return f"{self.output_uri}/{self.job_name}/{path.relative_to(self.job_dir).as_posix()}"

    def _write(self, snap: _Snapshot) -> None:
        moment = self._next_moment(snap.submitted)
        stamp = creation_date(moment)
        if snap.instances is not None:
            answer = instance_answer(snap.index_map, snap.instances)
            element = INSTANCE_ELEMENT_NAME
            png = consolidated_png(snap.index_map, [i.color for i in snap.instances])
        else:
            answer = semantic_answer(snap.index_map, self.labels)
            element = SEMANTIC_ELEMENT_NAME
            png = consolidated_png(snap.index_map, self._colors)
        response = worker_response(
            answer,
            element_name=element,
            worker_id=self.worker_id,
            acceptance_time=min(snap.accepted, moment),
            submission_time=moment,
        )
        answer_path = self._answer_dir(snap.index) / f"{stamp}.json"
        png_path = self._png_dir() / f"{snap.index}_{stamp}.png"
        atomic_write_bytes(answer_path, json.dumps(response).encode("utf-8"))
        atomic_write_bytes(png_path, png)
        if snap.prompt_log is not None:
            atomic_write_bytes(log_path(self.job_dir, snap.index), snap.prompt_log)
        line = self._manifest_line(snap.index, png_path, snap.instances, moment)
        with self._lock:
            self._saved[snap.index] = _Saved(stamp, answer_path, png_path, line)
            self._write_manifest()
            self._write_state()
        self._remove_stale(snap.index, stamp)

    def _manifest_line(
        self, index: int, png_path: Path, instances: list[Instance] | None, moment: datetime
    ) -> dict[str, Any]:
        item = self._items[index]
        return output_manifest_line(
            item.ref,
            self.label_attribute,
            self._ref(png_path),
            self.labels,
            job_name=self.job_name,
            mode="instance" if instances is not None else "semantic",
            instances=instances,
            colors=self._colors,
            moment=moment,
            extra=item.extra,
        )

    def _write_manifest(self) -> None:
        lines = [json.dumps(self._saved[i].line) for i in sorted(self._saved)]
        atomic_write_bytes(self.output_manifest_path, ("\n".join(lines) + "\n" if lines else "").encode("utf-8"))

    def _remove_stale(self, index: int, keep_stamp: str) -> None:
        for path in self._answer_dir(index).glob("*.json"):
            if path.stem != keep_stamp:
                path.unlink(missing_ok=True)
        for path in self._png_dir().glob(f"{index}_*.png"):
            if path.stem != f"{index}_{keep_stamp}":
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------------------------ state and resume

    def _state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "job_name": self.job_name,
            "labels": self.labels,
            "mode": self.mode,
            "label_attribute": self.label_attribute,
            "sources": self.sources,
            "index": self.index,
        }

    def _write_state(self) -> None:
        with self._lock:
            atomic_write_bytes(self.job_state_path, json.dumps(self._state(), indent=1).encode("utf-8"))

    def _read_state(self) -> int:
        path = self.job_state_path
        if not path.exists():
            return 0
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SessionError(
                f"cannot read the session state {path}: {exc}; delete it to start this job afresh"
            ) from None
        for key, mine in (("labels", self.labels), ("mode", self.mode), ("sources", self.sources)):
            if state.get(key) != mine:
                raise SessionError(
                    f"{self.job_dir} holds a session with different {key} ({_short(state.get(key))} there, "
                    f"{_short(mine)} now). Resume it with the same {key}, or pass another output_dir or job_name "
                    "to start a new job"
                )
        index = int(state.get("index", 0))
        return index if 0 <= index < len(self._items) else 0

    def _recover(self) -> None:
        """Rebuild what is saved from the files (the newest worker response of each object wins)."""
        for leftover in self.job_dir.rglob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        root = self.job_dir / "annotations" / "worker-response" / ITERATION
        if root.is_dir():
            for obj_dir in root.iterdir():
                if not obj_dir.is_dir() or not obj_dir.name.isdigit() or int(obj_dir.name) >= len(self._items):
                    continue
                self._recover_one(int(obj_dir.name), obj_dir)
        if self._saved:
            self._write_manifest()

    def _recover_one(self, index: int, obj_dir: Path) -> None:
        for answer_path in sorted(obj_dir.glob("*.json"), reverse=True):
            try:
                result = read_answer(json.loads(answer_path.read_text(encoding="utf-8")), self.labels)
            except (OSError, json.JSONDecodeError, GtWidgetError):
                continue  # cannot happen with atomic writes; an older version is the next best thing
            stamp = answer_path.stem
            try:
                moment = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)
            except ValueError:
                moment = datetime.now(timezone.utc)
            png_path = self._png_dir() / f"{index}_{stamp}.png"
            if isinstance(result, InstanceResult):
                index_map, instances = result.instance_map, list(result.instances)
                colors = [i.color for i in instances]
            else:
                index_map, instances, colors = result.label_map, None, self._colors
            if not png_path.exists():  # the kernel died between the JSON and the PNG: rebuild the PNG
                atomic_write_bytes(png_path, consolidated_png(index_map, colors))
            line = self._manifest_line(index, png_path, instances, moment)
            self._saved[index] = _Saved(stamp, answer_path, png_path, line)
            if self._last_moment is None or moment > self._last_moment:
                self._last_moment = moment
            self._remove_stale(index, stamp)
            return

    # ------------------------------------------------------------------------------------------------- UI

    def _build_ui(self) -> None:
        import ipywidgets as W

        self._prev_button = W.Button(
            description="Prev", icon="arrow-left", tooltip="previous image", layout=W.Layout(width="80px")
        )
        self._next_button = W.Button(
            description="Next", icon="arrow-right", tooltip="next image", layout=W.Layout(width="80px")
        )
        self._unlabeled_button = W.Button(description="Next unlabeled", tooltip="first unlabeled image after this one")
        self._jump = W.BoundedIntText(
            value=self.index + 1, min=1, max=len(self._items), continuous_update=True, layout=W.Layout(width="90px")
        )
        self._jump.add_class("gt-session-jump")
        self._jump_shown = self.index
        self._jump_button = W.Button(
            description="Go", tooltip="show the image with this number", layout=W.Layout(width="50px")
        )
        for button, css in (
            (self._prev_button, "gt-session-prev"),
            (self._next_button, "gt-session-next"),
            (self._unlabeled_button, "gt-session-next-unlabeled"),
            (self._jump_button, "gt-session-go"),
        ):
            button.add_class(css)  # stable hooks for browser tests
        self._progress = W.HTML()
        self._progress.add_class("gt-session-progress")
        self._status = W.HTML()
        self._status.add_class("gt-session-status")
        self._prev_button.on_click(lambda _b: self._ui_call(self.prev))
        self._next_button.on_click(lambda _b: self._ui_call(self.next))
        self._unlabeled_button.on_click(lambda _b: self._ui_call(self.next_unlabeled))
        self._jump_button.on_click(lambda _b: self._ui_call(lambda: self.go(int(self._jump.value) - 1)))
        self.widget.commands.navigate = lambda step: self._ui_call(self.next if step > 0 else self.prev)
        self.widget.scope.on_input_key = self._jump_key
        nav = W.HBox(
            [
                self._prev_button,
                self._next_button,
                self._jump,
                self._jump_button,
                self._unlabeled_button,
                self._progress,
            ]
        )
        nav.layout.flex_flow = "row wrap"  # a narrow cell wraps the bar instead of squeezing the buttons
        self.ui = W.VBox([nav, self._status, self.widget])
        self.ui.add_class("gt-labeling-session")

    def _jump_key(self, key: str, text: str) -> None:
        """Enter in the jump box goes to the number typed (the browser sends the box's text with the key)."""
        if key != "Enter":
            return
        try:
            number = int(text.strip())
        except ValueError:
            self.notice = f"type an image number (1..{len(self._items)}) in the box, then Enter"
            self._refresh_ui()
            return
        self._ui_call(lambda: self.go(number - 1))

    def _ui_call(self, action: Any) -> None:
        self.notice = None
        try:
            action()
        except GtWidgetError as exc:
            self.notice = str(exc)
            self._refresh_ui()

    def _refresh_ui(self) -> None:
        if not hasattr(self, "_progress"):
            return
        import html

        item = self._items[self.index]
        mark = "✔ labeled" if self.is_labeled(self.index) else "not labeled yet"
        self._progress.value = (
            f"<b>{self.progress_text}</b> &nbsp;·&nbsp; image {self.index + 1} of {len(self._items)}: "
            f"<code>{html.escape(item.name)}</code> ({mark})"
        )
        if self._jump_shown != self.index:  # never overwrite a number being typed (an autosave refreshes too)
            self._jump.value = self.index + 1
            self._jump_shown = self.index
        self._prev_button.disabled = self.index == 0
        self._next_button.disabled = self.index >= len(self._items) - 1
        problems = [m for m in (self.error, self.last_save_error) if m]
        lines = [f"<span style='color:var(--jp-error-color1, #b00020)'>{html.escape(m)}</span>" for m in problems]
        lines += [f"<span>{html.escape(self.notice)}</span>"] if self.notice else []
        autosave = f"<span style='opacity:0.7'>autosaving to {html.escape(str(self.job_dir))}</span>"
        self._status.value = "<br>".join(lines) if lines else autosave
        with contextlib.suppress(Exception):
            self.widget.layout.display = "none" if self.error else None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.ui._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (
            f"LabelingSession({len(self._items)} images, labels={self.labels!r}, mode={self.mode!r}, "
            f"job={str(self.job_dir)!r}, at image {self.index + 1}, {self.progress_text})"
        )

    # ---------------------------------------------------------------------------------------------- exports

    def export_coco(self, path: str | os.PathLike[str], *, compressed: bool = False) -> Path:
        """COCO JSON with RLE masks of every labeled image (see ``gt_widget.widget.export``)."""
        from gt_widget.widget.export import export_coco

        self.flush()
        return export_coco(self.job_dir, path, labels=self.labels, compressed=compressed)

    def export_png(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """One label-map PNG per labeled image (and per-instance PNGs in instance mode)."""
        from gt_widget.widget.export import export_png_masks

        self.flush()
        return export_png_masks(self.job_dir, out_dir, labels=self.labels)


def _result_shape(result: SemanticResult | InstanceResult) -> tuple[int, int]:
    arr = result.instance_map if isinstance(result, InstanceResult) else result.label_map
    return int(arr.shape[0]), int(arr.shape[1])


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _flush_at_exit(ref: weakref.ReferenceType[LabelingSession]) -> None:
    session = ref()
    if session is not None:
        with contextlib.suppress(Exception):
            session.flush(timeout=30)
