"""The labeling widget (ipycanvas) and labeling sessions."""

from gt_widget.widget.session import LabelingSession, SessionError
from gt_widget.widget.widget import SegmentationWidget

__all__ = ["LabelingSession", "SegmentationWidget", "SessionError"]
