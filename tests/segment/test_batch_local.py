"""The local batch engine's threads (``segment/batch_local.py``): several model workers on one segmenter, each
image's warnings reported for that image only, one torch thread per worker, and the same files as one worker."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gt_widget.errors import GtWidgetWarning
from gt_widget.imageio import load_image
from gt_widget.segment.base import Prediction
from gt_widget.segment.batch import prelabel
from gt_widget.segment.batch_local import ParallelSegmenter


class ParallelBoxes:
    """A ``ParallelSegmenter`` stand-in: the mask of a box is the box; each predict warns naming its image size."""

    name = "parallel-boxes"

    def __init__(self) -> None:
        self.threads: int | None = None
        self.workers: set[str] = set()
        self.threads_seen: list[int | None] = []
        self._lock = threading.Lock()

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return None

    def set_image(self, image: Any) -> None:
        raise AssertionError("the parallel path encodes with prepare(), never set_image()")

    def predict(
        self, extreme_points: Any = None, clicks: Any = (), previous: Any = None, box: Any = None
    ) -> Prediction:
        raise AssertionError("the parallel path predicts with predict_on(), never predict()")

    def prepare(self, image: Any, *, background: bool = True, cache: bool = True) -> Any:
        assert not background and not cache  # batch work neither yields nor fills the cache
        with self._lock:
            self.workers.add(threading.current_thread().name)
            self.threads_seen.append(self.threads)
        time.sleep(0.05)  # long enough for the workers to overlap
        return load_image(image).shape[:2]

    def predict_on(
        self, state: Any, extreme_points: Any = None, clicks: Any = (), previous: Any = None, box: Any = None
    ) -> Prediction:
        h, w = state
        x0, y0, x1, y1 = (int(v) for v in box)
        mask = np.zeros((h, w), bool)
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
        warnings.warn(f"image of {w}x{h}", GtWidgetWarning, stacklevel=2)
        return Prediction(mask=mask, score=0.5)


def _images(folder: Path, count: int) -> dict[str, list[dict[str, Any]]]:
    folder.mkdir()
    prompts: dict[str, list[dict[str, Any]]] = {}
    for k in range(count):
        w, h = 40 + 4 * k, 30 + 2 * k  # a size per image: the warning names it
        Image.fromarray(np.full((h, w, 3), 20 * k, np.uint8)).save(folder / f"i{k}.png")
        prompts[f"i{k}.png"] = [{"label": "box", "box": [k, 2, 10 + k, 12]}]
    return prompts


def test_workers_share_one_segmenter_and_keep_warnings_per_image(tmp_path: Path) -> None:
    prompts = _images(tmp_path / "images", 8)
    seg = ParallelBoxes()
    assert isinstance(seg, ParallelSegmenter)
    report = prelabel(tmp_path / "images", prompts, tmp_path / "two", segmenter=seg, workers=2, progress=False)
    assert len(report.written) == 8 and not report.failed
    assert len(seg.workers) == 2 and set(seg.threads_seen) == {1}  # two workers, one torch thread each
    assert seg.threads is None  # the caller's setting is restored
    for key, message in report.warned:
        k = int(Path(key).stem[1:])
        assert message == f"image of {40 + 4 * k}x{30 + 2 * k}", (key, message)
    assert len(report.warned) == 8
    one = prelabel(tmp_path / "images", prompts, tmp_path / "one", segmenter=ParallelBoxes(), workers=1, progress=False)
    two_files, one_files = (sorted((r.job_dir / "masks").glob("*.png")) for r in (report, one))
    assert len(two_files) == 8
    for a, b in zip(two_files, one_files, strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()
    label_map = np.asarray(Image.open(next((report.job_dir / "masks").glob("00003_*.png"))))
    assert label_map[2:13, 3:14].all() and label_map.sum() == 11 * 11
