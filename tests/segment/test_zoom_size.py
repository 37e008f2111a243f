"""Zoomed crop encodes: ``zoom_scale`` (encoder side tied to the crop's side) and ``zoom_area``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gt_widget.errors import PromptError
from gt_widget.segment.mobilesam import MobileSam, load_mobilesam
from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def model(weights_path: Path) -> MobileSam:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_mobilesam(weights_path)


def test_encode_size_follows_the_crop_side(model: MobileSam) -> None:
    seg = MobileSamSegmenter(model, zoom_scale=1.5)
    assert [seg.crop_encode_size(s) for s in (100, 300, 508, 700, 2000)] == [256, 512, 768, 1024, 1024]
    assert MobileSamSegmenter(model).crop_encode_size(100) == 1024  # default: always zoom_size


def test_bad_zoom_settings_say_what_to_use(model: MobileSam) -> None:
    with pytest.raises(PromptError, match="zoom_scale must be"):
        MobileSamSegmenter(model, zoom_scale=-1)
    with pytest.raises(PromptError, match="zoom_area must be one of"):
        MobileSamSegmenter(model, zoom_area="crop")


def test_small_object_is_zoomed_at_the_smaller_size(model: MobileSam, shared_dir: Path) -> None:
    """A DAVIS object under 30% of the frame: its crop is encoded at the adaptive size, own area only,
    and the refined mask still matches the ground truth."""
    from PIL import Image

    from benchmarks.protocol import extreme_points
    from gt_widget.imageio import load_image

    d = shared_dir / "data" / "davis345"
    names = sorted(p.stem for p in (d / "masks").glob("*.png"))
    for name in names:
        gt = np.asarray(Image.open(d / "masks" / f"{name}.png").convert("L")) > 127
        if 0.01 < gt.mean() < 0.08:
            break
    frame = load_image(d / "images" / f"{name}.jpg")
    seg = MobileSamSegmenter(model, zoom_scale=1.5, zoom_area="real", threads=2)
    seg.set_image(frame)
    pred = seg.predict(extreme_points=extreme_points(gt))
    crop = pred.state.crop
    assert crop is not None
    st = seg.get_state()
    side = max(crop[2] - crop[0], crop[3] - crop[1])
    assert st.crops[crop].image_size == seg.crop_encode_size(side) < 1024
    assert (pred.mask & gt).sum() / (pred.mask | gt).sum() > 0.75
