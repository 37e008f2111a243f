"""A session's results: counts, the newest result of an image, saving, accepting imported labels, exports.

Mixed into ``LabelingSession`` (``session.py`` owns construction and navigation; the store, ``store.py``, owns
the files). "Labeled" = a result was saved or is pending, even an empty one; "to review" = imported initial
labels nobody has edited or accepted yet (written with ``human-annotated: "no"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gt_widget.groundtruth.formats import InstanceResult, SemanticResult
from gt_widget.sources import SourceItem
from gt_widget.widget.store import SessionStore


class SessionResults:
    """Results, counts, save / accept / flush / close and exports of a ``LabelingSession``."""

    _store: SessionStore
    _items: list[SourceItem]
    index: int
    labels: list[str]
    job_dir: Path

    if TYPE_CHECKING:

        def _finish_model_work(self) -> None: ...

        def _enqueue(self, force: bool = False) -> None: ...

    # ------------------------------------------------------------------------------------------ counts

    @property
    def last_save_error(self) -> str | None:
        """Why the last autosave (or journal append) failed, while it is being retried; None when all is saved."""
        return self._store.last_error

    @property
    def labeled_count(self) -> int:
        """How many images have a saved result (pending autosaves and imported labels included)."""
        return len(self._store.labeled)

    def is_labeled(self, index: int) -> bool:
        """Whether image ``index`` has a saved (or pending) result."""
        return self._store.is_labeled(index)

    def is_unsaved(self, index: int) -> bool:
        """Whether image ``index`` has edits that are not in Ground Truth's files yet (kept and retried)."""
        return self._store.is_unsaved(index)

    def is_to_review(self, index: int) -> bool:
        """Whether image ``index`` holds imported labels nobody has edited or accepted yet."""
        return index in self._store.to_review

    @property
    def to_review_count(self) -> int:
        """How many images hold imported labels still to review."""
        return len(self._store.to_review)

    @property
    def progress_text(self) -> str:
        """``"12 / 300 labeled"`` (plus ``", 5 imported, to review"`` and ``", 2 unsaved"`` while saves fail)."""
        text = f"{self.labeled_count} / {len(self._items)} labeled"
        review = self.to_review_count
        text = f"{text}, {review} imported, to review" if review else text
        unsaved = len(self._store.unsaved) if self._store.last_error else 0
        return f"{text}, {unsaved} unsaved" if unsaved else text

    # ----------------------------------------------------------------------------------------- results

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
        """Save the current image now (even when unchanged; imported labels count as reviewed) and wait until it
        is on disk."""
        self._finish_model_work()
        self._enqueue(force=True)
        self.flush()

    def accept(self) -> None:
        """Accept the current image's labels as they are: imported labels become ``human-annotated: "yes"``
        (the Accept button). Same as ``save()``."""
        self.save()

    def flush(self, timeout: float = 120.0) -> bool:
        """Wait until every edit is in Ground Truth's files; False on timeout or while saves fail (the edits are
        kept, in memory and in the journal, and retried; ``last_save_error`` says why)."""
        return self._store.flush(timeout)

    def close(self) -> None:
        """Flush pending saves, stop the writer and release the output folder (the session can no longer save)."""
        self._store.close()

    # ----------------------------------------------------------------------------------------- exports

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
