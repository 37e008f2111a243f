"""The session's write-ahead journal and the output folder's lock: what makes a completed edit never lost.

Side: kernel. Both files live in the job folder, beside Ground Truth's output::

    <job>/gt-widget-journal.bin     append-only records, each made durable (fsync) before the edit counts
    <job>/gt-widget-session.lock    one writer at a time (``fcntl.flock``) plus who holds it (JSON)

Journal records (little-endian)::

    b"GTJ1" | kind u8 | index u32 | seq u64 | length u32 | crc32 u32 | payload[length]

``kind`` ``E`` (an edit of image ``index``): payload = JSON header (shape, box ``(y0, y1, x0, x1)`` or null,
instances as ``[[label, colour], ...]`` or null, time, ``human``: false for imported labels, true for a human
edit or accept, absent in older journals), ``\\n``, then the zlib-compressed uint8 crop of the map
*after* the edit over ``box`` (the same tight-box zlib crops the undo history keeps, ``widget/state.py``).
A box covering the whole image is a full record. Records hold absolute values, so replaying any suffix of
them, in order, over a state that already holds some of them gives the same result (idempotent).
``kind`` ``C`` (a checkpoint): Ground Truth's files of image ``index`` hold every edit up to ``seq``.
A record cut short by a kill (bad length or CRC) ends the journal; it was never reported complete.

Lock: ``flock`` is released by the kernel when its holder dies, so a crashed session never blocks the next
one (a lock held by a dead process is broken by construction); the file's JSON (pid, host, start time)
names the holder in the message a second session gets. The lock's descriptor is opened read-only and the
journal is opened per append, so a session holds no file open for writing between saves.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from gt_widget.errors import GtWidgetError

JOURNAL_FILE = "gt-widget-journal.bin"
LOCK_FILE = "gt-widget-session.lock"
_MAGIC = b"GTJ1"
_HEAD = struct.Struct("<4sBIQII")
EDIT, CHECKPOINT = ord("E"), ord("C")

Box = tuple[int, int, int, int]


class LockedError(GtWidgetError, RuntimeError):
    """Another live session writes this output folder."""


@dataclass
class Record:
    """One journal record (``crop`` is the map after the edit over ``box``; None for checkpoints)."""

    kind: int
    index: int
    seq: int
    shape: tuple[int, int] = (0, 0)
    box: Box | None = None
    crop: np.ndarray | None = None
    instances: list[tuple[str, str]] | None = None
    moment: str = ""
    human: bool | None = None
    """False: imported labels ("to review"); True: a human edit or accept; None: not recorded (older journal)."""


def changed_box(old: np.ndarray | None, new: np.ndarray) -> Box | None:
    """Tight ``(y0, y1, x0, x1)`` box of the pixels that differ (the whole image when ``old`` is None or of
    another shape); None when nothing changed. Compares 8 pixels at a time to find the changed rows (an
    80-megapixel map in tens of milliseconds), then only that band for the columns."""
    if old is None or old.shape != new.shape:
        return (0, int(new.shape[0]), 0, int(new.shape[1]))
    h, w = int(new.shape[0]), int(new.shape[1])
    a = np.ascontiguousarray(old, np.uint8).reshape(-1)
    b = np.ascontiguousarray(new, np.uint8).reshape(-1)
    words = a.size // 8
    diff = a[: words * 8].view(np.uint64) != b[: words * 8].view(np.uint64)
    first = last = -1
    if diff.any():
        first = int(diff.argmax()) * 8
        last = (words - 1 - int(diff[::-1].argmax())) * 8 + 7
    tail = np.flatnonzero(a[words * 8 :] != b[words * 8 :])
    if tail.size:
        first = first if first >= 0 else words * 8 + int(tail[0])
        last = words * 8 + int(tail[-1])
    if first < 0:
        return None
    y0, y1 = first // w, min(last // w + 1, h)
    cols = np.flatnonzero((old[y0:y1] != new[y0:y1]).any(axis=0))
    rows = np.flatnonzero((old[y0:y1, cols[0] : cols[-1] + 1] != new[y0:y1, cols[0] : cols[-1] + 1]).any(axis=1))
    return (y0 + int(rows[0]), y0 + int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def apply(base: np.ndarray, record: Record) -> np.ndarray:
    """``base`` with ``record``'s crop written in (a new array when the shape differs)."""
    if base.shape != record.shape:
        base = np.zeros(record.shape, np.uint8)
    if record.box is not None and record.crop is not None:
        y0, y1, x0, x1 = record.box
        base[y0:y1, x0:x1] = record.crop
    return base


class Journal:
    """Append-only, fsynced record file. Not thread-safe: the caller serialises appends."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append_edit(
        self,
        index: int,
        seq: int,
        new: np.ndarray,
        box: Box | None,
        instances: list[tuple[str, str]] | None,
        human: bool | None = None,
    ) -> int:
        """Append (and fsync) the edit of image ``index`` whose result is ``new`` over ``box``, made by a human
        (``human=True``) or imported (``False``); returns bytes written. Raises ``OSError`` when the disk
        refuses (the caller keeps the edit in memory)."""
        header: dict[str, object] = {
            "shape": [int(new.shape[0]), int(new.shape[1])],
            "box": list(box) if box is not None else None,
            "instances": [list(i) for i in instances] if instances is not None else None,
            "time": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        }
        if human is not None:
            header["human"] = bool(human)
        crop = b""
        if box is not None:
            y0, y1, x0, x1 = box
            crop = zlib.compress(np.ascontiguousarray(new[y0:y1, x0:x1], np.uint8).tobytes(), 1)
        return self._append(EDIT, index, seq, json.dumps(header).encode() + b"\n" + crop, durable=True)

    def append_checkpoint(self, index: int, seq: int) -> None:
        """Note that image ``index``'s files hold every edit up to ``seq`` (not fsynced: losing it only
        means replaying records that are already in the files)."""
        self._append(CHECKPOINT, index, seq, b"", durable=False)

    def _append(self, kind: int, index: int, seq: int, payload: bytes, *, durable: bool) -> int:
        data = _HEAD.pack(_MAGIC, kind, index, seq, len(payload), zlib.crc32(payload)) + payload
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a short write (disk full): cut it off so the journal stays readable
                size = os.fstat(fd).st_size
                os.ftruncate(fd, size - written)
                raise OSError(28, f"short write to {self.path} (disk full?)")
            if durable:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        return len(data)

    def records(self) -> Iterator[Record]:
        """Every complete record, in order; stops at the first torn or corrupt one."""
        for record, _end in self._scan():
            yield record

    def valid_length(self) -> int:
        """Bytes of the journal up to the end of its last complete record."""
        ends = [end for _record, end in self._scan()]
        return ends[-1] if ends else 0

    def _scan(self) -> Iterator[tuple[Record, int]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        pos = 0
        while pos + _HEAD.size <= len(data):
            magic, kind, index, seq, length, crc = _HEAD.unpack_from(data, pos)
            start, end = pos + _HEAD.size, pos + _HEAD.size + length
            if magic != _MAGIC or end > len(data) or zlib.crc32(data[start:end]) != crc:
                return
            payload = data[start:end]
            if kind == EDIT:
                head, _, packed = payload.partition(b"\n")
                meta = json.loads(head)
                shape = (int(meta["shape"][0]), int(meta["shape"][1]))
                box = tuple(int(v) for v in meta["box"]) if meta["box"] is not None else None
                crop = None
                if box is not None:
                    y0, y1, x0, x1 = box
                    crop = np.frombuffer(zlib.decompress(packed), np.uint8).reshape(y1 - y0, x1 - x0)
                insts = meta["instances"]
                yield (
                    Record(
                        kind,
                        index,
                        seq,
                        shape,
                        box,  # type: ignore[arg-type]
                        crop,
                        [(str(a), str(b)) for a, b in insts] if insts is not None else None,
                        str(meta.get("time", "")),
                        bool(meta["human"]) if meta.get("human") is not None else None,
                    ),
                    end,
                )
            else:
                yield Record(kind, index, seq), end
            pos = end

    def cut_torn_tail(self) -> None:
        """Drop a record cut short by a kill, so later appends follow a complete one."""
        if self.path.exists():
            length = self.valid_length()
            if length != self.path.stat().st_size:
                os.truncate(self.path, length)

    def reset(self) -> None:
        """Empty the journal (every record is in Ground Truth's files)."""
        if self.path.exists() and self.path.stat().st_size:
            fd = os.open(self.path, os.O_WRONLY)
            try:
                os.ftruncate(fd, 0)
                os.fsync(fd)
            finally:
                os.close(fd)


class FolderLock:
    """One writer per output folder: ``flock`` (released by the kernel when the holder dies) + holder info."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``LockedError`` naming the live holder."""
        if self._fd is not None:
            return
        if not self.path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(self._holder_text()) from None
        self._fd = fd
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "process_start": _process_start(os.getpid()),
        }
        with contextlib.suppress(OSError):  # the holder info is for messages only
            wfd = os.open(self.path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(wfd, json.dumps(info).encode())
            finally:
                os.close(wfd)

    def release(self) -> None:
        """Give the lock back (the file stays; its content is stale once nobody holds the flock)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self) -> dict[str, object]:
        """What the lock file says about its holder (may be stale when nobody holds the lock)."""
        try:
            value = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def _holder_text(self) -> str:
        info = self.holder()
        who = (
            f"process {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('started', '?')}"
            if info
            else "another process"
        )
        return (
            f"{self.path.parent} is being written by another labeling session ({who}). Close that session "
            "(session.close() or restart its kernel), pass another output_dir or job_name, or open this one "
            "with read_only=True to look without saving"
        )


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), telling a reused pid from its owner."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""
