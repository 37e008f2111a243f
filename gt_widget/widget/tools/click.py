"""Corrective clicks: left click adds to the last mask, right click / Shift+click (or x) removes."""

from __future__ import annotations

from gt_widget.widget.tools.base import Host, Pointer, Tool


class ClickTool(Tool):
    """Each click refines the model's last mask; without one, a positive click segments the object."""

    name = "click"
    key = "c"
    icon = "hand-pointer-o"
    tooltip = "Corrective clicks: left adds, right or Shift removes; x flips (c)"
    hint = "Clicks: left click adds (+), right click or Shift+click removes (-); x flips the left button."

    def __init__(self) -> None:
        self.positive = True

    def down(self, host: Host, p: Pointer) -> None:
        positive = self.positive != p.negative
        host.corrective_click(p.x, p.y, positive=positive, wait=False)
