"""The masks' upsampling computes only where a positive logit can reach, and gives the same bool masks.

``transforms.upscale_logits`` (bool masks at threshold 0) resamples only the block of the low-res grid
around its positive logits (``_positive_support``). These tests compare every mask, pixel for pixel, with
upstream's two ``F.interpolate`` calls over the whole grid (what the predictor did before), on synthetic
logits and on the real model's logits for GrabCut images with boxes, extreme points, clicks and a previous
mask as ``mask_input``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gt_widget.segment.mobilesam.transforms import resized_shape, upscale_logits


def _reference(low: np.ndarray | torch.Tensor, original: tuple[int, int], model_size: int = 1024) -> np.ndarray:
    """Upstream's upsampling of (C, r, r) logits over the whole grid: -> (S, S), crop, -> (H, W), > 0.
    Same channel count as the predictor's call (PyTorch's kernel for C > 1 rounds differently)."""
    h, w = resized_shape(*original, model_size)
    x = F.interpolate(torch.as_tensor(low)[None], (model_size, model_size), mode="bilinear", align_corners=False)
    if np.prod(original) * x.shape[1] > (1 << 22):  # big images: the banded logits path
        return upscale_logits(torch.as_tensor(low), (h, w), original, model_size=model_size, return_logits=True) > 0
    x = F.interpolate(x[..., :h, :w], original, mode="bilinear", align_corners=False)
    return np.asarray((x[0] > 0).numpy())


def _blob(c: int, centre: tuple[float, float], radius: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    d = ((yy - centre[1]) ** 2 + (xx - centre[0]) ** 2).sqrt()
    return (radius - d)[None].repeat(c, 1, 1) * 0.5 + torch.randn(c, 256, 256, generator=g)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    ("original", "model_size"),
    [
        ((480, 854), 1024),
        ((640, 480), 1024),
        ((398, 284), 1024),
        ((300, 512), 512),
        ((333, 500), 768),
        ((1600, 2400), 1024),
    ],
)
def test_bool_masks_equal_the_whole_grid_upsampling(channels: int, original: tuple[int, int], model_size: int) -> None:
    cases = [
        _blob(channels, (80, 120), 30, 0),  # one object
        _blob(channels, (250, 5), 12, 1),  # at the grid's corner
        _blob(channels, (128, 128), 200, 2),  # nearly everywhere
        torch.randn(channels, 256, 256, generator=torch.Generator().manual_seed(3)) * 3 - 4,  # scattered
    ]
    tiny = -torch.ones(channels, 256, 256)
    tiny[:, 100:102, 30:33] = 1e-30  # products with subnormals: still the same signs
    cases.append(tiny)
    for low in cases:
        h, w = resized_shape(*original, model_size)
        got = upscale_logits(low, (h, w), original, model_size=model_size)
        assert got.dtype == np.bool_ and got.shape == (channels, *original)
        assert np.array_equal(got, _reference(low, original, model_size))


def test_no_positive_logit_or_only_in_the_padding_gives_empty_masks() -> None:
    low = -torch.ones(3, 256, 256)
    assert not upscale_logits(low, (576, 1024), (480, 854)).any()
    low[:, 200:, :] = 5.0  # rows 800.. of the 1024 square: the padding below a 16:9 image
    got = upscale_logits(low, (576, 1024), (480, 854))
    assert not got.any() and np.array_equal(got, _reference(low, (480, 854)))


@pytest.mark.weights
def test_real_model_masks_are_bit_identical(weights_path: Path, grabcut_dir: Path) -> None:
    from gt_widget.evaluate import extreme_points, next_click
    from gt_widget.imageio import load_image
    from gt_widget.segment.mobilesam import SamPredictor, load_mobilesam

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = load_mobilesam(weights_path)
    names = sorted(p.stem for p in (grabcut_dir / "images").glob("*.jpg"))[::12][:4]
    assert len(names) == 4
    checked = 0
    for k, name in enumerate(names):
        rgb = load_image(grabcut_dir / "images" / f"{name}.jpg")
        gt = np.asarray(Image.open(grabcut_dir / "masks" / f"{name}.png").convert("L")) > 127
        if k == 0:  # a big image: the banded path
            big = (rgb.shape[1] * 4, rgb.shape[0] * 4)
            rgb = np.asarray(Image.fromarray(rgb).resize(big))
            gt = np.asarray(Image.fromarray(gt).resize(big, Image.Resampling.NEAREST))
        size = (1024, 512, 768, 1024)[k]
        predictor = SamPredictor(model, image_size=size)
        predictor.set_image(rgb)
        ys, xs = np.nonzero(gt)
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float64)
        pts = extreme_points(gt).astype(np.float64)
        prompts: list[dict[str, object]] = [
            {"box": box},
            {"point_coords": pts, "point_labels": np.ones(4)},
            {"point_coords": pts, "point_labels": np.ones(4), "box": box},
        ]
        masks, _, low = predictor.predict(**prompts[2])  # type: ignore[arg-type]
        click = next_click(masks[0], gt, np.zeros_like(gt))
        if click is not None:
            x, y, positive = click
            coords = np.concatenate([pts, [[x, y]]])
            labels = np.concatenate([np.ones(4), [1 if positive else 0]])
            prompts.append({"point_coords": coords, "point_labels": labels, "mask_input": low[:1]})
            prompts.append({"point_coords": coords[4:], "point_labels": labels[4:], "multimask_output": False})
        for prompt in prompts:
            masks, _, low = predictor.predict(**prompt)  # type: ignore[arg-type]
            assert np.array_equal(masks, _reference(low, rgb.shape[:2], size)), (name, size, sorted(prompt))
            checked += 1
    assert checked >= 16
