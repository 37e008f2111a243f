"""The widget's controls, rendered from a snapshot of the editor's state; user intents go back as calls.

One direction of flow: the façade builds a ``ToolbarState`` after every change and calls ``render``; a
control never changes state itself, it calls ``on_intent(name, value)`` and waits for the next render.
Tool buttons come from the tool registry. CSS classes follow the shared contract (``.gt-tool-<name>``,
``.gt-action-<name>``, ``.gt-label-chip``/``.gt-label-<i>``/``.gt-label-selected``, ``.gt-instance-chip``/
``.gt-instance-<id>``, ``.gt-widget-status``, ``.gt-widget-busy``, ``.gt-widget-help``, ``.gt-widget-tools``);
colours use JupyterLab's theme variables so the dark theme stays readable.
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from gt_widget.palette import PALETTE
from gt_widget.widget.tools.registry import TOOL_CLASSES

Intent = Callable[[str, Any], None]

ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("undo", "undo", "Undo (z)"),
    ("redo", "repeat", "Redo (y / Shift+z)"),
    ("fit", "arrows-alt", "Fit the image to the canvas (f)"),
    ("outline", "object-ungroup", "Labels: fill + outline / outline / hidden (o)"),
    ("clear", "trash", "Clear all labels (undoable)"),
    ("help", "question", "Keyboard shortcuts and mouse gestures (?)"),
)
"""Action buttons: (name, Font Awesome icon, tooltip)."""

CSS = """
.gt-widget { color: var(--jp-ui-font-color1, #222); background: var(--jp-layout-color1, transparent); }
.gt-widget .gt-widget-stage { position: relative; }
.gt-widget .gt-widget-help { position: absolute; top: 8px; left: 8px; right: 8px; max-height: 90%; overflow: auto;
  z-index: 10; padding: 8px 12px; border: 1px solid var(--jp-border-color1, #999); border-radius: 4px;
  background: var(--jp-layout-color1, #fff); color: var(--jp-ui-font-color1, #222); font-size: 12px;
  box-shadow: 0 2px 8px rgba(0,0,0,.3); }
.gt-widget .gt-widget-help kbd { border: 1px solid var(--jp-border-color2, #bbb); border-radius: 3px; padding: 0 4px; }
.gt-widget .gt-widget-tools { gap: 2px; container-type: inline-size; }
.gt-widget .gt-widget-tools > .widget-button { margin: 0; min-width: 28px; padding: 0 5px; }
.gt-widget .gt-widget-tools > .widget-slider { margin: 0 0 0 4px; }
.gt-widget .gt-widget-tools .widget-hslider .slider-container { margin-left: 4px; margin-right: 4px; }
.gt-widget .gt-widget-tools .widget-readout { min-width: 24px; margin-left: 2px; }
@container (max-width: 479px) {
  .gt-widget .gt-widget-tools .gt-polarity, .gt-widget .gt-widget-tools .gt-action-done { font-size: 0; }
  .gt-widget .gt-widget-tools .gt-polarity i, .gt-widget .gt-widget-tools .gt-action-done i {
    font-size: var(--jp-widgets-font-size, 13px); margin-right: 0; }
}
.gt-widget .gt-tool-active, .gt-widget .gt-label-selected { outline: 2px solid var(--jp-brand-color1, #1976d2);
  outline-offset: -2px; font-weight: bold; }
.gt-widget .gt-label-chip, .gt-widget .gt-instance-chip { color: #111; border-radius: 12px; margin: 1px 2px; }
.gt-widget .gt-label-chip .gt-badge { font-weight: bold; margin-right: 4px; }
.gt-widget .gt-spinner { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
  border: 2px solid var(--jp-border-color2, #bbb); border-top-color: var(--jp-brand-color1, #1976d2);
  border-radius: 50%; animation: gt-spin .8s linear infinite; vertical-align: middle; }
@keyframes gt-spin { to { transform: rotate(360deg); } }
.gt-widget .gt-widget-status, .gt-widget .gt-widget-busy { color: var(--jp-ui-font-color1, #222); }
.gt-widget .gt-widget-help .widget-html-content, .gt-widget .gt-widget-status .widget-html-content,
.gt-widget .gt-widget-busy .widget-html-content { height: auto; line-height: 1.4; }
.gt-widget .gt-widget-status { flex: 1 1 auto; min-width: 0; }
.gt-labeling-session .gt-session-prev, .gt-labeling-session .gt-session-next,
.gt-labeling-session .gt-session-go, .gt-labeling-session .gt-session-next-unlabeled { flex-shrink: 0; }
.gt-labeling-session .gt-session-progress .widget-html-content { height: auto; line-height: 1.4; }
.gt-widget .gt-doubt { background: var(--jp-warn-color2, #ffcc80); }
"""


@dataclass
class ToolbarState:
    """Everything the controls show (a snapshot; the toolbar never reads the editor itself)."""

    tool: str
    label: str
    labels: list[str]
    mode: str
    positive: bool = True
    brush_radius: int = 8
    opacity: float = 0.5
    overlay: str = "fill+outline"
    can_undo: bool = False
    can_redo: bool = False
    candidates: int = 0
    candidate: int = 0
    doubt: bool = False
    instances: list[tuple[int, str, str]] = field(default_factory=list)
    """(id, label, colour) of each instance."""
    selected: int = 0
    help: bool = False
    correcting: bool = False
    """Clicks correct the last auto-segment (the Done button shows)."""


def _button(desc: str, icon: str, tip: str, cls: str, act: Callable[[], None]) -> widgets.Button:
    b = widgets.Button(description=desc, icon=icon, tooltip=tip, layout=widgets.Layout(width="auto"))
    b.add_class(cls)
    b.on_click(lambda _b: act())
    return b


def _set_class(w: widgets.DOMWidget, cls: str, on: bool) -> None:
    if on and cls not in w._dom_classes:
        w.add_class(cls)
    elif not on and cls in w._dom_classes:
        w.remove_class(cls)


class Toolbar:
    """The controls above the canvas (one tool row, the label chips, instances) and the status line."""

    def __init__(self, labels: list[str], mode: str, on_intent: Intent, help_html: str) -> None:
        self._intent = on_intent
        self.mode = mode
        self._mute = threading.local()  # per thread: see ``muted``
        self.tool_buttons = {
            t.name: _button("", t.icon, t.tooltip, f"gt-tool-{t.name}", self._say("tool", t.name)) for t in TOOL_CLASSES
        }
        self.action_buttons = {
            name: _button("", icon, tip, f"gt-action-{name}", self._say("action", name)) for name, icon, tip in ACTIONS
        }
        self.polarity = _button(
            "add",
            "plus",
            "what a left click does with the click tool (x)",
            "gt-polarity",
            self._say("action", "polarity"),
        )
        self.candidate_button = _button(
            "", "clone", "the model's next candidate mask (n)", "gt-action-candidate", self._say("action", "candidate")
        )
        self.candidate_button.disabled = True
        self.done = _button(
            "Done", "check", "Finish this object: the next clicks start a new one (Enter)", "gt-action-done",
            self._say("action", "done"),
        )  # fmt: skip
        self.done.layout.display = "none"
        self.brush = widgets.IntSlider(value=8, min=1, max=200, description="", continuous_update=False, readout=True)
        self.brush.layout.width = "104px"
        self.brush.tooltip = "brush radius ([ and ])"
        self.brush.observe(lambda ch: self._control("brush", int(ch["new"])), "value")
        self.opacity = widgets.FloatSlider(
            value=0.5, min=0.0, max=1.0, step=0.05, description="", readout=False, continuous_update=False
        )
        self.opacity.layout.width = "64px"
        self.opacity.observe(lambda ch: self._control("opacity", float(ch["new"])), "value")
        row = [*self.tool_buttons.values(), self.polarity, self.candidate_button, self.done]
        row += self.action_buttons.values()
        self.tools = widgets.HBox(
            [*row, self.brush, self.opacity], layout=widgets.Layout(flex_flow="row wrap", align_items="center")
        )
        self.tools.add_class("gt-widget-tools")
        self.label_chips = [self._label_chip(i, name) for i, name in enumerate(labels)]
        self.labels_row = widgets.HBox(self.label_chips, layout=widgets.Layout(flex_flow="row wrap"))
        self.instances_row = widgets.HBox([], layout=widgets.Layout(flex_flow="row wrap"))
        self.instance_chips: dict[int, widgets.Button] = {}
        self._instances_key: list[tuple[int, str, str]] = []
        self.busy = widgets.HTML("")
        self.busy.add_class("gt-widget-busy")
        self.status = widgets.HTML("")
        self.status.add_class("gt-widget-status")
        self.help = widgets.HTML(help_html, layout=widgets.Layout(display="none"))
        self.help.add_class("gt-widget-help")
        self.style = widgets.HTML(f"<style>{CSS}</style>", layout=widgets.Layout(height="0px", margin="0"))
        self._note, self._busy, self._refining = "", False, False

    @property
    def muted(self) -> bool:
        """True in the thread running ``render`` while it updates the controls (their change events there are
        echoes, not user intents). Per thread: widget messages may arrive on other kernel threads meanwhile
        (ipykernel 7 subshells, model threads rendering), and a real click there must not be dropped."""
        return bool(getattr(self._mute, "on", False))

    def _control(self, name: str, value: Any) -> None:
        if not self.muted:
            self._intent(name, value)

    def _say(self, name: str, value: Any) -> Callable[[], None]:
        return lambda: self._intent(name, value)

    def _label_chip(self, i: int, name: str) -> widgets.Button:
        badge = f"{i + 1} " if i < 9 else ""
        tip = f"label {name!r}" + (f" (key {i + 1})" if i < 9 else "")
        chip = _button(f"{badge}{name}", "", tip, "gt-label-chip", self._say("label", name))
        chip.add_class(f"gt-label-{i + 1}")
        if self.mode == "semantic":
            chip.style.button_color = PALETTE[i]
        return chip

    def rows(self) -> list[widgets.Widget]:
        """The rows above the canvas, in order."""
        extra: list[widgets.Widget] = [self.instances_row] if self.mode == "instance" else []
        return [self.style, self.tools, self.labels_row, *extra, widgets.HBox([self.busy, self.status])]

    # ------------------------------------------------------------------ rendering from a snapshot

    def _synced(self) -> list[widgets.Widget]:
        """The controls ``render`` may change: each sends its changed traits in one message per render."""
        return [
            *self.tool_buttons.values(),
            *self.label_chips,
            self.polarity,
            *self.action_buttons.values(),
            self.help.layout,
            self.done.layout,
            self.candidate_button,
            self.brush,
            self.opacity,
        ]

    def render(self, s: ToolbarState) -> None:
        """Show ``s`` (controls' own change events are muted meanwhile).

        Every control's changes go out as one widget message (``hold_sync``), not one per trait: a click that
        turns the candidate button on changed 4 traits, 4 messages the browser handled one by one while the
        model answered on the same 2 cores."""
        self._mute.on = True
        try:
            with contextlib.ExitStack() as held:
                for w in self._synced():
                    held.enter_context(w.hold_sync())
                self._render(s)
        finally:
            self._mute.on = False

    def _render(self, s: ToolbarState) -> None:
        """``render`` without the muting and batching."""
        for name, b in self.tool_buttons.items():
            _set_class(b, "gt-tool-active", name == s.tool)
            b.button_style = "info" if name == s.tool else ""
        for i, chip in enumerate(self.label_chips):
            _set_class(chip, "gt-label-selected", s.labels[i] == s.label)
        self.polarity.description = "add" if s.positive else "remove"
        self.polarity.icon = "plus" if s.positive else "minus"
        self.action_buttons["undo"].disabled = not s.can_undo
        self.action_buttons["redo"].disabled = not s.can_redo
        self.action_buttons["outline"].description = {"fill+outline": "", "outline": "outline", "hidden": "hidden"}[
            s.overlay
        ]
        self.action_buttons["help"].button_style = "info" if s.help else ""
        self.help.layout.display = "block" if s.help else "none"
        self.done.layout.display = "" if s.correcting else "none"
        self._render_candidates(s)
        self.brush.max = max(self.brush.max, s.brush_radius)
        self.brush.value = s.brush_radius
        self.opacity.value = s.opacity
        if self.mode == "instance":
            self._render_instances(s)

    def _render_candidates(self, s: ToolbarState) -> None:
        b = self.candidate_button
        b.disabled = s.candidates < 2
        b.description = f"{s.candidate + 1}/{s.candidates}" if s.candidates >= 2 else ""
        b.button_style = "warning" if s.candidates >= 2 and s.doubt else ""
        b.tooltip = (
            "other shapes are likely better: press n to see them" if s.doubt else "the model's next candidate mask (n)"
        )

    def _render_instances(self, s: ToolbarState) -> None:
        if s.instances != self._instances_key:
            self._instances_key = list(s.instances)
            self.instance_chips = {}
            for k, label, color in s.instances:
                chip = _button(
                    f"{k} {label}",
                    "",
                    f"instance {k} ({label}); click to select",
                    "gt-instance-chip",
                    self._say("instance", k),
                )
                chip.add_class(f"gt-instance-{k}")
                chip.style.button_color = color
                self.instance_chips[k] = chip
            add = _button(
                "",
                "plus",
                "add an instance of the current label (i)",
                "gt-action-add-instance",
                self._say("action", "add_instance"),
            )
            rel = _button(
                "",
                "tag",
                "give the selected instance the current label",
                "gt-action-relabel",
                self._say("action", "relabel"),
            )
            dele = _button(
                "", "times", "delete the selected instance (Delete)", "gt-action-delete", self._say("action", "delete")
            )
            self.instances_row.children = [*self.instance_chips.values(), add, rel, dele]
        for k, chip in self.instance_chips.items():
            _set_class(chip, "gt-label-selected", k == s.selected)

    def show_status(self, text: str) -> None:
        """The status line."""
        self.status.value = f"<span>{html.escape(text)}</span>"

    def set_note(self, text: str) -> None:
        """What the model does now (shown while it is busy)."""
        self._note = text
        if self._busy:
            self._show_busy()

    def set_busy(self, busy: bool) -> None:
        """The model started / finished interactive work."""
        self._busy = busy
        self._show_busy()

    def set_refining(self, on: bool) -> None:
        """A refined second pass started / ended ("refining…" while nothing else runs)."""
        self._refining = on
        self._show_busy()

    def _show_busy(self) -> None:
        note = (self._note or "model working") if self._busy else "refining…" if self._refining else None
        self.show_busy(note)

    def show_busy(self, note: str | None) -> None:
        """The busy mark: a CSS spinner and what the model does (None hides it)."""
        if note is None:
            self.busy.value = ""
            return
        self.busy.value = (
            f'<span title="the model is working; your clicks are queued"><span class="gt-spinner"></span>'
            f"{html.escape(note)}</span>"
        )
