"""A labeling session doing scripted edits at full speed, killed with SIGKILL at random moments.

The child (``python journal_child.py IMAGES_DIR OUT_DIR FIRST_EDIT [--flush-every N]``) edits until killed;
``kill_round`` runs one child and kills it; ``lost_edits`` reopens the session and counts reported edits
that are missing. Used by ``tests/widget/test_session_safety.py`` (bounded) and
``benchmarks/bench_journal.py`` (100 kills).

Edit k paints the pixel at ``cell(k)`` of image ``image_of(k)`` with label ``label_of(k)`` (a brush dot of
radius 1), then prints ``k`` on stdout (flushed): a printed edit was reported complete. Edits switch image
every ``EDITS_PER_IMAGE`` edits, so kills also land around navigation. Runs until killed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

GRID = 4  # pixels between edited cells
COLS = 40  # cells per row (images are 160 x 160)
SIZE = 160
EDITS_PER_IMAGE = 50
IMAGES = 2
LABELS = ["cat", "dog"]


def cell(k: int) -> tuple[int, int]:
    """(x, y) pixel edited by edit ``k`` on its image."""
    slot = (k // (EDITS_PER_IMAGE * IMAGES)) * EDITS_PER_IMAGE + k % EDITS_PER_IMAGE
    slot %= COLS * COLS
    return (slot % COLS) * GRID + 1, (slot // COLS) * GRID + 1


def image_of(k: int) -> int:
    """Image index edited by edit ``k``."""
    return (k // EDITS_PER_IMAGE) % IMAGES


def label_of(k: int) -> int:
    """1-based label painted by edit ``k``."""
    return k % len(LABELS) + 1


def main(argv: list[str]) -> None:
    from gt_widget.widget import LabelingSession
    from gt_widget.widget.testing import BoxSegmenter

    images, out, first = Path(argv[0]), Path(argv[1]), int(argv[2])
    flush_every = int(argv[4]) if len(argv) > 4 and argv[3] == "--flush-every" else 0
    session = LabelingSession(images, LABELS, out, segmenter=BoxSegmenter(), prefetch=False)
    k = first
    while True:
        if session.index != image_of(k):
            session.go(image_of(k))
        session.widget.label = LABELS[label_of(k) - 1]
        session.widget.brush([cell(k)], radius=1)
        print(k, flush=True)
        if flush_every and k % flush_every == 0:
            session.flush()
        k += 1


def make_images(folder: Path) -> Path:
    """The child's images (``IMAGES`` gray PNGs of ``SIZE`` x ``SIZE``)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(IMAGES):
        Image.new("RGB", (SIZE, SIZE), (40 * i, 120, 200)).save(folder / f"img{i}.png")
    return folder


def kill_round(images: Path, out: Path, first: int, rng: random.Random, *, flush_every: int = 0) -> list[int]:
    """Start a child at edit ``first``, let it edit for a random 0-1.5 s after its first edit, SIGKILL it;
    returns the edits it reported complete."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, __file__, str(images), str(out), str(first)]
    if flush_every:
        cmd += ["--flush-every", str(flush_every)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    reported: list[int] = []
    first_line = proc.stdout.readline()
    if not first_line:
        raise RuntimeError(f"the editing child died: {proc.stderr.read().decode() if proc.stderr else ''}")
    reported.append(int(first_line))
    deadline = time.monotonic() + rng.uniform(0.0, 1.5)
    os.set_blocking(proc.stdout.fileno(), False)
    buffer = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buffer += chunk
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    buffer += proc.stdout.read() or b""
    complete, _, _ = buffer.rpartition(b"\n")  # a number cut short by the kill was never reported
    reported += [int(x) for x in complete.split()] if complete else []
    return reported


def lost_edits(images: Path, out: Path, reported_up_to: int) -> list[int]:
    """Reopen the session (replaying its journal) and return the reported edits < ``reported_up_to`` whose
    pixel does not hold their label (the latest edit of each cell wins)."""
    from gt_widget.widget import LabelingSession
    from gt_widget.widget.testing import BoxSegmenter

    session = LabelingSession(images, LABELS, out, segmenter=BoxSegmenter(), prefetch=False)
    try:
        maps = {}
        for i in range(IMAGES):
            result = session.result(i)
            maps[i] = result.label_map if result is not None else None  # type: ignore[union-attr]
        latest: dict[tuple[int, tuple[int, int]], int] = {}
        for k in range(reported_up_to):
            latest[(image_of(k), cell(k))] = k
        lost = []
        for (i, (x, y)), k in latest.items():
            m = maps[i]
            if m is None or int(m[y, x]) != label_of(k):
                lost.append(k)
        return sorted(lost)
    finally:
        session.close()


if __name__ == "__main__":
    main(sys.argv[1:])
