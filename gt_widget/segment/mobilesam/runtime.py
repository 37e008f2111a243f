"""Process-level tuning for fast CPU inference of the image encoder (kernel side).

Why: the encoder creates and frees dozens of 16-64 MB activation tensors per image. glibc serves
blocks that large with fresh ``mmap`` pages and returns them on ``free``, so every large operation first
pays page faults on its whole output: a GELU over 16.7 M floats took 38 ms instead of 12 ms, and the
whole encoder ~1.9 s instead of ~1.2 s of CPU. Raising glibc's mmap and trim thresholds (``mallopt``)
keeps those blocks in the heap and reuses them.

Trade-off: freed activation memory stays in the process (RSS stays near the encoder's peak, a few
hundred MB) instead of going back to the OS. Set ``GT_WIDGET_NO_MALLOC_TUNING=1`` to opt out. Only
glibc (Linux) is touched; elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned: bool | None = None


def tune_allocator() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True when in effect."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if os.environ.get("GT_WIDGET_NO_MALLOC_TUNING") or not sys.platform.startswith("linux"):
        return _tuned
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return _tuned
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Some glibc versions refuse an mmap threshold above 32 MB (HEAP_MAX/2): fall back to that.
    ok = bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30) or mallopt(_M_MMAP_THRESHOLD, 32 << 20))
    ok = bool(mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)) and ok
    _tuned = ok
    return _tuned
