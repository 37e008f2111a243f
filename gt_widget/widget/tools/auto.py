"""Auto-segment: 4 extreme points of an object; right click / Shift+click corrects the last mask."""

from __future__ import annotations

import math

from gt_widget.widget.tools.base import Host, PlacingTool, Pointer, Sketch

MIN_POINT_GAP = 6.0
"""An extreme point closer than this many canvas pixels to an earlier one is ignored (a double click)."""


class AutoTool(PlacingTool):
    """Collects 4 extreme points, then asks the model; placed points and their box stay visible."""

    name = "auto"
    key = "a"
    icon = "magic"
    tooltip = "Auto-segment: click the 4 extreme points of an object (a)"
    hint = (
        "Auto-segment: click the 4 extreme points (top, bottom, left, right) of an object; "
        "right click or Shift+click removes from the last mask."
    )

    @property
    def points(self) -> list[tuple[float, float]]:
        """The points placed so far (image pixels)."""
        return self.placed

    def down(self, host: Host, p: Pointer) -> None:
        if p.negative:
            host.corrective_click(p.x, p.y, positive=False, wait=False)
            return
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
        host.auto_segment(pts, wait=False)

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
