"""Process-level tuning for CPU inference (kernel side): allocator, precision, threads, yielding.

Allocator -- why: the encoder creates and frees dozens of 16-64 MB activation tensors per image. glibc serves
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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


# ---------------------------------------------------------------------------------------------- precision
PRECISION_ENV = "GT_WIDGET_PRECISION"
"""Environment setting that overrides the automatic encoder precision: ``fp32``, ``bf16`` or ``auto``."""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (the ``flags`` line of /proc/cpuinfo); empty off Linux or when unreadable."""
    try:
        with Path("/proc/cpuinfo").open(encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo).

    Without them oneDNN still runs bf16 by converting in software, which is slower than fp32 and costs
    quality, so ``choose_precision`` only picks bf16 where these flags are present. Non-Linux: False.
    """
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def choose_precision(setting: str | None = None) -> str:
    """The encoder precision to use: ``setting`` (or ``$GT_WIDGET_PRECISION``) when it is ``fp32`` or
    ``bf16``; for ``auto`` / unset, ``bf16`` on CPUs with native bf16 and ``fp32`` elsewhere."""
    value = (setting or os.environ.get(PRECISION_ENV) or "auto").strip().lower()
    if value in ("fp32", "float32"):
        return "fp32"
    if value in ("bf16", "bfloat16"):
        return "bf16"
    if value != "auto":
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {setting!r}")
    return "bf16" if native_bf16() else "fp32"


DECODER_PRECISION_ENV = "GT_WIDGET_DECODER_PRECISION"
"""Environment setting for the interactive mask decoder's precision: ``fp32``, ``bf16`` or ``auto``."""

DEFAULT_DECODER_PRECISION = "fp32"
"""The decoder's precision when neither the argument nor the environment sets it. ``"auto"`` (follow the
encoder's precision) is the candidate default; it stays opt-in until its quality is shown on the full
held-out half and GrabCut-50 (benchmarks/README.md, "bf16 decoder and a per-image cache")."""


def choose_decoder_precision(setting: str | None = None, precision: str = "fp32") -> str:
    """The mask decoder's precision: ``setting`` (or ``$GT_WIDGET_DECODER_PRECISION``, else
    ``DEFAULT_DECODER_PRECISION``) when it is ``fp32`` or ``bf16``; ``auto`` follows ``precision`` (the
    encoder's, from ``choose_precision``): bf16 exactly where the CPU computes it natively or the user
    asked for it."""
    value = (setting or os.environ.get(DECODER_PRECISION_ENV) or DEFAULT_DECODER_PRECISION).strip().lower()
    if value == "auto":
        return choose_precision(precision)
    try:
        return choose_precision(value)
    except ValueError:
        raise ValueError(f"decoder_precision must be 'auto', 'fp32' or 'bf16', got {setting!r}") from None


# ---------------------------------------------------------------------------------------------- threads
def affinity_cores() -> int:
    """CPU cores this process may run on (``sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class CoreMonitor:
    """Estimates how many cores are free for us: the cores we may use minus the CPU that *other*
    processes burn on them (busy time of our CPUs from /proc/stat minus this process's own CPU time, over
    the time since the previous sample). Cheap (two small reads); falls back to the 1-minute load average
    off Linux. Other work that keeps one of two cores busy -> 1 free core."""

    def __init__(self, min_window_s: float = 0.3) -> None:
        self.cores = affinity_cores()
        self.min_window_s = float(min_window_s)
        self._lock = threading.Lock()
        self._last = self._sample()
        self._busy_others = 0.0

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        """(wall s, busy CPU-s of the CPUs we may run on, our CPU-s), or None where /proc/stat cannot be
        read. Only the ``cpuN`` lines of our affinity set count (a container sees the whole host there)."""
        try:
            allowed = {f"cpu{i}" for i in os.sched_getaffinity(0)}
            with Path("/proc/stat").open(encoding="ascii") as fh:
                lines = [ln.split() for ln in fh if ln.startswith("cpu") and not ln.startswith("cpu ")]
        except (AttributeError, OSError):
            return None
        busy = 0
        for fields in lines:
            if fields[0] in allowed:
                ticks = [int(v) for v in fields[1:9]]
                busy += sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # minus idle, iowait
        if not lines:
            return None
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        t = os.times()
        return time.monotonic(), busy / hz, t.user + t.system

    def busy_others(self) -> float:
        """Cores' worth of CPU used by other processes recently (0 .. cores)."""
        now = self._sample()
        with self._lock:
            last = self._last
            if now is None or last is None:
                try:
                    return max(0.0, min(float(self.cores), os.getloadavg()[0] - 1.0))
                except OSError:
                    return 0.0
            wall = now[0] - last[0]
            if wall >= self.min_window_s:
                others = ((now[1] - last[1]) - (now[2] - last[2])) / wall
                self._busy_others = max(0.0, min(float(self.cores), others))
                self._last = now
            return self._busy_others

    def free_cores(self, cap: int | None = None) -> int:
        """Cores free for us now (at least 1, at most ``cap`` when given)."""
        free = max(1, self.cores - int(self.busy_others() + 0.5))
        return min(free, cap) if cap else free


# ---------------------------------------------------------------------------------------------- yielding
class InteractiveGate:
    """Lets background encoder runs step aside for interactive requests.

    Interactive work (a decoder call for a click, ~40 ms) runs inside ``interactive()``. Background work
    (a prefetch or refinement encoder run) runs inside ``background()`` on its own thread and calls
    ``pause_point()`` between encoder blocks: while any interactive request is in flight it waits there
    (at most ``max_pause_s``), so the click gets the CPU instead of sharing it with the encoder. Outside
    ``background()`` a pause point does nothing (a foreground encode never waits for itself).
    """

    def __init__(self, max_pause_s: float = 5.0) -> None:
        self.max_pause_s = float(max_pause_s)
        self._cond = threading.Condition()
        self._active = 0
        self._local = threading.local()
        self.pauses = 0
        """How many times background work waited for an interactive request (for tests and benchmarks)."""

    @contextmanager
    def interactive(self) -> Iterator[None]:
        """Mark an interactive request in flight on this thread."""
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def background(self) -> Iterator[None]:
        """Mark this thread's work as background: its pause points yield to interactive requests."""
        before = getattr(self._local, "background", False)
        self._local.background = True
        try:
            yield
        finally:
            self._local.background = before

    @property
    def in_background(self) -> bool:
        """Whether the calling thread is inside ``background()``."""
        return bool(getattr(self._local, "background", False))

    def pause_point(self) -> None:
        """In background work: wait while an interactive request is in flight."""
        if not self.in_background:
            return
        with self._cond:
            if self._active:
                self.pauses += 1
                self._cond.wait_for(lambda: self._active == 0, timeout=self.max_pause_s)
