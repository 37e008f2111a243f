"""The controls around a session's widget: Prev / Next / jump / Next unlabeled / Accept, progress and status.

Mixed into ``LabelingSession``. ``_refresh_ui`` may be called from the autosave thread at any moment, also
while the session is being built: it does nothing until ``_build_ui`` has finished (``_ui_ready``).
CSS classes (``gt-session-*``) are stable hooks for browser tests.
"""

from __future__ import annotations

import contextlib
import html
from typing import TYPE_CHECKING, Any

from gt_widget.errors import GtWidgetError
from gt_widget.widget.session_results import SessionResults


class SessionUI(SessionResults):
    """Builds and refreshes the session's controls (``self.ui``: the bar, the status line, the widget)."""

    _ui_ready: bool = False
    widget: Any
    error: str | None
    notice: str | None
    read_only: bool

    if TYPE_CHECKING:

        def next(self) -> int: ...

        def prev(self) -> int: ...

        def next_unlabeled(self) -> int: ...

        def go(self, index: int) -> int: ...

    def _build_ui(self) -> None:
        import ipywidgets as W

        self._prev_button = W.Button(
            description="Prev", icon="arrow-left", tooltip="previous image", layout=W.Layout(width="80px")
        )
        self._next_button = W.Button(
            description="Next", icon="arrow-right", tooltip="next image", layout=W.Layout(width="80px")
        )
        self._unlabeled_button = W.Button(
            description="Next unlabeled", tooltip="first image after this one that is unlabeled or to review"
        )
        self._accept_button = W.Button(
            description="Accept", icon="check", tooltip="accept the imported labels as they are (human-annotated)"
        )
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
            (self._accept_button, "gt-session-accept"),
        ):
            button.add_class(css)
        self._progress = W.HTML()
        self._progress.add_class("gt-session-progress")
        self._status = W.HTML()
        self._status.add_class("gt-session-status")
        self._prev_button.on_click(lambda _b: self._ui_call(self.prev))
        self._next_button.on_click(lambda _b: self._ui_call(self.next))
        self._unlabeled_button.on_click(lambda _b: self._ui_call(self.next_unlabeled))
        self._accept_button.on_click(lambda _b: self._ui_call(self.accept))
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
                self._accept_button,
                self._progress,
            ]
        )
        nav.layout.flex_flow = "row wrap"  # a narrow cell wraps the bar instead of squeezing the buttons
        self.ui = W.VBox([nav, self._status, self.widget])
        self.ui.add_class("gt-labeling-session")
        self._ui_ready = True

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
        if not self._ui_ready:  # the autosave thread may call this while the session is still being built
            return
        item = self._items[self.index]
        if self.is_unsaved(self.index) and self.last_save_error:
            mark = "⚠ unsaved, retrying"
        elif self.is_to_review(self.index):
            mark = "imported, to review: edit or Accept"
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
        self._accept_button.layout.display = None if self.is_to_review(self.index) else "none"
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
            f"LabelingSession({len(self._items)} images, labels={self.labels!r}, mode={getattr(self, 'mode', '?')!r}, "
            f"job={str(self.job_dir)!r}, at image {self.index + 1}, {self.progress_text})"
        )
