"""Label names (the one rule set every part of gt_widget uses) and the label category configuration file.

``validate_label_names`` is the only place that decides whether a list of label names is usable; the widget,
``LabelingSession``, ``gt-widget segment`` and job creation all call it, so a name accepted while labeling is
never refused when the job is built.

Facts (../shared/reference/ground-truth.md §3.1, §4, §8; botocore's ``LabelCategoryConfigS3Uri``
documentation): ``{"document-version": "2018-11-28", "labels": [{"label": "cat"}, ...]}``, optionally with
``"instructions": {"shortInstruction", "fullInstruction"}``; labels are unique, at most 256 characters;
semantic segmentation needs at least one label. A class named ``Background`` appears in a real job's output
beside index 0's ``BACKGROUND`` (§8), so only the exact name ``BACKGROUND`` is refused.

Choices where the reference is silent:
- a label may not be empty/blank and may not contain control characters or line/paragraph separators
  (newline, tab, U+2028...): a worker cannot type or see them, and they break single-line UI text;
- ``BACKGROUND`` (exactly, case-sensitive) is refused: it is the class name of index 0 in
  ``internal-color-map``, and the developer guide's adjustment-template recipe drops every entry whose
  ``class-name`` is ``BACKGROUND``, so a label of that name would vanish from adjustment jobs;
- at most 255 labels, because the consolidated PNG is 8-bit with index 0 = BACKGROUND (palette.MAX_LABELS).
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gt_widget.errors import FormatError, LabelError
from gt_widget.fileio import atomic_write_text
from gt_widget.palette import BACKGROUND_LABEL, MAX_LABELS

DOCUMENT_VERSION = "2018-11-28"
MAX_LABEL_CHARS = 256


_INVISIBLE = ("Cc", "Zl", "Zp")  # control characters, U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR


def _as_list(labels: Any) -> list[Any]:
    if isinstance(labels, (str, bytes)):
        raise LabelError([f"labels must be a list of strings, not one string: use [{labels!r}]"])
    if labels is None or not isinstance(labels, Iterable):
        raise LabelError([f"labels must be a list of strings like ['cat', 'dog'], got {labels!r}"])
    return list(labels)


def label_problems(labels: Iterable[Any]) -> list[str]:
    """One line per broken rule of a label list (empty when the list is usable)."""
    try:
        items = _as_list(labels)
    except LabelError as exc:
        return exc.problems
    problems: list[str] = []
    if not items:
        problems.append("labels: the list is empty; give at least one label, e.g. ['cat', 'dog']")
    if len(items) > MAX_LABELS:
        problems.append(f"labels: {len(items)} labels given; at most {MAX_LABELS} fit in Ground Truth's 8-bit PNG")
    seen: set[str] = set()
    for i, label in enumerate(items):
        where = f"labels[{i}]"
        if not isinstance(label, str):
            problems.append(f"{where}: {label!r} is a {type(label).__name__}; every label must be a string")
            continue
        if not label.strip():
            problems.append(f"{where}: {label!r} is blank; every label needs visible text")
        elif len(label) > MAX_LABEL_CHARS:
            problems.append(f"{where}: {label[:40]!r}... has {len(label)} characters; at most {MAX_LABEL_CHARS}")
        if any(unicodedata.category(ch) in _INVISIBLE for ch in label):
            problems.append(
                f"{where}: {label!r} contains a control character or line break (newline, tab, U+2028...); remove it"
            )
        if label == BACKGROUND_LABEL:
            problems.append(f"{where}: {label!r} is reserved for unlabeled pixels (index 0); choose another name")
        if label in seen:
            problems.append(
                f"{where}: {label!r} appears twice; labels must be unique (no duplicates: Ground Truth's rule)"
            )
        seen.add(label)
    return problems


def validate_label_names(labels: Any) -> list[str]:
    """``labels`` as a new list of names Ground Truth accepts, else ``LabelError`` listing every problem.

    The one label rule set (module doc): a non-empty list of at most 255 unique strings, each with visible
    text, at most 256 characters, no control characters or line breaks, and not ``BACKGROUND``.
    """
    items = _as_list(labels)
    problems = label_problems(items)
    if problems:
        raise LabelError(problems)
    return items


def check_labels(labels: Iterable[Any]) -> list[str]:
    """Alias of ``validate_label_names`` (kept for existing callers)."""
    return validate_label_names(labels)


def label_config(
    labels: Sequence[str], *, short_instruction: str | None = None, full_instruction: str | None = None
) -> dict[str, Any]:
    """The label category configuration document for ``labels`` (optionally with instructions, §4)."""
    config: dict[str, Any] = {
        "document-version": DOCUMENT_VERSION,
        "labels": [{"label": label} for label in check_labels(labels)],
    }
    if short_instruction or full_instruction:
        config["instructions"] = {
            "shortInstruction": short_instruction or "",
            "fullInstruction": full_instruction or "",
        }
    return config


def label_config_json(labels: Sequence[str], **kwargs: Any) -> str:
    """``label_config`` serialised as Ground Truth reads it (UTF-8 JSON, non-ASCII kept)."""
    return json.dumps(label_config(labels, **kwargs), indent=2, ensure_ascii=False) + "\n"


def write_label_config(path: str | os.PathLike[str], labels: Sequence[str], **kwargs: Any) -> Path:
    """Write the label category configuration file atomically; returns its path."""
    return atomic_write_text(path, label_config_json(labels, **kwargs))


def parse_label_config(document: Mapping[str, Any] | str | bytes) -> list[str]:
    """The labels of a label category configuration (a dict or its JSON text), checked."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise FormatError(f"label category configuration is not valid JSON: {exc}") from None
    if not isinstance(document, Mapping):
        raise FormatError("label category configuration must be a JSON object with 'document-version' and 'labels'")
    version = document.get("document-version")
    if version != DOCUMENT_VERSION:
        raise FormatError(
            f"label category configuration has document-version {version!r}; image segmentation uses "
            f"{DOCUMENT_VERSION!r} (the 2020-03-01 format is for video and 3D point clouds)"
        )
    entries = document.get("labels")
    if not isinstance(entries, list):
        raise FormatError("label category configuration needs a 'labels' list of {\"label\": name} objects")
    names: list[Any] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "label" not in entry:
            raise FormatError(f'labels[{i}] is {entry!r}; each entry must be an object like {{"label": "cat"}}')
        names.append(entry["label"])
    problems = label_problems(names)
    if problems:
        raise FormatError("label category configuration: " + "; ".join(problems))
    return names


def read_label_config(path: str | os.PathLike[str]) -> list[str]:
    """Read a label category configuration file; returns its labels."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read label category configuration {str(path)!r}: {exc}") from None
    return parse_label_config(data)
