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
``widget/store.py``.

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
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gt_widget.errors import GtWidgetError, ImageLoadError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import InstanceResult, SemanticResult
from gt_widget.groundtruth.labels import validate_label_names
from gt_widget.groundtruth.output import OutputLayout, check_custom_attribute
from gt_widget.imageio import load_image
from gt_widget.promptlog import log_path
from gt_widget.sources import ImageCache, SourceItem, SourceSpec, list_sources
from gt_widget.widget import memory
from gt_widget.widget.store import SessionStore, StoreError

if TYPE_CHECKING:
    from gt_widget.segment.base import Segmenter

STATE_FILE = "gt-widget-session.json"
STATE_VERSION = 1
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_PLACEHOLDER = np.full((64, 64, 3), 240, np.uint8)


class SessionError(GtWidgetError, ValueError):
    """A session cannot start or continue (bad labels/mode/names, an output folder of another session)."""


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
        label_attribute: str | None = None,
        job_name: str = "gt-widget-local",
        *,
        s3_endpoint_url: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        output_uri: str | None = None,
        worker_id: str = "local-notebook",
        prefetch: bool = True,
        read_only: bool = False,
    ) -> None:
        self.labels: list[str] = validate_label_names(labels)  # before any file is written (a retry must work)
        if mode not in ("semantic", "instance"):
            raise SessionError(f"mode must be 'semantic' or 'instance', got {mode!r}")
        self.mode: str = mode
        if label_attribute is None:
            label_attribute = "label" if mode == "instance" else "label-ref"
        if mode == "semantic" and not label_attribute.endswith("-ref"):
            raise SessionError(
                f"label_attribute {label_attribute!r} must end in '-ref' (semantic segmentation, reference §3.2), "
                f"e.g. {label_attribute + '-ref'!r}"
            )
        if mode == "instance":
            try:
                check_custom_attribute(label_attribute)
            except GtWidgetError as exc:
                raise SessionError(str(exc)) from None
        if not _NAME_RE.match(label_attribute) or len(label_attribute) > 127:
            raise SessionError(
                f"label_attribute {label_attribute!r} must use only letters, digits and hyphens (at most 127), "
                "e.g. 'label-ref'"
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
        self.read_only = read_only
        self._loading = False
        self._shown_at = datetime.now(timezone.utc)
        self.error: str | None = None
        """Why the current image cannot be shown (nothing is saved for it), or None."""
        self.notice: str | None = None
        self.state_error: str | None = None

        if not read_only:
            self.job_dir.mkdir(parents=True, exist_ok=True)
        elif not self.job_dir.is_dir():
            raise SessionError(f"read_only=True needs an existing job folder; {self.job_dir} does not exist")
        self.index: int = self._read_state()
        try:
            self._store = SessionStore(
                OutputLayout(self.job_dir, self.output_uri),
                self._items,
                self.labels,
                mode=self.mode,
                label_attribute=self.label_attribute,
                worker_id=self.worker_id,
                read_only=read_only,
                on_change=lambda: self._refresh_ui(),
            )
        except StoreError as exc:
            raise SessionError(str(exc)) from None
        self._write_state()
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
        return OutputLayout(self.job_dir).output_manifest_path

    @property
    def last_save_error(self) -> str | None:
        """Why the last autosave (or journal append) failed, while it is being retried; None when all is saved."""
        return self._store.last_error

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
        return len(self._store.labeled)

    def is_labeled(self, index: int) -> bool:
        """Whether image ``index`` has a saved (or pending) result."""
        return self._store.is_labeled(index)

    def is_unsaved(self, index: int) -> bool:
        """Whether image ``index`` has edits that are not in Ground Truth's files yet (kept and retried)."""
        return self._store.is_unsaved(index)

    @property
    def progress_text(self) -> str:
        """``"12 / 300 labeled"`` (plus ``", 2 unsaved"`` while saves are failing)."""
        text = f"{self.labeled_count} / {len(self._items)} labeled"
        unsaved = len(self._store.unsaved) if self._store.last_error else 0
        return f"{text}, {unsaved} unsaved" if unsaved else text

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
            previous = self._store.result(index)
            if previous is not None:
                size = _result_shape(previous)
                if size != image.shape[:2]:
                    self._set_error(
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

    def _set_error(self, message: str) -> None:
        self.error = message

    # ------------------------------------------------------------------------------------------- results

    def result(self, index: int | None = None) -> SemanticResult | InstanceResult | None:
        """The newest result of image ``index`` (default: current): unsaved edits included, else its file."""
        i = self.index if index is None else index
        return self._store.result(i)

    def _answer_path(self, index: int) -> Path | None:
        saved = self._store.saved(index)
        return None if saved is None else saved.answer_path

    def saved_files(self, index: int | None = None) -> tuple[Path, Path | None] | None:
        """(worker-response JSON, consolidated PNG) of image ``index`` after a flush; the PNG is None in
        instance mode (a custom job has no consolidated PNG); None when nothing is saved."""
        i = self.index if index is None else index
        self.flush()
        saved = self._store.saved(i)
        return None if saved is None else (saved.answer_path, saved.png_path)

    def save(self) -> None:
        """Save the current image now (even when unchanged) and wait until it is on disk."""
        self._finish_model_work()
        self._enqueue(force=True)
        self.flush()

    def flush(self, timeout: float = 120.0) -> bool:
        """Wait until every edit is in Ground Truth's files; False on timeout or while saves fail (the edits are
        kept, in memory and in the journal, and retried; ``last_save_error`` says why)."""
        return self._store.flush(timeout)

    def close(self) -> None:
        """Flush pending saves, stop the writer and release the output folder (the session can no longer save)."""
        self._store.close()

    # -------------------------------------------------------------------------------------------- autosave

    def _on_change(self, _widget: Any = None) -> None:
        if self._loading or self.error is not None:
            return
        self._enqueue()

    def _enqueue(self, force: bool = False) -> None:
        if self.error is not None or self.read_only:
            return
        index_map, instances = self.widget.snapshot()
        try:
            self._store.record(
                self.index, index_map, instances if self.mode == "instance" else None, self._shown_at, force=force
            )
        except StoreError as exc:
            raise SessionError(f"{exc}; create a new LabelingSession to keep labeling") from None
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
        if self.read_only:
            return
        try:  # the current index only: a full disk must not stop navigation
            atomic_write_bytes(self.job_state_path, json.dumps(self._state(), indent=1).encode("utf-8"))
            self.state_error = None
        except OSError as exc:
            self.state_error = f"cannot save the session's position ({exc}); your labels are kept and retried"

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
        if self.is_unsaved(self.index) and self.last_save_error:
            mark = "⚠ unsaved, retrying"
        elif self.is_labeled(self.index):
            mark = "✔ labeled"
        else:
            mark = "not labeled yet"
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
        where = html.escape(str(self.job_dir))
        if self.read_only:
            idle = f"<span style='opacity:0.7'>read-only: edits here are not saved ({where})</span>"
        else:
            idle = f"<span style='opacity:0.7'>autosaving to {where}</span>"
        self._status.value = "<br>".join(lines) if lines else idle
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
        """COCO JSON with RLE masks of every labeled image (see ``gt_widget.groundtruth.export``)."""
        from gt_widget.groundtruth.export import export_coco

        self.flush()
        return export_coco(self.job_dir, path, labels=self.labels, compressed=compressed)

    def export_png(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """One label-map PNG per labeled image (and per-instance PNGs in instance mode)."""
        from gt_widget.groundtruth.export import export_png_masks

        self.flush()
        return export_png_masks(self.job_dir, out_dir, labels=self.labels)


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


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _flush_at_exit(ref: weakref.ReferenceType[LabelingSession]) -> None:
    session = ref()
    if session is not None:
        with contextlib.suppress(Exception):
            session.flush(timeout=30)
