"""Exceptions that users see. Every message says what went wrong *and what to do about it*."""

from __future__ import annotations


class GtWidgetError(Exception):
    """Base class of every error gt_widget raises on purpose."""


class ImageLoadError(GtWidgetError, ValueError):
    """An image could not be read or is not usable (unreadable file, bad array, too large)."""


class WeightsError(GtWidgetError, RuntimeError):
    """Model weights could not be located, downloaded or verified."""


class PromptError(GtWidgetError, ValueError):
    """Points, clicks or boxes given to a segmenter are malformed or outside the image."""


class FormatError(GtWidgetError, ValueError):
    """A Ground Truth file or payload (manifest, worker response, PNG) is malformed."""


class ValidationError(GtWidgetError, ValueError):
    """A request or configuration breaks a rule; ``problems`` lists one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class LabelError(ValidationError):
    """A list of label names breaks Ground Truth's label rules (``groundtruth.labels.validate_label_names``)."""


class GtWidgetWarning(UserWarning):
    """Something was accepted but may not be what the user meant (first frame of an animation, clipped floats,
    collinear extreme points...); the message says what was done and how to avoid it."""
