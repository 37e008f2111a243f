"""Small images and a BoxSegmenter session for the session tests (test_session, test_session_safety)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from gt_widget.widget import LabelingSession
from gt_widget.widget.testing import BoxSegmenter

LABELS = ["cat", "dog"]


def make_images(folder: Path, n: int = 3, size: tuple[int, int] = (64, 48)) -> list[Path]:
    """``n`` distinct RGB PNGs ``img0.png`` ... in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.new("RGB", size, (30 * i, 100, 200)).save(p)
        out.append(p)
    return out


def box_session(source: object, out: Path, **kw: object) -> LabelingSession:
    """A session over ``source`` with LABELS and a BoxSegmenter (no prefetch unless asked)."""
    kw.setdefault("segmenter", BoxSegmenter())
    kw.setdefault("prefetch", False)
    return LabelingSession(source, LABELS, out, **kw)  # type: ignore[arg-type]
