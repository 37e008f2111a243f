"""The tool registry: the one list from which the toolbar, the shortcut table and the help are made.

Adding a tool = one module with a ``Tool`` subclass + one line here.
"""

from __future__ import annotations

from gt_widget.widget.tools.auto import AutoTool
from gt_widget.widget.tools.base import Tool
from gt_widget.widget.tools.brush import BrushTool, EraserTool
from gt_widget.widget.tools.click import ClickTool
from gt_widget.widget.tools.fill import FillTool
from gt_widget.widget.tools.pan import PanTool
from gt_widget.widget.tools.polygon import PolygonTool
from gt_widget.widget.tools.proposal import ProposalTool

TOOL_CLASSES: tuple[type[Tool], ...] = (
    AutoTool,
    ClickTool,
    BrushTool,
    EraserTool,
    PolygonTool,
    FillTool,
    ProposalTool,
    PanTool,
)
"""Toolbar order."""

TOOLS: tuple[str, ...] = tuple(t.name for t in TOOL_CLASSES)


def make_tools() -> dict[str, Tool]:
    """One fresh instance of every tool, by name (each widget has its own: tools hold transient state)."""
    return {cls.name: cls() for cls in TOOL_CLASSES}
