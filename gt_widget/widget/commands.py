"""What keys and toolbar intents do: one table from action name to a call on the façade.

Keys are looked up in ``keys.SHORTCUTS`` (tool keys come from the tool registry); toolbar controls send
intents (``toolbar.Intent``). Both end in the same calls, so a shortcut and its button can never differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gt_widget.widget import keys
from gt_widget.widget.render import OVERLAY_STYLES
from gt_widget.widget.state import WidgetError, check_brush_radius
from gt_widget.widget.toolbar import ToolbarState

if TYPE_CHECKING:
    from gt_widget.widget.widget import SegmentationWidget

Navigate = Callable[[int], None]
"""A session's "go to the previous (-1) / next (+1) image" hook."""


class Commands:
    """Dispatches key actions and toolbar intents to the widget (see module docstring)."""

    def __init__(self, w: SegmentationWidget) -> None:
        self.w = w
        self.negative_once = False
        self.escapes = 0
        self.navigate: Navigate | None = None
        self.actions: dict[str, Callable[[], Any]] = {
            "undo": w.undo,
            "redo": w.redo,
            "fit": w.fit,
            "clear": w.clear,
            "next_candidate": w.next_candidate,
            "candidate": w.next_candidate,
            "zoom_in": lambda: w.screen.zoom_at_mouse(1.25),
            "zoom_out": lambda: w.screen.zoom_at_mouse(0.8),
            "toggle_polarity": self.toggle_polarity,
            "polarity": self.toggle_polarity,
            "negative_once": self.arm_negative,
            "enter": lambda: w.tools[w.tool].enter(w),
            "done": self.finish_object,
            "cancel": self.cancel,
            "remove_last": self.remove_last,
            "brush_bigger": lambda: setattr(w, "brush_radius", max(w.brush_radius + 1, round(w.brush_radius * 1.25))),
            "brush_smaller": lambda: setattr(
                w, "brush_radius", max(1, min(w.brush_radius - 1, round(w.brush_radius / 1.25)))
            ),
            "cycle_overlay": self.cycle_overlay,
            "outline": self.cycle_overlay,
            "add_instance": self.add_instance,
            "next_instance": lambda: self.step_instance(1),
            "previous_instance": lambda: self.step_instance(-1),
            "delete_instance": self.delete_selected,
            "delete": self.delete_selected,
            "relabel": self.relabel_selected,
            "previous_image": lambda: self.go(-1),
            "next_image": lambda: self.go(1),
            "help": self.toggle_help,
        }

    # ------------------------------------------------------------------ entry points

    def key(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> None:
        """A key pressed anywhere in the widget."""
        self.w._guard(lambda: self._key(key, shift, ctrl, meta))

    def _key(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        found = keys.lookup(key, shift, ctrl, meta)
        if found is None:
            return
        action, combo = found
        if action != "negative_once":
            self.negative_once = False
        if action != "cancel":
            self.escapes = 0
        if action.startswith("tool:"):
            self.w.tool = action.split(":", 1)[1]
        elif action == "label":
            i = int(combo) - 1
            if i < len(self.w.labels):
                self.w.label = self.w.labels[i]
        else:
            self.actions[action]()

    def intent(self, name: str, value: Any) -> None:
        """A toolbar intent: ("tool", name), ("label", name), ("action", name), ("brush", r), ("opacity", v),
        ("instance", id)."""
        w = self.w
        if name == "tool":
            w.tool = value
        elif name == "label":
            w.label = value
        elif name == "action":
            self.actions[value]()
        elif name == "brush":
            w.brush_radius = int(value)
        elif name == "opacity":
            w.opacity = float(value)
        elif name == "instance":
            self.finish_object()
            w.select_instance(int(value))

    def snapshot(self) -> ToolbarState:
        """What the toolbar shows now (see ``toolbar.ToolbarState``)."""
        w = self.w
        ed, st = w.editor, w.editor.state
        part = ed.live_part()
        n = len(part.prediction.candidates) if part is not None and part.prediction is not None else 0
        return ToolbarState(
            tool=w.tool, label=ed.label, labels=ed.labels, mode=ed.mode,
            positive=bool(getattr(w.tools["click"], "positive", True)), brush_radius=w.brush_radius,
            opacity=w.screen.opacity, overlay=w.screen.overlay, can_undo=bool(st.undo_stack), can_redo=bool(st.redo_stack),
            candidates=n, candidate=part.candidate if part is not None else 0, doubt=bool(part and part.unsure),
            instances=[(st.ids[k], i.label, i.color) for k, i in enumerate(st.instances)], selected=st.id_of(st.selected),
            help=w._help, correcting=w.tools[w.tool].correcting(w),
        )  # fmt: skip

    # ------------------------------------------------------------------ settings (the façade's property setters)

    def set_tool(self, name: str) -> None:
        """Activate tool ``name`` (the previous one finishes or drops what it had)."""
        w = self.w
        if name not in w.tools:
            raise WidgetError(f"unknown tool {name!r}; choose one of {list(w.tools)}")
        with w._lock:
            w.tools[w.tool].deactivate(w)
            w._tool = name
            w.say(w.tools[name].hint)
            w.refresh()

    def set_label(self, label: str) -> None:
        """Choose the label painting uses (instance mode: the label of new instances)."""
        self.finish_object()
        with self.w._lock:
            self.w.say(self.w.editor.set_label(label))
            self.w.refresh()

    def set_opacity(self, value: float) -> None:
        """Overlay fill opacity, 0..1."""
        with self.w._lock:
            self.w.screen.set_opacity(value)
            self.w.refresh()

    def set_brush(self, radius: int) -> None:
        """Brush / eraser radius in image pixels (>= 1)."""
        if check_brush_radius(radius) < 1:
            raise WidgetError(f"brush radius must be at least 1 pixel, got {radius!r}")
        with self.w._lock:
            self.w._brush_radius = int(radius)
            self.w.refresh()

    # ------------------------------------------------------------------ actions

    def take_negative_once(self) -> bool:
        """Whether Shift armed a one-shot negative click (disarming it)."""
        armed, self.negative_once = self.negative_once, False
        return armed

    def arm_negative(self) -> None:
        self.negative_once = True

    def toggle_polarity(self) -> None:
        click = self.w.tools["click"]
        click.positive = not click.positive  # type: ignore[attr-defined]
        self.w.say("left clicks now " + ("add (+)" if click.positive else "remove (-)"))  # type: ignore[attr-defined]
        self.w.refresh()

    def cancel(self) -> None:
        """Escape: drop what is being placed, or keep the first answer of a refining pass; a second Escape
        in a row hands the keyboard back to the notebook."""
        w = self.w
        self.escapes += 1
        if w.tools[w.tool].cancel(w):
            w.say("cancelled. " + w.tools[w.tool].status_hint(w))
        elif w.assist.keep_first():
            w.say("kept the first answer (the refined pass was dropped)")
        elif w.tools[w.tool].finish(w):
            pass  # the object is done (its message is on the status line)
        elif self.escapes >= 2:
            self.escapes = 0
            w.scope.release()
            w.say("keyboard handed back to the notebook; click the image to label again")
        else:
            w.say("press Escape again to hand the keyboard back to the notebook")
        w.draw_interaction()

    def remove_last(self) -> None:
        if self.w.tools[self.w.tool].back(self.w):
            self.w.draw_interaction()

    def cycle_overlay(self) -> None:
        i = OVERLAY_STYLES.index(self.w.overlay_style)
        self.w.set_overlay(OVERLAY_STYLES[(i + 1) % len(OVERLAY_STYLES)])
        self.w.say(f"labels: {self.w.overlay_style}")

    def finish_object(self) -> None:
        """Enter / Done / a label or instance choice: the object being corrected is finished."""
        self.w.tools[self.w.tool].finish(self.w)

    def add_instance(self) -> None:
        if self.w.mode == "instance":
            self.finish_object()
            self.w.add_instance()

    def step_instance(self, step: int) -> None:
        w = self.w
        ids = w.instance_ids
        if w.mode == "instance" and ids:
            self.finish_object()
            sel = w.selected_instance
            w.select_instance(ids[(ids.index(sel) + step) % len(ids)] if sel else ids[0])

    def delete_selected(self) -> None:
        if self.w.mode != "instance":
            return
        if not self.w.selected_instance:
            raise WidgetError("select an instance first (click its chip, or use , and .)")
        self.w.delete_instance(self.w.selected_instance)

    def relabel_selected(self) -> None:
        if not self.w.selected_instance:
            raise WidgetError("select an instance first (click its chip, or use , and .)")
        self.w.relabel_instance(self.w.selected_instance, self.w.label)

    def go(self, step: int) -> None:
        """Previous / next image, when the widget belongs to a session."""
        if self.navigate is None:
            self.w.say("previous / next image keys work inside a LabelingSession")
            return
        self.navigate(step)

    def toggle_help(self) -> None:
        self.w._help = not self.w._help
        self.w.refresh()
