"""Pre- and post-processing between original images and MobileSAM's square model input.

Conventions (identical to upstream ``SamPredictor`` with ``ResizeLongestSide``; see
``../shared/models/golden/preprocessing.json``):

- The RGB uint8 (H, W, 3) image is resized with PIL's bilinear filter so its long side is ``S``
  (1024 by default): ``scale = S / max(H, W)``, ``h = int(H * scale + 0.5)``, ``w = int(W * scale + 0.5)``.
- Normalised on float32 0..255 values with the ImageNet mean/std (RGB), then zero-padded at the
  bottom/right to (S, S): the model input is (1, 3, S, S) float32.
- Prompt coordinates are (x, y) pixels of the original image, scaled by (w / W, h / H) into the
  input frame (no rounding).
- Output: 256x256 low-resolution logits -> bilinear to (S, S) -> crop [:h, :w] -> bilinear to (H, W)
  (align_corners=False both times) -> mask = logits > 0.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
LOW_RES = 256
"""Side of the low-resolution logits the predictor returns and accepts as ``mask_input``."""

MAX_CHUNK_ELEMENTS = 1 << 22
"""Upsampling to full size is done in row bands of at most this many float32 values (16 MB)."""


def resized_shape(height: int, width: int, long_side: int = 1024) -> tuple[int, int]:
    """(h, w) of an (H, W) image resized so its long side is ``long_side`` (round half up)."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_image(image: np.ndarray, long_side: int = 1024) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> RGB uint8 (h, w, 3) with PIL bilinear (antialiased when shrinking)."""
    h, w = resized_shape(image.shape[0], image.shape[1], long_side)
    if (h, w) == image.shape[:2]:
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))


def input_tensor(resized: np.ndarray, size: int = 1024) -> torch.Tensor:
    """Resized RGB uint8 (h, w, 3) -> normalised, bottom/right zero-padded (1, 3, size, size) float32."""
    arr = resized if resized.flags.writeable and resized.flags.c_contiguous else np.array(resized, order="C")
    x = torch.from_numpy(arr).permute(2, 0, 1).to(torch.float32)
    mean = torch.tensor(PIXEL_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(PIXEL_STD, dtype=torch.float32)[:, None, None]
    x = (x - mean) / std
    h, w = resized.shape[:2]
    return F.pad(x, (0, size - w, 0, size - h)).unsqueeze(0)


def preprocess(image: np.ndarray, size: int = 1024) -> tuple[torch.Tensor, tuple[int, int]]:
    """RGB uint8 (H, W, 3) -> ((1, 3, size, size) model input, (h, w) size of the resized image in it)."""
    resized = resize_image(image, size)
    return input_tensor(resized, size), (int(resized.shape[0]), int(resized.shape[1]))


def scale_coords(coords: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int]) -> np.ndarray:
    """(..., 2) (x, y) original-image pixels -> the same points in the resized input frame (float64)."""
    (oh, ow), (h, w) = original_size, input_size
    out = np.array(coords, dtype=np.float64, copy=True)
    out[..., 0] = out[..., 0] * (w / ow)
    out[..., 1] = out[..., 1] * (h / oh)
    return out


def scale_boxes(boxes: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int]) -> np.ndarray:
    """(..., 4) XYXY original-image boxes -> the input frame; returns (B, 4) float64."""
    pts = scale_coords(np.asarray(boxes, np.float64).reshape(-1, 2, 2), original_size, input_size)
    return pts.reshape(-1, 4)


def _row_weights(out_len: int, in_len: int, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices and weights of bilinear resampling (align_corners=False) for outputs [start, stop).

    Same arithmetic as PyTorch's CPU kernel: float32 scale in/out, source clamped at 0.
    """
    scale = torch.tensor(in_len / out_len, dtype=torch.float32)
    dst = torch.arange(start, stop, dtype=torch.float32)
    src = torch.clamp(scale * (dst + 0.5) - 0.5, min=0.0)
    i0 = src.to(torch.int64)
    i1 = torch.clamp(i0 + 1, max=in_len - 1)
    lam1 = src - i0.to(torch.float32)
    return i0, i1, lam1


def _threshold_rows_at_zero(cols: torch.Tensor, out: np.ndarray, band: int) -> None:
    """``out`` (H, W) bool = y-resampled ``cols`` (h, W) > 0, computing values only at sign changes."""
    oh = out.shape[0]
    h = cols.shape[0]
    a = cols.numpy()
    pos = a > 0
    tiny = np.finfo(np.float32).tiny  # a product with a subnormal could round to 0: compute those exactly
    sure = (a > tiny) | (a <= 0)
    for r0 in range(0, oh, band):
        r1 = min(oh, r0 + band)
        i0t, i1t, lam1t = _row_weights(oh, h, r0, r1)
        i0, i1 = i0t.numpy(), i1t.numpy()
        top, bottom = pos[i0], pos[i1]
        out[r0:r1] = top
        mixed = (top != bottom) | ~sure[i0] | ~sure[i1]
        rr, cc = np.nonzero(mixed)
        if rr.size:
            lam1 = lam1t.numpy()[rr]
            lam0 = (1.0 - lam1t).numpy()[rr]
            vals = torch.from_numpy(lam0 * a[i0[rr], cc]).add_(torch.from_numpy(lam1 * a[i1[rr], cc]))
            out[r0 + rr, cc] = (vals > 0).numpy()


def upscale_logits(
    low_res: torch.Tensor,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    *,
    model_size: int = 1024,
    return_logits: bool = False,
    threshold: float = 0.0,
    max_chunk_elements: int = MAX_CHUNK_ELEMENTS,
) -> np.ndarray:
    """(C, r, r) low-res logits -> (C, H, W) bool masks (``logits > threshold``) or float32 logits.

    Cheap for big images: the (C, S, S) intermediate is small; the final (H, W) stage runs one
    candidate at a time, first along x (at the crop's height h, a fraction of the full size), then
    along y in row bands of at most ``max_chunk_elements`` values, thresholded on the fly, so only the
    requested output (bool unless ``return_logits``) is ever allocated at full size. Images whose
    whole output fits in one band use ``F.interpolate`` directly (bit-identical to upstream); the
    banded path computes the same separable bilinear sums. For bool masks at threshold 0 only pixels
    whose two source rows disagree in sign are computed at all (a weighted mean of two positive values
    is positive): the rest is a byte copy of the source row's sign.
    """
    h, w = input_size
    oh, ow = original_size
    x = F.interpolate(low_res[None].float(), (model_size, model_size), mode="bilinear", align_corners=False)
    x = x[..., :h, :w]
    c = x.shape[1]
    if c * oh * ow <= max_chunk_elements:
        full = F.interpolate(x, (oh, ow), mode="bilinear", align_corners=False)[0]
        return full.numpy().astype(np.float32) if return_logits else (full > threshold).numpy()
    out: np.ndarray = np.empty((c, oh, ow), np.float32 if return_logits else np.bool_)
    band = max(1, max_chunk_elements // max(ow, 1))
    for ci in range(c):
        # x pass only: an output height equal to the input height makes y-weights exactly (1, 0).
        cols = F.interpolate(x[:, ci : ci + 1], (h, ow), mode="bilinear", align_corners=False)[0, 0]
        if not return_logits and threshold == 0.0:
            _threshold_rows_at_zero(cols, out[ci], band)
            continue
        for r0 in range(0, oh, band):
            r1 = min(oh, r0 + band)
            i0, i1, lam1 = _row_weights(oh, h, r0, r1)
            rows = cols[i0].mul_((1.0 - lam1)[:, None])  # lam0 * top + lam1 * bottom, as PyTorch's kernel
            rows.add_(cols[i1].mul_(lam1[:, None]))
            if return_logits:
                out[ci, r0:r1] = rows.numpy()
            else:
                torch.gt(rows, threshold, out=torch.from_numpy(out[ci, r0:r1]))
    return out
