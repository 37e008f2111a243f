"""Atomic local writes, used by everything that saves user work or caches.

A temp file in the same folder, flushed and fsynced, then ``os.replace``: a reader (or a kernel that
dies mid-write) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically; creates parent folders; returns the path. ``mode``: the
    file's permission bits (default: the temp file's 0600; e.g. 0o644 for a cache others read too)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            Path(tmp).chmod(mode)
        Path(tmp).replace(target)  # os.replace: atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """``atomic_write_bytes`` of UTF-8 text (newlines written as given)."""
    return atomic_write_bytes(path, text.encode("utf-8"))
