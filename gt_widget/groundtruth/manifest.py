"""Input manifests (JSON Lines with ``source-ref``), written and read with Ground Truth's documented limits.

Facts (../shared/reference/ground-truth.md §3.1): UTF-8 JSON Lines separated by ``\\n`` or ``\\r\\n``; each
line an object with ``source-ref`` (an S3 URI, for images) or ``source`` (inline text); at most 100,000
characters per line and 20,000 per attribute; attribute names cannot start with ``$``; a semantic
segmentation dataset holds at most 20,000 items (100,000 for other task types). Extra keys pass through.

Choices where the reference is silent:
- an attribute's size is the length of its JSON-serialised value (what the line actually carries);
- blank lines are skipped when reading (a trailing newline is common), and never written;
- lines are written with ``ensure_ascii=False`` (UTF-8), keys in the order given, ``\\n`` separated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gt_widget.errors import FormatError, ValidationError
from gt_widget.fileio import atomic_write_text

MAX_LINE_CHARS = 100_000
MAX_ATTRIBUTE_CHARS = 20_000
MAX_ITEMS = {"semantic": 20_000, "instance": 100_000}
"""Dataset size quota by task type (instance segmentation runs as a custom job: the general quota)."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def line_problems(line: Any, *, require_s3: bool = True, where: str = "line") -> list[str]:
    """Every broken rule of one manifest line (a dict), one message each."""
    if not isinstance(line, Mapping):
        return [
            f'{where}: must be a JSON object like {{"source-ref": "s3://bucket/image.jpg"}}, got {type(line).__name__}'
        ]
    problems: list[str] = []
    if "source-ref" not in line and "source" not in line:
        problems.append(f"{where}: has neither 'source-ref' nor 'source'; image jobs need 'source-ref': 's3://...'")
    ref = line.get("source-ref")
    if "source-ref" in line:
        if not isinstance(ref, str) or not ref:
            problems.append(f"{where}: 'source-ref' must be a non-empty string, got {ref!r}")
        elif require_s3 and not ref.startswith("s3://"):
            problems.append(
                f"{where}: 'source-ref' is {ref[:200]!r}; Ground Truth reads images from S3, so it must be an "
                "s3://bucket/key URI (upload the file first, e.g. with `gt-widget job submit`)"
            )
    for key, value in line.items():
        if not isinstance(key, str):
            problems.append(f"{where}: attribute name {key!r} must be a string")
            continue
        if key.startswith("$"):
            problems.append(f"{where}: attribute name {key!r} starts with '$', which Ground Truth forbids; rename it")
        size = len(_dumps(value))
        if size > MAX_ATTRIBUTE_CHARS:
            problems.append(
                f"{where}: attribute {key!r} is {size} characters; Ground Truth allows at most "
                f"{MAX_ATTRIBUTE_CHARS} per attribute (store large data on S3 and reference it)"
            )
    try:
        size = len(_dumps(dict(line)))
    except (TypeError, ValueError) as exc:
        problems.append(f"{where}: cannot be written as JSON: {exc}")
    else:
        if size > MAX_LINE_CHARS:
            problems.append(f"{where}: is {size} characters; Ground Truth allows at most {MAX_LINE_CHARS} per line")
    return problems


def manifest_problems(lines: Sequence[Any], *, mode: str = "semantic", require_s3: bool = True) -> list[str]:
    """Every broken rule of a whole manifest (lines are numbered from 1, like a text editor)."""
    problems: list[str] = []
    if not lines:
        problems.append('manifest: it has no lines; add at least one {"source-ref": "s3://..."} line')
    limit = MAX_ITEMS.get(mode, MAX_ITEMS["instance"])
    if len(lines) > limit:
        problems.append(
            f"manifest: {len(lines)} items; a {mode} segmentation job takes at most {limit} (split it into jobs)"
        )
    for i, line in enumerate(lines):
        problems.extend(line_problems(line, require_s3=require_s3, where=f"manifest line {i + 1}"))
    return problems


def as_manifest_lines(items: Iterable[str | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Source URIs and/or line dicts -> line dicts (a string ``s`` becomes ``{"source-ref": s}``)."""
    return [{"source-ref": item} if isinstance(item, str) else dict(item) for item in items]


def dumps_manifest(lines: Sequence[Mapping[str, Any]], *, mode: str = "semantic", require_s3: bool = True) -> str:
    """JSON Lines text of a checked manifest (``ValidationError`` lists every problem)."""
    problems = manifest_problems(lines, mode=mode, require_s3=require_s3)
    if problems:
        raise ValidationError(problems)
    return "".join(_dumps(dict(line)) + "\n" for line in lines)


def write_manifest(
    path: str | os.PathLike[str],
    items: Iterable[str | Mapping[str, Any]],
    *,
    mode: str = "semantic",
    require_s3: bool = True,
) -> Path:
    """Write an input manifest atomically (temp file + ``os.replace``); returns its path."""
    return atomic_write_text(path, dumps_manifest(as_manifest_lines(items), mode=mode, require_s3=require_s3))


def loads_manifest(
    text: str | bytes, *, source: str = "manifest", check: bool = True, require_s3: bool = False
) -> list[dict[str, Any]]:
    """Parse JSON Lines text. With ``check``, every line must pass ``line_problems`` (errors name the line)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{source} is not UTF-8 text: {exc}; save it as UTF-8") from None
    text = text.removeprefix("\ufeff")
    out: list[dict[str, Any]] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{source} line {number} is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise FormatError(f"{source} line {number} is a JSON {type(value).__name__}, not an object")
        if check:
            problems = line_problems(value, require_s3=require_s3, where=f"{source} line {number}")
            if problems:
                raise FormatError("; ".join(problems))
        out.append(value)
    return out


def read_manifest(
    path: str | os.PathLike[str], *, check: bool = True, require_s3: bool = False
) -> list[dict[str, Any]]:
    """Read a local input (or output) manifest file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read manifest {str(path)!r}: {exc}") from None
    return loads_manifest(data, source=str(path), check=check, require_s3=require_s3)
