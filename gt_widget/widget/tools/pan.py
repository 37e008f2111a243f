"""Pan: drag the image; the wheel zooms."""

from __future__ import annotations

from gt_widget.widget.tools.base import Host, Pointer, Tool


class PanTool(Tool):
    """Drag to move the view (canvas pixels)."""

    name = "pan"
    key = "h"
    icon = "arrows"
    tooltip = "Pan: drag the image; wheel zooms (h / space)"
    hint = "Pan: drag the image; wheel zooms."
    cursor = "grab"
    needs_image = False

    def __init__(self) -> None:
        self.last: tuple[float, float] | None = None

    def down(self, host: Host, p: Pointer) -> None:
        self.last = (p.cx, p.cy)

    def move(self, host: Host, p: Pointer) -> None:
        if self.last is not None:
            host.pan(p.cx - self.last[0], p.cy - self.last[1])
            self.last = (p.cx, p.cy)

    def up(self, host: Host, p: Pointer, out: bool = False) -> None:
        self.last = None
