"""Polygon: click vertices; the first vertex or Enter closes it, Escape cancels, Backspace drops one."""

from __future__ import annotations

import math

from gt_widget.widget.tools.base import Host, PlacingTool, Pointer, Sketch

CLOSE_DISTANCE = 8.0
"""A polygon closes when clicked within this many canvas pixels of its first vertex."""


class PolygonTool(PlacingTool):
    """Collects vertices; closing fills the polygon (one undo step) and clears its outline."""

    name = "polygon"
    key = "p"
    icon = "pencil-square-o"
    tooltip = "Polygon: click the corners, Enter or the first corner closes (p)"
    hint = "Polygon: click the corners; click the first corner or press Enter to close, Escape cancels."
    """(Worded as the template preview's; "N vertices" is only the in-progress status, gone once closed.)"""

    @property
    def vertices(self) -> list[tuple[float, float]]:
        """The vertices placed so far (image pixels)."""
        return self.placed

    def down(self, host: Host, p: Pointer) -> None:
        if len(self.vertices) >= 3:
            fx, fy = host.view.to_canvas(*self.vertices[0])
            if math.hypot(p.cx - fx, p.cy - fy) <= CLOSE_DISTANCE:
                self.close(host)
                return
        self.vertices.append((p.x, p.y))
        host.say(f"polygon: {len(self.vertices)} vertices (Enter closes, Escape cancels)")
        host.draw_interaction()

    def move(self, host: Host, p: Pointer) -> None:
        if self.vertices:
            host.draw_interaction()

    def close(self, host: Host) -> None:
        """Fill the polygon and forget it (its outline and rubber band go with the redraw)."""
        verts, self.placed = self.placed, []
        host.polygon(verts)

    def enter(self, host: Host) -> bool:
        if len(self.vertices) < 3:
            if self.vertices:
                host.say(f"a polygon needs at least 3 vertices; it has {len(self.vertices)}")
            return bool(self.vertices)
        self.close(host)
        return True

    def draw(self, host: Host, sketch: Sketch) -> None:
        if not self.vertices:
            return
        color = host.editor.paint_color()
        pts = [host.view.to_canvas(x, y) for x, y in self.vertices]
        band = [*pts, host.mouse] if host.mouse is not None else pts
        sketch.lines(band, color)
        for cx, cy in pts:
            sketch.rect(cx - 3, cy - 3, 6, 6, fill=color)
