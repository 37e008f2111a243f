"""Kernel-side segmentation: ``load_segmenter("mobilesam" | "grabcut")`` -> a ``Segmenter``.

See ``gt_widget.segment.base`` for the conventions shared by every segmenter.
"""

from __future__ import annotations

from gt_widget.segment.base import Candidate, Click, Point, Prediction, Segmenter

__all__ = ["Candidate", "Click", "Point", "Prediction", "Segmenter", "load_segmenter"]


def load_segmenter(name: str | None = None, **kwargs: object) -> Segmenter:
    """Placeholder until the segmentation engine lands (issue 4)."""
    raise NotImplementedError("segmentation engine under construction")
