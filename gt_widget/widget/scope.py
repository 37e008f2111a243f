"""The widget's keyboard and pointer scope in the browser: a tiny anywidget whose script guards its
``.gt-labeling-session`` (or else ``.gt-widget``) ancestor: the session's navigation bar is inside it too.

Why: ipycanvas forwards keys only from the focused canvas, sends no mouse button or modifier, and a key
pressed with any other control of the widget focused (a toolbar button, a slider) would reach JupyterLab /
Notebook 7 and act on the notebook (``x`` cuts the cell, ``a`` inserts one, ``dd`` deletes, Shift+Enter
re-runs). The script therefore:
- catches every keydown whose target lies inside the widget on ``window`` in the capture phase (before
  JupyterLab's document-level handlers), stops it and forwards it to the kernel (``{"type": "key"}``); in
  a text box (the session's jump box) typing works normally, only Enter and Escape are taken;
- suppresses the context menu on the canvas and forwards right clicks and Shift+clicks with their button
  (``{"type": "pointer"}``, canvas pixels as ipycanvas reports them), preventing the plain mouse events;
- focuses the canvas when the pointer enters it and after any click on a control of the widget;
- on ``{"type": "release"}`` from the kernel (Escape twice) gives the focus back to the notebook;
- on ``{"type": "trace"}`` (only with ``GT_WIDGET_TRACE=1``) appends a request's hop timings to
  ``window.__gtTrace`` for the browser benchmark.
The kernel side is ``KeyScope``: it calls ``on_key(key, shift, ctrl, meta)`` and
``on_pointer(kind, cx, cy, button, shift)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from gt_widget.widget.runs import PAGE_JS

ESM = (
    PAGE_JS
    + r"""
function initialize({ model }) {
  // palette runs for the overlay and preview layers once ipycanvas is patched in this page (runs.py)
  gtPatchCanvas(model).then((ok) => { if (ok) model.send({ type: "runs_ready" }); });
}

function render({ model, el }) {
  el.style.display = "none";
  const canvasOf = (root) => {
    // ipycanvas 0.14 draws a MultiCanvas into one <canvas> that carries the class itself
    const own = root.querySelector("canvas.gt-widget-canvas");
    if (own) return own;
    const all = root.querySelectorAll(".gt-widget-canvas canvas");
    return all.length ? all[all.length - 1] : null;
  };
  const typing = (t) => t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  const focusCanvas = (root) => {
    const c = canvasOf(root);
    if (c) { if (!c.hasAttribute("tabindex")) c.tabIndex = 0; c.focus({ preventScroll: true }); }
  };
  let root = null;
  const onKey = (e) => {
    if (!root || !root.isConnected || !root.contains(e.target)) return;
    if (typing(e.target) && e.key !== "Enter" && e.key !== "Escape") { e.stopPropagation(); return; }
    // Tab keeps moving the focus between controls (keyboard users); modifiers alone do nothing
    if (e.key === "Tab" || ["Control", "Alt", "Meta"].includes(e.key)) { e.stopPropagation(); return; }
    e.preventDefault(); e.stopPropagation(); e.stopImmediatePropagation();
    const target = typing(e.target) ? "input" : "widget";
    const value = typing(e.target) ? String(e.target.value) : "";
    model.send({ type: "key", key: e.key, shift: e.shiftKey, ctrl: e.ctrlKey, meta: e.metaKey, target, value });
  };
  const onMenu = (e) => {
    // JupyterLab opens its own menu from a document-level capture listener: stop it on window first
    if (!root || !root.isConnected || !root.contains(e.target) || !e.target.closest(".gt-widget-canvas")) return;
    e.preventDefault(); e.stopPropagation(); e.stopImmediatePropagation();
  };
  const onKeyUp = (e) => { if (root && root.isConnected && root.contains(e.target)) e.stopPropagation(); };
  const onPointer = (e) => {
    const c = canvasOf(root);
    if (!c || !(e.button === 2 || e.shiftKey)) return;
    const frame = e.target.closest ? e.target.closest(".gt-widget-canvas") : null;
    if (!frame) return;
    e.preventDefault(); e.stopPropagation();
    const r = c.getBoundingClientRect();
    const cx = (e.clientX - r.left) * c.width / r.width, cy = (e.clientY - r.top) * c.height / r.height;
    model.send({ type: "pointer", kind: "down", x: cx, y: cy, button: e.button, shift: e.shiftKey });
    focusCanvas(root);
  };
  const attach = () => {
    root = el.closest(".gt-labeling-session") || el.closest(".gt-widget");
    if (!root) { setTimeout(attach, 100); return; }
    if (root.dataset.gtScope === "1") return;
    root.dataset.gtScope = "1";
    window.addEventListener("keydown", onKey, true);
    window.addEventListener("keyup", onKeyUp, true);
    window.addEventListener("keypress", onKeyUp, true);
    root.addEventListener("pointerdown", onPointer, true);
    window.addEventListener("contextmenu", onMenu, true);
    root.addEventListener("pointerover", (e) => {
      if (e.target.closest && e.target.closest(".gt-widget-canvas") && !typing(document.activeElement)) focusCanvas(root);
    });
    root.addEventListener("click", (e) => {
      if (!typing(e.target) && !(e.target.closest && e.target.closest(".widget-slider"))) setTimeout(() => focusCanvas(root), 0);
    });
  };
  attach();
  model.on("msg:custom", (msg) => {
    if (!root) return;
    if (msg.type === "focus") focusCanvas(root);
    if (msg.type === "trace") (window.__gtTrace = window.__gtTrace || []).push(msg.record);
    if (msg.type === "release") {
      if (document.activeElement && root.contains(document.activeElement)) document.activeElement.blur();
      const nb = root.closest(".jp-Notebook") || root.closest(".jp-NotebookPanel-notebook");
      if (nb) nb.focus();
    }
  });
  return () => {
    window.removeEventListener("keydown", onKey, true);
    window.removeEventListener("keyup", onKeyUp, true);
    window.removeEventListener("keypress", onKeyUp, true);
    window.removeEventListener("contextmenu", onMenu, true);
    if (root) delete root.dataset.gtScope;
  };
}
export default { initialize, render };
"""
)

KeyHandler = Callable[[str, bool, bool, bool], None]
PointerHandler = Callable[[str, float, float, int, bool], None]
InputKeyHandler = Callable[[str, str], None]
"""``handler(key, value)``: Enter or Escape in a text box of the widget, with the box's text."""


class KeyScope(anywidget.AnyWidget):  # type: ignore[misc]
    """Kernel side of the key/pointer scope (see module docstring)."""

    _esm = traitlets.Unicode(ESM).tag(sync=True)
    canvas_ref = traitlets.Unicode("").tag(sync=True)
    """Model id of one ipycanvas ``Canvas`` layer: the page patches its class to draw palette runs
    (``runs.PAGE_JS``); empty: no patch."""

    def __init__(self, on_key: KeyHandler, on_pointer: PointerHandler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_key = on_key
        self._on_pointer = on_pointer
        self.on_runs_ready: Callable[[], None] | None = None
        """The page drew no runs before and now can (``runs.PAGE_JS`` patched ipycanvas there)."""
        self.on_input_key: InputKeyHandler | None = None
        """Keys typed in a text box of the widget (Enter, Escape): a session's jump box uses it."""
        self.on_msg(self._handle)

    def _handle(self, _widget: Any, content: dict[str, Any], _buffers: Any = None) -> None:
        """A message from the browser: {"type": "key", ...} or {"type": "pointer", ...}."""
        kind = content.get("type")
        if kind == "key":
            args = (
                str(content.get("key", "")),
                bool(content.get("shift")),
                bool(content.get("ctrl")),
                bool(content.get("meta")),
            )
            if content.get("target") == "input" and self.on_input_key is not None:
                self.on_input_key(args[0], str(content.get("value", "")))
            else:
                self._on_key(*args)
        elif kind == "runs_ready":
            if self.on_runs_ready is not None:
                self.on_runs_ready()
        elif kind == "pointer":
            x, y = float(content.get("x", 0.0)), float(content.get("y", 0.0))
            self._on_pointer(
                str(content.get("kind", "down")), x, y, int(content.get("button", 0)), bool(content.get("shift"))
            )

    def send_trace(self, record: dict[str, Any]) -> None:
        """Hand a request's hop timings (``assist.Trace``) to the page: ``window.__gtTrace`` collects them."""
        self.send({"type": "trace", "record": record})

    def focus(self) -> None:
        """Ask the browser to give the canvas the keyboard focus."""
        self.send({"type": "focus"})

    def release(self) -> None:
        """Ask the browser to hand the keyboard focus back to the notebook."""
        self.send({"type": "release"})
