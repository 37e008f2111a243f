"""Auto-segment: 4 extreme points of an object, then corrective clicks on it (like CVAT and SAM's demo).

Straight after an auto-segment, in this tool and without a mode switch, a LEFT click adds a missed part
(positive corrective click) and a RIGHT click or Shift+click removes a wrong one (negative); each refines the
object's mask. Enter, Escape, the Done button (``.gt-action-done``), choosing a label or an instance, or
another tool finishes the object: the next left clicks place the extreme points of a new one. The template
preview (``js/src/tools.js``) follows the same rules.
"""

from __future__ import annotations

import math

import numpy as np

from gt_widget.widget.tools.base import Host, PlacingTool, Pointer, Sketch

MIN_POINT_GAP = 6.0
"""An extreme point closer than this many canvas pixels to an earlier one is ignored (a double click)."""

CORRECTING_HINT = (
    "Left click adds a missed part, right click (or Shift+click) removes a wrong one; "
    "Enter (or Done): finish, next object."
)
"""What the status line says while the last auto-segment can be corrected."""


class AutoTool(PlacingTool):
    """Collects 4 extreme points, then asks the model; placed points and their box stay visible. Afterwards
    clicks correct that object until it is finished (see module docstring)."""

    name = "auto"
    key = "a"
    icon = "magic"
    tooltip = "Auto-segment: click the 4 extreme points of an object, then left/right clicks correct it (a)"
    hint = (
        "Auto-segment: click the 4 extreme points (top, bottom, left, right) of an object; then left click "
        "adds, right click or Shift+click removes, Enter finishes the object."
    )

    def __init__(self) -> None:
        super().__init__()
        self.object: list[tuple[float, float]] | None = None
        """Extreme points of the object being corrected (None: the next left click is an extreme point)."""

    @property
    def points(self) -> list[tuple[float, float]]:
        """The points placed so far (image pixels)."""
        return self.placed

    def correcting(self, host: Host) -> bool:
        """Whether clicks now correct the last auto-segment: it is not finished, and its mask is still the
        live one (or its answer is on the way). Undo back to an earlier object, or any other edit, ends it."""
        if self.object is None or self.placed:
            return False
        part = host.editor.live_part()
        if part is None or part.extreme_points is None:
            return part is None and host.busy
        ext = np.asarray(part.extreme_points, float)
        return ext.shape == (4, 2) and bool(np.allclose(ext, self.object))

    def status_hint(self, host: Host) -> str:
        return CORRECTING_HINT if self.correcting(host) else self.hint

    def down(self, host: Host, p: Pointer) -> None:
        if self.correcting(host):
            host.corrective_click(p.x, p.y, positive=not p.negative, wait=False)
            return
        if p.negative:
            what = "finish placing the 4 extreme points first" if self.points else "auto-segment an object first"
            host.say(f"right click / Shift+click removes a wrong part of the last auto-segment: {what}")
            return
        self.object = None
        view = host.view
        for x, y in self.points:
            cx, cy = view.to_canvas(x, y)
            if math.hypot(cx - p.cx, cy - p.cy) < MIN_POINT_GAP:
                host.say(
                    f"ignored: that point is on top of extreme point {self.points.index((x, y)) + 1}; "
                    "click the object's other extremes"
                )
                return
        self.points.append((p.x, p.y))
        n = len(self.points)
        if n < 4:
            host.say(f"extreme point {n}/4")
            host.draw_interaction()
            return
        pts, self.placed = self.placed, []
        host.say("segmenting...")
        host.draw_interaction()
        self.object = pts
        try:
            host.auto_segment(pts, wait=False)
        except Exception:
            self.object = None
            raise

    def enter(self, host: Host) -> bool:
        return self.finish(host)

    def deactivate(self, host: Host) -> None:
        self.cancel(host)
        self.finish(host)

    def finish(self, host: Host) -> bool:
        """End the corrective clicks on the last object (the next left clicks start a new one); True when an
        object was being corrected."""
        was = self.correcting(host)
        self.object = None
        if was:
            host.object_finished()
        return was

    def move(self, host: Host, p: Pointer) -> None:
        """With 3 points placed, the pointer is the 4th: preview its mask (live preview, issue 13)."""
        if len(self.points) == 3:
            host.preview_extreme([*self.points, (p.x, p.y)])

    def up(self, host: Host, p: Pointer, out: bool = False) -> None:
        if out and len(self.points) == 3:
            host.preview_extreme(None)

    def cancel(self, host: Host) -> bool:
        host.preview_extreme(None)
        return super().cancel(host)

    def back(self, host: Host) -> bool:
        host.preview_extreme(None)
        return super().back(host)

    def draw(self, host: Host, sketch: Sketch) -> None:
        view = host.view
        color = host.editor.paint_color()
        pts = [view.to_canvas(x, y) for x, y in self.points]
        if len(pts) >= 2:
            xs, ys = [c[0] for c in pts], [c[1] for c in pts]
            sketch.rect(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), stroke=color)
        for cx, cy in pts:
            sketch.circle(cx, cy, 6, fill=color, stroke="white")
