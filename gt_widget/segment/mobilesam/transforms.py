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

from functools import lru_cache

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


@lru_cache(maxsize=64)
def _sources(out_len: int, in_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(i0, i1) source indices of every output of a bilinear resampling (see ``_row_weights``)."""
    i0, i1, _ = _row_weights(out_len, in_len, 0, out_len)
    return i0.numpy(), i1.numpy()


def _touching(out_len: int, in_len: int, lo: int, hi: int) -> tuple[int, int] | None:
    """[a, b) of the outputs with a source index in [lo, hi], one more on each side (so an index off by
    one in PyTorch's float arithmetic is still covered); None if none."""
    i0, i1 = _sources(out_len, in_len)
    idx = np.flatnonzero(((i0 >= lo) & (i0 <= hi)) | ((i1 >= lo) & (i1 <= hi)))
    if idx.size == 0:
        return None
    return max(int(idx[0]) - 1, 0), min(int(idx[-1]) + 2, out_len)


def _sourced(out_len: int, in_len: int, a: int, b: int, margin: int = 1) -> tuple[int, int]:
    """[lo, hi) of the source indices outputs [a, b) read, ``margin`` more on each side."""
    i0, i1 = _sources(out_len, in_len)
    return max(int(i0[a:b].min()) - margin, 0), min(int(i1[a:b].max()) + 1 + margin, in_len)


def _exact_blocks(low_side: int, model_size: int) -> bool:
    """True when ``low_side`` -> ``model_size`` is an upscaling by a power of two: a block of the low-res
    grid then resamples to exactly the same values as in the whole grid (the source positions
    (dst + 0.5) / f - 0.5 and their weights are exact binary fractions, shifted by whole pixels)."""
    f, rem = divmod(model_size, low_side)
    return rem == 0 and f >= 1 and f & (f - 1) == 0


def _positive_support(
    low: torch.Tensor, input_size: tuple[int, int], original_size: tuple[int, int], model_size: int
) -> torch.Tensor | None:
    """The (1, C, h, w) model-size logits cropped to the input, with exact values only where a positive
    output can come from and 0 elsewhere; None when no output can be positive.

    Why the masks stay bit-identical: bilinear outputs are weighted means (weights >= 0) of their
    sources, so an output whose sources are all <= 0 is <= 0 at both stages (low-res -> model size ->
    original). We find the original-size rows / columns that can read a positive low-res logit, the
    model-size rows / columns those read, and compute only those, by ``F.interpolate`` on a block of the
    low-res grid (``_exact_blocks``: the same kernel on the same numbers with the same weights, margins
    of one low-res pixel keep the block's clamped edges out). Zeros elsewhere keep every output outside
    that region <= 0, and every output inside it reads only exact values."""
    r = low.shape[-1]
    h, w = input_size
    oh, ow = original_size
    pos = (low[0] > 0).any(dim=0)
    rows = torch.nonzero(pos.any(dim=1)).flatten()
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(pos.any(dim=0)).flatten()
    f = model_size // r
    spans = []
    for lo, hi, in_len, out_len in (
        (int(rows[0]), int(rows[-1]), h, oh),
        (int(cols[0]), int(cols[-1]), w, ow),
    ):
        mid = _touching(model_size, r, lo, hi)  # model-size indices that can be positive
        if mid is None or mid[0] >= in_len:
            return None  # the positive logits lie in the padding, cropped away
        out = _touching(out_len, in_len, mid[0], min(mid[1], in_len) - 1)  # original-size outputs
        if out is None:
            return None
        n0, n1 = _sourced(out_len, in_len, *out)  # model-size values those outputs read
        l0, l1 = _sourced(model_size, r, n0, n1)  # low-res block (one pixel of margin)
        spans.append((n0, n1, l0, l1))
    (n0, n1, l0, l1), (m0, m1, k0, k1) = spans
    block = F.interpolate(low[..., l0:l1, k0:k1], ((l1 - l0) * f, (k1 - k0) * f), mode="bilinear", align_corners=False)
    x = low.new_zeros(1, low.shape[1], h, w)
    x[..., n0:n1, m0:m1] = block[..., n0 - l0 * f : n1 - l0 * f, m0 - k0 * f : m1 - k0 * f]
    return x


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
    is positive): the rest is a byte copy of the source row's sign. For those masks the (S, S) stage is
    also computed only on the block of the low-res grid that can reach a positive output and left 0
    elsewhere (``_positive_support``; S / r a power of two), which gives the same masks bit for bit
    (tests/segment/test_mask_upsampling_exact.py) at about half the cost for a box-sized object.
    """
    h, w = input_size
    oh, ow = original_size
    low = low_res[None].float()
    c = low.shape[1]
    if return_logits or threshold != 0.0 or not _exact_blocks(low.shape[-1], model_size):
        x = F.interpolate(low, (model_size, model_size), mode="bilinear", align_corners=False)[..., :h, :w]
    else:
        found = _positive_support(low, input_size, original_size, model_size)
        if found is None:  # no positive logit that counts: every output is a weighted mean of values <= 0
            return np.zeros((c, oh, ow), np.bool_)
        x = found
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
