"""Keyboard shortcuts: one table that both the key handler and the help panel read.

Keys are ``KeyboardEvent.key`` values as ipycanvas forwards them from the focused canvas (it calls
``preventDefault``, so JupyterLab does not also act on them). Ground Truth documents no shortcuts for the
2-D segmentation UI (reference §7); these follow napari's labels layer and common editors.
ipycanvas sends no key-up events and mouse events carry no buttons or modifiers, so "hold Shift" cannot be
observed: pressing Shift arms a one-shot negative click instead, and ``x`` toggles the click polarity.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    """Key combinations (normalised, see ``normalize``), the action name the widget dispatches, help text."""

    keys: tuple[str, ...]
    action: str
    help: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut(("1", "2", "3", "4", "5", "6", "7", "8", "9"), "label", "choose label 1-9 (the number before each label)"),
    Shortcut(("a",), "tool:auto", "auto-segment: click the 4 extreme points (top, bottom, left, right)"),
    Shortcut(("c",), "tool:click", "corrective clicks on the last auto-segmented mask"),
    Shortcut(("x",), "toggle_polarity", "corrective clicks: switch between adding (+) and removing (-)"),
    Shortcut(("shift",), "negative_once", "the next corrective click removes (-)"),
    Shortcut(("b",), "tool:brush", "brush"),
    Shortcut(("e",), "tool:eraser", "eraser"),
    Shortcut(("p",), "tool:polygon", "polygon: click vertices, close on the first vertex or Enter"),
    Shortcut(("h", " "), "tool:pan", "pan (drag the image)"),
    Shortcut(("enter",), "polygon_close", "close the polygon being drawn"),
    Shortcut(("escape",), "cancel", "cancel the polygon or the extreme points being placed"),
    Shortcut(("backspace",), "remove_last", "remove the last polygon vertex / extreme point"),
    Shortcut(("z", "ctrl+z"), "undo", "undo"),
    Shortcut(("y", "shift+z", "ctrl+y", "ctrl+shift+z"), "redo", "redo"),
    Shortcut(("n",), "next_candidate", "next candidate mask of the last auto-segment"),
    Shortcut(("+", "="), "zoom_in", "zoom in (at the mouse)"),
    Shortcut(("-", "_"), "zoom_out", "zoom out"),
    Shortcut(("f", "0"), "fit", "fit the image to the canvas"),
    Shortcut(("]",), "brush_bigger", "larger brush"),
    Shortcut(("[",), "brush_smaller", "smaller brush"),
    Shortcut(("o",), "toggle_overlay", "hide / show the labels"),
    Shortcut(("i",), "add_instance", "instance mode: add an instance of the current label"),
    Shortcut((".",), "next_instance", "instance mode: select the next instance"),
    Shortcut((",",), "previous_instance", "instance mode: select the previous instance"),
    Shortcut(("delete",), "delete_instance", "instance mode: delete the selected instance"),
    Shortcut(("?",), "help", "show / hide this help"),
)

_NAMED = {"Enter": "enter", "Escape": "escape", "Esc": "escape", "Backspace": "backspace", "Delete": "delete"}
_NAMED.update({"Shift": "shift", "Spacebar": " "})


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
    return {" ": "space"}.get(key, key)


def help_html(mode: str = "semantic") -> str:
    """The help panel: every shortcut of ``SHORTCUTS`` plus the mouse gestures, as an HTML table."""
    rows = []
    for s in SHORTCUTS:
        if s.action in ("add_instance", "next_instance", "previous_instance", "delete_instance") and mode != "instance":
            continue
        keys = " / ".join(f"<kbd>{html.escape(_show(k))}</kbd>" for k in s.keys)
        if s.action == "label":
            keys = "<kbd>1</kbd> ... <kbd>9</kbd>"
        rows.append(f"<tr><td>{keys}</td><td>{html.escape(s.help)}</td></tr>")
    mouse = (
        "<p><b>Mouse</b>: click the canvas first so it receives keys. Auto: 4 clicks on the extreme points of "
        "one object; 4 more on a part it missed add to the same mask. Brush/eraser: drag (one drag = one undo "
        "step); the brush overwrites other labels. Wheel: zoom at the mouse. Pan: drag.</p>"
    )
    return (
        '<div class="gt-widget-help"><table><thead><tr><th>key</th><th>does</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
        + mouse
        + "</div>"
    )
