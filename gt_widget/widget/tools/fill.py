"""Fill: flood-fill the closed region under the pointer with the current label (key g)."""

from __future__ import annotations

from gt_widget.widget.tools.base import Host, Pointer, Tool


class FillTool(Tool):
    """Click inside a region bounded by other labels (or the image edge): it takes the current label.

    The region is the 4-connected set of pixels that hold the same value as the clicked one (as the
    template preview's fill and napari's labels fill do); one click = one undo step.
    """

    name = "fill"
    key = "g"
    icon = "tint"
    tooltip = "Fill: click a closed region to fill it with the current label (g)"
    hint = "Fill: click inside a closed region to fill it with the current label."

    def down(self, host: Host, p: Pointer) -> None:
        host.fill(p.x, p.y)
