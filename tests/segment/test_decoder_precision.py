"""The interactive mask decoder's precision and its per-image cache (issue 13, "cut the path itself").

- ``choose_decoder_precision`` (one rule, in runtime): ``auto`` follows the encoder's precision, the
  argument / ``$GT_WIDGET_DECODER_PRECISION`` override, ``DEFAULT_DECODER_PRECISION`` otherwise;
- the segmenter runs the decoder in bf16 exactly when its decoder precision is bf16 (fp32 otherwise), and
  the logits and IoU predictions it returns are fp32 either way;
- bf16 logits stay close to fp32 (tolerances below, measured on real GrabCut images);
- the cache of the first block's image-side projections gives bit-identical fp32 logits, is used only
  for the no-mask dense prompt, and dies with the embedding (``set_image``, ``set_embedding``, a crop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gt_widget.errors import PromptError
from gt_widget.segment.mobilesam import MobileSam, SamPredictor, load_mobilesam
from gt_widget.segment.mobilesam.mask_decoder import Attention, ImageSide, MaskDecoder
from gt_widget.segment.mobilesam.runtime import (
    DECODER_PRECISION_ENV,
    DEFAULT_DECODER_PRECISION,
    PRECISION_ENV,
    choose_decoder_precision,
)
from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

# bf16 vs fp32 on the same embedding and prompts (measured: max 0.39-0.49, mean 0.054 logit units, 0.08% of the low-res
# pixels change sign, IoU predictions 0.002 apart; logits reach |24|)
BF16_MAX_ABS = 1.5
BF16_MEAN_ABS = 0.1
BF16_SIGN_FLIP = 0.005
BF16_IOU = 0.01


def test_decoder_precision_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DECODER_PRECISION_ENV, raising=False)
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert choose_decoder_precision(None, "bf16") == choose_decoder_precision(DEFAULT_DECODER_PRECISION, "bf16")
    assert choose_decoder_precision("auto", "bf16") == "bf16"  # auto follows the encoder's precision
    assert choose_decoder_precision("auto", "fp32") == "fp32"
    assert choose_decoder_precision("fp32", "bf16") == "fp32"
    assert choose_decoder_precision("bfloat16", "fp32") == "bf16"
    monkeypatch.setenv(DECODER_PRECISION_ENV, "auto")
    assert choose_decoder_precision(None, "bf16") == "bf16"
    monkeypatch.setenv(DECODER_PRECISION_ENV, "fp32")
    assert choose_decoder_precision(None, "bf16") == "fp32"
    assert choose_decoder_precision("bf16", "fp32") == "bf16"  # the argument wins over the environment
    with pytest.raises(ValueError, match="decoder_precision"):
        choose_decoder_precision("fp16", "fp32")


@pytest.fixture(scope="module")
def model(weights_path: Path) -> MobileSam:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_mobilesam(weights_path)


@pytest.fixture(scope="module")
def image(grabcut_dir: Path) -> np.ndarray:
    return np.asarray(Image.open(grabcut_dir / "images" / "124080.jpg").convert("RGB"))


def _extreme(image: np.ndarray) -> list[tuple[float, float]]:
    h, w = image.shape[:2]
    return [(0.3 * w, 0.5 * h), (0.7 * w, 0.5 * h), (0.5 * w, 0.25 * h), (0.5 * w, 0.8 * h)]


@pytest.mark.weights
def test_segmenter_decoder_precision_setting(model: MobileSam, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DECODER_PRECISION_ENV, raising=False)
    assert MobileSamSegmenter(model, precision="bf16", decoder_precision="auto").decoder_precision == "bf16"
    assert MobileSamSegmenter(model, precision="fp32", decoder_precision="auto").decoder_precision == "fp32"
    assert MobileSamSegmenter(model, precision="bf16", decoder_precision="fp32").decoder_precision == "fp32"
    default = choose_decoder_precision(None, "bf16")
    assert MobileSamSegmenter(model, precision="bf16").decoder_precision == default
    monkeypatch.setenv(DECODER_PRECISION_ENV, "bf16")
    assert MobileSamSegmenter(model, precision="fp32").decoder_precision == "bf16"
    with pytest.raises(PromptError, match="decoder_precision"):
        MobileSamSegmenter(model, decoder_precision="int8")


@pytest.mark.weights
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_decoder_runs_in_the_segmenters_decoder_precision(
    model: MobileSam, image: np.ndarray, precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[torch.dtype, torch.dtype]] = []
    original = MaskDecoder._decode

    def spy(self: MaskDecoder, side: ImageSide, sparse: torch.Tensor, *a: Any) -> Any:
        seen.append((self.iou_token.weight.dtype, side.keys.dtype))
        return original(self, side, sparse, *a)

    monkeypatch.setattr(MaskDecoder, "_decode", spy)
    # the encoder stays fp32 (bf16 encoding is slow where the CPU lacks native bf16); the decoder follows
    seg = MobileSamSegmenter(model, precision="fp32", decoder_precision=precision)
    seg.set_image(image)
    pred = seg.predict(extreme_points=_extreme(image), zoom="off")
    want = torch.bfloat16 if precision == "bf16" else torch.float32
    assert seen and all(s == (want, want) for s in seen)
    assert pred.mask.dtype == bool and pred.mask.shape == image.shape[:2] and pred.mask.any()
    assert model.mask_decoder.iou_token.weight.dtype == torch.float32  # the model itself is untouched


@pytest.mark.weights
def test_bf16_logits_close_to_fp32(model: MobileSam, image: np.ndarray) -> None:
    fp32, bf16 = SamPredictor(model), SamPredictor(model, decoder_precision="bf16")
    fp32.set_image(image)
    bf16.set_embedding(fp32.get_image_embedding(), fp32.original_size, fp32.input_size)
    pts = np.array(_extreme(image))
    for kwargs in ({}, {"box": np.r_[pts.min(0), pts.max(0)]}):
        m32, iou32, low32 = fp32.predict(pts, np.ones(4), **kwargs)  # type: ignore[arg-type]
        m16, iou16, low16 = bf16.predict(pts, np.ones(4), **kwargs)  # type: ignore[arg-type]
        assert low16.dtype == iou16.dtype == np.float32
        diff = np.abs(low16 - low32)
        assert diff.max() <= BF16_MAX_ABS and diff.mean() <= BF16_MEAN_ABS
        assert ((low16 > 0) != (low32 > 0)).mean() <= BF16_SIGN_FLIP
        assert np.abs(iou16 - iou32).max() <= BF16_IOU
        assert (m16 != m32).mean() <= BF16_SIGN_FLIP


@pytest.mark.weights
def test_first_block_cache_gives_identical_logits(model: MobileSam, image: np.ndarray) -> None:
    pred = SamPredictor(model)
    pred.set_image(image)
    st = pred._require()
    dec, enc = model.mask_decoder, model.prompt_encoder
    pts = torch.as_tensor(np.array(_extreme(image)) * pred.image_size / max(image.shape[:2]), dtype=torch.float32)
    cache: dict[Any, Any] = {}
    with torch.inference_mode():
        sparse, dense = enc((pts[None], torch.ones(1, 4, dtype=torch.int64)), None, None)
        plain = dec(st.embedding, pred._dense(), sparse, dense, True)
        first = dec(st.embedding, pred._dense(), sparse, dense, True, cache=cache)
        again = dec(st.embedding, pred._dense(), sparse, dense, True, cache=cache)
        assert len(cache) == 1
        for out in (first, again):
            assert torch.equal(out[0], plain[0]) and torch.equal(out[1], plain[1])
        # another constant dense prompt is not served from the cache (checked by value)
        other = dense + 0.5
        want = dec(st.embedding, pred._dense(), sparse, other, True)
        got = dec(st.embedding, pred._dense(), sparse, other, True, cache=cache)
        assert torch.equal(got[0], want[0])
        # a mask prompt (dense varies over the grid) never enters the cache
        _, mdense = enc(None, None, plain[0][:, :1])
        before = dict(cache)
        dec(st.embedding, pred._dense(), sparse, mdense, True, cache=cache)
        assert cache.keys() == before.keys()


@pytest.mark.weights
def test_cache_dies_with_the_embedding(model: MobileSam, image: np.ndarray, grabcut_dir: Path) -> None:
    pred = SamPredictor(model)
    pred.set_image(image)
    pts, labels = np.array(_extreme(image)), np.ones(4)
    pred.predict(pts, labels)
    assert len(pred._require().decoder_cache) == 1
    other = np.asarray(Image.open(grabcut_dir / "images" / "llama.png").convert("RGB"))
    pred.set_image(other)
    assert pred._require().decoder_cache == {}
    h, w = other.shape[:2]
    opts = np.array([(0.3 * w, 0.5 * h), (0.7 * w, 0.5 * h), (0.5 * w, 0.25 * h), (0.5 * w, 0.8 * h)])
    fresh = SamPredictor(model)
    fresh.set_embedding(pred.get_image_embedding(), pred.original_size, pred.input_size)
    assert fresh._require().decoder_cache == {}
    got, want = pred.predict(opts, labels), fresh.predict(opts, labels)
    assert np.array_equal(got[2], want[2]) and np.array_equal(got[0], want[0])


@pytest.mark.weights
def test_segmenter_masks_identical_across_crop_changes(model: MobileSam, image: np.ndarray) -> None:
    """Full image, then a zoomed crop, then the full image again: each answer equals a fresh segmenter's
    (no cached image-side projections leak from one frame to the other)."""
    ext = _extreme(image)
    h, w = image.shape[:2]
    small = [(0.45 * w, 0.5 * h), (0.55 * w, 0.5 * h), (0.5 * w, 0.45 * h), (0.5 * w, 0.56 * h)]

    def answers(seg: MobileSamSegmenter, order: list[tuple[list[tuple[float, float]], str | None]]) -> list[Any]:
        out = []
        for pts, zoom in order:
            out.append(seg.predict(extreme_points=pts, zoom=zoom).mask)  # type: ignore[arg-type]
        return out

    order: list[tuple[list[tuple[float, float]], str | None]] = [(ext, "off"), (small, None), (ext, "off")]
    seg = MobileSamSegmenter(model, precision="fp32", decoder_precision="fp32")
    seg.set_image(image)
    got = answers(seg, order)
    for i, step in enumerate(order):
        fresh = MobileSamSegmenter(model, precision="fp32", decoder_precision="fp32")
        fresh.set_image(image)
        if step[1] is None:
            fresh.predict(extreme_points=ext, zoom="off")  # same embedding history is not needed
        (want,) = answers(fresh, [step])
        assert np.array_equal(got[i], want)


@pytest.mark.parametrize("nq, nk", [(11, 4096), (4096, 11), (7, 7)])
def test_attention_scale_folding_is_bit_identical(nq: int, nk: int) -> None:
    """Cross-attention heads have d = 16: 1/sqrt(d) = 1/4 is applied to the short side before the
    product (exact for a power of two) instead of to the (heads, N, T) logits after it."""
    torch.manual_seed(0)
    attn = Attention(256, 8, downsample_rate=2).eval()
    qp, kp, vp = torch.randn(1, nq, 128), torch.randn(1, nk, 128), torch.randn(1, nk, 128)
    qh, kh, vh = attn._heads(qp), attn._heads(kp), attn._heads(vp)
    with torch.inference_mode():
        got = attn.attend(qp, kp, vp)
        if nk < nq:
            ref_t = (kh @ qh.transpose(-2, -1)) / 4.0
            out = ref_t.softmax(dim=-2).transpose(-2, -1) @ vh
        else:
            out = ((qh @ kh.transpose(-2, -1)) / 4.0).softmax(dim=-1) @ vh
        want = attn.out_proj(out.transpose(1, 2).reshape(1, nq, 128))
    assert torch.equal(got, want)


def _count_image_side(model: MobileSam, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the first block's image-side computations (cache misses) of ``model``'s fp32 decoder."""
    calls = [0]
    real = model.mask_decoder.transformer.image_side

    def counted(*args: Any, **kwargs: Any) -> ImageSide:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(model.mask_decoder.transformer, "image_side", counted)
    return calls


@pytest.mark.weights
def test_decoder_cache_is_primed_and_survives_frame_changes(
    model: MobileSam, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image's decoder cache lives in its state: encoding fills it (the first click does not pay it),
    and a click on the full image after a zoomed pass (another frame) does not recompute it."""
    h, w = image.shape[:2]
    small = [(0.45 * w, 0.5 * h), (0.55 * w, 0.5 * h), (0.5 * w, 0.45 * h), (0.5 * w, 0.56 * h)]
    seg = MobileSamSegmenter(model, precision="fp32", decoder_precision="fp32")
    calls = _count_image_side(model, monkeypatch)
    seg.set_image(image)
    state = seg.get_state()
    assert state is not None and len(state.decoder_cache) == 1
    primed = calls[0]
    assert primed == 1
    seg.predict(extreme_points=_extreme(image), zoom="off")
    assert calls[0] == primed  # the first click reuses the primed parts
    seg.predict(extreme_points=small)  # a zoomed crop: its own frame, its own cache
    after_crop = calls[0]
    assert after_crop > primed
    seg.predict(extreme_points=_extreme(image), zoom="off")  # back on the full image
    assert calls[0] == after_crop
    # a revisited image (state restored) keeps them too
    seg.set_image(image[::-1].copy())
    seg.set_state(state)
    before = calls[0]
    seg.predict(extreme_points=_extreme(image), zoom="off")
    assert calls[0] == before


@pytest.mark.weights
def test_primed_cache_gives_identical_answers(
    model: MobileSam, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    primed = MobileSamSegmenter(model, precision="fp32", decoder_precision="fp32", threads=1)
    primed.set_image(image)
    want = primed.predict(extreme_points=_extreme(image), zoom="off")
    monkeypatch.setattr(SamPredictor, "prime_decoder", lambda self: None)
    plain = MobileSamSegmenter(model, precision="fp32", decoder_precision="fp32", threads=1)
    plain.set_image(image)
    state = plain.get_state()
    assert state is not None and state.decoder_cache == {}
    got = plain.predict(extreme_points=_extreme(image), zoom="off")
    assert np.array_equal(got.mask, want.mask) and got.score == want.score
