"""The widget's image cache (decoded pixels + model state of visited / prefetched images) is bounded in bytes
by ``memory.MEMORY_BUDGET_BYTES``, not only in count; the shown image never counts and is never evicted."""

from __future__ import annotations

import numpy as np
import pytest

from gt_widget.widget import SegmentationWidget, memory
from gt_widget.widget.assist import CACHE_SIZE
from gt_widget.widget.testing import BoxSegmenter


def _image(k: int, side: int = 200) -> np.ndarray:
    """A distinct RGB image of side x side pixels (120 kB)."""
    rng = np.random.default_rng(k)
    return rng.integers(0, 255, (side, side, 3), dtype=np.uint8)


def _cached_images(w: SegmentationWidget) -> list[np.ndarray]:
    return list({id(e): e.rgb for e in w.assist.cache.values()}.values())


def test_cache_over_the_byte_budget_evicts_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _image(0)
    per_image = shown.nbytes
    monkeypatch.setattr(memory, "MEMORY_BUDGET_BYTES", int(2.5 * per_image))  # room for two other images
    w = SegmentationWidget(shown, ["object"], segmenter=BoxSegmenter())
    try:
        assert w.wait_idle(30)
        others = [_image(k) for k in range(1, 5)]
        for image in others:
            w.prefetch(image)
            assert w.wait_idle(30)
        kept = _cached_images(w)
        assert len(kept) < CACHE_SIZE  # the count bound alone would keep all 5 entries
        held = [im for im in kept if im is not w.image]
        assert memory.nbytes(*held) <= memory.MEMORY_BUDGET_BYTES
        # the two newest prefetched images are kept, the older ones were evicted
        assert [any(np.array_equal(im, o) for im in held) for o in others] == [False, False, True, True]
        assert any(np.array_equal(im, shown) for im in kept)  # the shown image is needed: never evicted
    finally:
        w.close()


def test_nbytes_counts_shared_arrays_once() -> None:
    a = np.zeros((100, 100, 3), np.uint8)

    class State:
        def __init__(self) -> None:
            self.image = a  # a model state holding the same pixels as the cache entry
            self.embedding = np.zeros(256, np.float32)
            self.crops = {(0, 0, 10, 10): a[:10, :10]}

    assert memory.nbytes(a, State()) == a.nbytes + 256 * 4
