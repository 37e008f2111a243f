"""Finding 9 of issue 10: stripes / a dotted grid on some masks. Our upsampling is exact; the grid is the
decoder's own period-4 template on ambiguous logits, which ``smooth_logits`` removes.

Real model on the shipped coffee image (the cup from the quickstart's scripted cell).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gt_widget.imageio import load_image
from gt_widget.segment import load_segmenter
from gt_widget.segment.mobilesam.predictor import smooth_logits
from gt_widget.segment.mobilesam.transforms import resized_shape
from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

pytestmark = pytest.mark.weights

COFFEE = Path(__file__).resolve().parents[2] / "gt_widget" / "data" / "coffee.png"
CUP = [(290, 18), (232, 305), (174, 130), (408, 130)]  # top, bottom, left, right


@pytest.fixture(scope="module")
def seg(weights_path: Path) -> MobileSamSegmenter:
    s = load_segmenter("mobilesam", weights=weights_path, zoom="off", boundary="off")  # the upsampling itself
    assert isinstance(s, MobileSamSegmenter)
    return s


def _exact(low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Upstream's upsampling with F.interpolate end to end: 256 -> 1024, crop, -> (H, W), > 0."""
    h, w = resized_shape(*shape)
    x = F.interpolate(torch.from_numpy(low)[None], (1024, 1024), mode="bilinear", align_corners=False)
    x = F.interpolate(x[..., :h, :w], shape, mode="bilinear", align_corners=False)
    return np.asarray((x[0, 0] > 0).numpy())


@pytest.mark.parametrize("scale", [1, 4])  # 4: 2400x1600, the banded, sparse path for big images
def test_shown_masks_equal_an_exact_upsampling(seg: MobileSamSegmenter, scale: int) -> None:
    rgb = load_image(COFFEE)
    if scale > 1:
        rgb = np.asarray(Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale)))
    seg.set_image(rgb)
    pred = seg.predict(extreme_points=[(x * scale, y * scale) for x, y in CUP])
    exact = _exact(pred.state.low_res, rgb.shape[:2])
    assert pred.mask.shape == rgb.shape[:2]
    assert np.array_equal(pred.mask, exact)  # not a single pixel differs


def _grid_power(low: np.ndarray) -> tuple[float, float]:
    """Power of the logits on the period-4 lines of the spectrum (|f| = 1/4 cycle per low-res px in x or
    y), as a fraction of (the high band |f| > 0.2, the whole spectrum)."""
    power = np.abs(np.fft.fft2(low - low.mean())) ** 2
    f = np.fft.fftfreq(low.shape[0])
    fy, fx = np.meshgrid(f, f, indexing="ij")
    grid = (np.abs(np.abs(fy) - 0.25) <= 1 / low.shape[0]) | (np.abs(np.abs(fx) - 0.25) <= 1 / low.shape[0])
    high = np.maximum(np.abs(fx), np.abs(fy)) > 0.2
    return float(power[grid].sum() / power[high].sum()), float(power[grid].sum() / power.sum())


def test_the_grid_is_the_decoders_and_smoothing_removes_it(seg: MobileSamSegmenter) -> None:
    rgb = load_image(COFFEE)
    seg.set_image(rgb)
    low = seg.predict(extreme_points=CUP).state.low_res[0]
    in_high_band, overall = _grid_power(low)
    assert in_high_band > 0.2  # the decoder's period-4 template (one 16-px embedding cell) dominates
    smoothed = smooth_logits(torch.from_numpy(low)[None, None], 1.0)[0, 0].numpy()
    assert _grid_power(smoothed)[1] < overall / 5
