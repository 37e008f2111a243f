"""Keyboard shortcuts: one table that both the key handler and the help panel read.

Keys are ``KeyboardEvent.key`` values, forwarded by the widget's key scope (``scope.py``) from anywhere
inside the widget (or by ipycanvas from the focused canvas); neither lets them reach JupyterLab. Ground Truth documents no shortcuts for the
2-D segmentation UI (reference §7); these follow napari's labels layer and common editors.
Tool keys come from the tool registry (``tools.registry``), so a new tool brings its key along. Right click
and Shift+click arrive through the key scope; pressing Shift alone arms a one-shot negative click too.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from gt_widget.widget.tools.registry import TOOL_CLASSES


@dataclass(frozen=True)
class Shortcut:
    """Key combinations (normalised, see ``normalize``), the action name the widget dispatches, help text."""

    keys: tuple[str, ...]
    action: str
    help: str


_ACTIONS: tuple[Shortcut, ...] = (
    Shortcut(
        ("1", "2", "3", "4", "5", "6", "7", "8", "9"), "label", "choose label 1-9 (the number on each label chip)"
    ),
    Shortcut((" ",), "tool:pan", "pan (also h)"),
    Shortcut(("x",), "toggle_polarity", "corrective clicks: flip what the left button does (add / remove)"),
    Shortcut(("shift",), "negative_once", "the next corrective click removes (-)"),
    Shortcut(
        ("enter",),
        "enter",
        "auto-segment: finish the object (next clicks start a new one); polygon: close it; proposal tool: accept every confident proposal",
    ),
    Shortcut(
        ("escape",),
        "cancel",
        "cancel what is being placed / keep the first answer / finish the object; twice: back to the notebook",
    ),
    Shortcut(("backspace",), "remove_last", "remove the last polygon vertex / extreme point"),
    Shortcut(("z", "ctrl+z"), "undo", "undo"),
    Shortcut(("y", "shift+z", "ctrl+y", "ctrl+shift+z"), "redo", "redo"),
    Shortcut(("n",), "next_candidate", "next candidate mask of the last auto-segment"),
    Shortcut(("+", "="), "zoom_in", "zoom in (at the mouse)"),
    Shortcut(("-", "_"), "zoom_out", "zoom out"),
    Shortcut(("f", "0"), "fit", "fit the image to the canvas"),
    Shortcut(("]",), "brush_bigger", "larger brush"),
    Shortcut(("[",), "brush_smaller", "smaller brush"),
    Shortcut(("o",), "cycle_overlay", "labels: fill + outline / outline only / hidden"),
    Shortcut(("i",), "add_instance", "instance mode: add an instance of the current label"),
    Shortcut((".",), "next_instance", "instance mode: select the next instance"),
    Shortcut((",",), "previous_instance", "instance mode: select the previous instance"),
    Shortcut(("delete",), "delete_instance", "instance mode: delete the selected instance"),
    Shortcut(("arrowleft", "pageup"), "previous_image", "session: previous image"),
    Shortcut(("arrowright", "pagedown"), "next_image", "session: next image"),
    Shortcut(("?",), "help", "show / hide this help"),
)

SHORTCUTS: tuple[Shortcut, ...] = (
    *(Shortcut((t.key,), f"tool:{t.name}", t.tooltip) for t in TOOL_CLASSES),
    *_ACTIONS,
)
"""Every shortcut: the tools' keys (from the registry) and the widget's actions."""

_NAMED = {"Enter": "enter", "Escape": "escape", "Esc": "escape", "Backspace": "backspace", "Delete": "delete"}
_NAMED.update({"Shift": "shift", "Spacebar": " ", "ArrowLeft": "arrowleft", "ArrowRight": "arrowright"})
_NAMED.update({"PageUp": "pageup", "PageDown": "pagedown"})


def normalize(key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> str:
    """A canonical combo: ``ctrl+`` for Ctrl or Cmd, ``shift+`` only with letters, letters lower-case."""
    name = _NAMED.get(key, key)
    if len(name) == 1 and name.isalpha():
        letter = name.lower()
        shifted = shift or name.isupper()
        name = ("shift+" if shifted else "") + letter
    prefix = "ctrl+" if (ctrl or meta) else ""
    return prefix + name


_INDEX: dict[str, Shortcut] = {k: s for s in SHORTCUTS for k in s.keys}


def lookup(key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> tuple[str, str] | None:
    """(action, normalised key) for a key event, or None when the key does nothing."""
    combo = normalize(key, shift, ctrl, meta)
    found = _INDEX.get(combo)
    return None if found is None else (found.action, combo)


def _show(key: str) -> str:
    return {" ": "space", "arrowleft": "←", "arrowright": "→"}.get(key, key)


_INSTANCE_ACTIONS = ("add_instance", "next_instance", "previous_instance", "delete_instance")


def help_html(mode: str = "semantic") -> str:
    """The help panel: every shortcut of ``SHORTCUTS`` plus the mouse gestures, as an HTML table."""
    rows = []
    for s in SHORTCUTS:
        if s.action in _INSTANCE_ACTIONS and mode != "instance":
            continue
        keys = " / ".join(f"<kbd>{html.escape(_show(k))}</kbd>" for k in s.keys)
        if s.action == "label":
            keys = "<kbd>1</kbd> ... <kbd>9</kbd>"
        rows.append(f"<tr><td>{keys}</td><td>{html.escape(s.help)}</td></tr>")
    mouse = (
        "<p><b>Mouse</b>: keys work wherever the focus is inside the widget. Auto: 4 clicks on the extreme "
        "points of one object; then, without switching tools, a left click adds a missed part and a right "
        "click (or Shift+click) removes a wrong one; Enter (or Done, Escape, a label key) finishes the object "
        "and the next 4 clicks start a new one. Click tool: left adds, right removes, any time. Brush/eraser: "
        "drag (one drag = one undo step); the brush overwrites other labels. Fill: click a closed region. "
        "Wheel: zoom at the mouse. Pan: drag.</p>"
    )
    return (
        '<div class="gt-widget-help-table"><table><thead><tr><th>key</th><th>does</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
        + mouse
        + "</div>"
    )
