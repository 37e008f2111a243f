"""A labeling session's options, checked before anything is written (a retry with fixed options must work).

Rules (reference §3.2, §8): labels as ``groundtruth.labels`` checks them; mode ``semantic`` or ``instance``;
the label attribute defaults to ``label-ref`` (semantic, must end in ``-ref``) or ``label`` (instance, must
not); attribute and job name use letters, digits and hyphens (Ground Truth's LabelingJobName rule).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gt_widget.errors import GtWidgetError
from gt_widget.groundtruth.labels import validate_label_names
from gt_widget.groundtruth.output import check_custom_attribute

_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


class SessionError(GtWidgetError, ValueError):
    """A session cannot start or continue (bad labels/mode/names, an output folder of another session)."""


@dataclass(frozen=True)
class SessionOptions:
    """The checked options: label names, ``mode``, ``label_attribute`` and ``job_name``."""

    labels: list[str]
    mode: str
    label_attribute: str
    job_name: str


def check_options(labels: Sequence[str], mode: str, label_attribute: str | None, job_name: str) -> SessionOptions:
    """The options, or ``SessionError`` saying what to pass instead."""
    names = validate_label_names(labels)
    if mode not in ("semantic", "instance"):
        raise SessionError(f"mode must be 'semantic' or 'instance', got {mode!r}")
    if label_attribute is None:
        label_attribute = "label" if mode == "instance" else "label-ref"
    if mode == "semantic" and not label_attribute.endswith("-ref"):
        raise SessionError(
            f"label_attribute {label_attribute!r} must end in '-ref' (semantic segmentation, reference §3.2), "
            f"e.g. {label_attribute + '-ref'!r}"
        )
    if mode == "instance":
        try:
            check_custom_attribute(label_attribute)
        except GtWidgetError as exc:
            raise SessionError(str(exc)) from None
    if not _NAME_RE.match(label_attribute) or len(label_attribute) > 127:
        raise SessionError(
            f"label_attribute {label_attribute!r} must use only letters, digits and hyphens (at most 127), "
            "e.g. 'label-ref'"
        )
    if not _NAME_RE.match(job_name) or len(job_name) > 63:
        raise SessionError(
            f"job_name {job_name!r} must be 1-63 letters, digits and hyphens, starting and ending with a "
            "letter or digit (Ground Truth's LabelingJobName rule), e.g. 'cats-2024'"
        )
    return SessionOptions(names, mode, label_attribute, job_name)
