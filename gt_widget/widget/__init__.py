"""The labeling widget (ipycanvas) and labeling sessions."""

from gt_widget.widget.widget import SegmentationWidget

__all__ = ["SegmentationWidget"]
