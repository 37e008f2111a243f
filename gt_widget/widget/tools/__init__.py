"""The widget's tools, one module each (see ``base.Tool`` and ``registry``)."""

from gt_widget.widget.tools.base import Host, Pointer, Sketch, Tool
from gt_widget.widget.tools.registry import TOOL_CLASSES, TOOLS, make_tools

__all__ = ["TOOLS", "TOOL_CLASSES", "Host", "Pointer", "Sketch", "Tool", "make_tools"]
