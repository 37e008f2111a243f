"""The cheap ``MaskDecoder.forward`` computes the same function as the plain ``predict_all`` path.

Real model, real GrabCut images; prompts: extreme points (+ box), clicks, a batch of prompt sets sharing the
no-mask dense embedding, and previous-mask refinement (per-prompt dense embedding). Logits agree within
fp32 rounding and the thresholded full-size masks are identical, also through ``MobileSamSegmenter.predict``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gt_widget.segment.mobilesam import MobileSam, SamPredictor, load_mobilesam
from gt_widget.segment.mobilesam.mask_decoder import MaskDecoder
from gt_widget.segment.mobilesam.transforms import upscale_logits
from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

pytestmark = pytest.mark.weights

IMAGES = ["124080.jpg", "llama.png", "teddy.jpg"]
TOL = 1e-4


def _reference_forward(
    self: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse_prompt_embeddings: torch.Tensor,
    dense_prompt_embeddings: torch.Tensor,
    multimask_output: bool,
    dtype: torch.dtype = torch.float32,
    cache: dict[object, object] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder as it was: all 4 masks per prompt on per-prompt copies of the image, then a selection
    (fp32 only; no per-image cache)."""
    assert dtype == torch.float32
    masks, iou = self.predict_all(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
    sel = slice(1, None) if multimask_output else slice(0, 1)
    return masks[:, sel], iou[:, sel]


@pytest.fixture(scope="module")
def model(weights_path: Path) -> MobileSam:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_mobilesam(weights_path)


def _image(grabcut_dir: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(grabcut_dir / "images" / name).convert("RGB"))


def _prompts(h: int, w: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """(B, N, 2) points, (B, N) labels, optional (B, 4) boxes in the original frame."""
    ext = np.array([[0.3 * w, 0.5 * h], [0.7 * w, 0.5 * h], [0.5 * w, 0.25 * h], [0.5 * w, 0.8 * h]])
    box = np.array([0.3 * w, 0.25 * h, 0.7 * w, 0.8 * h])
    click = np.array([[0.5 * w, 0.5 * h]])
    return [
        (ext[None], np.ones((1, 4), np.int64), None),  # one prompt set
        (np.stack([ext, ext[[1, 0, 3, 2]]]), np.ones((2, 4), np.int64), np.stack([box, box])),  # 2 variants + box
        (np.stack([click, click + 10, click - 10]), np.array([[1], [1], [0]]), None),  # 3 single clicks
    ]


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("multimask", [False, True])
def test_fast_decoder_matches_reference(model: MobileSam, grabcut_dir: Path, name: str, multimask: bool) -> None:
    image = _image(grabcut_dir, name)
    pred = SamPredictor(model)
    pred.set_image(image)
    st = pred._require()
    dec, enc = model.mask_decoder, model.prompt_encoder
    h, w = image.shape[:2]
    scale = pred.image_size / max(h, w)
    previous: torch.Tensor | None = None
    with torch.inference_mode():
        for pts, labels, boxes in _prompts(h, w):
            tp = torch.as_tensor(pts * scale, dtype=torch.float32)
            tl = torch.as_tensor(labels)
            tb = None if boxes is None else torch.as_tensor(boxes * scale, dtype=torch.float32)
            for mask_input in (None, previous):
                if mask_input is not None and mask_input.shape[0] != tp.shape[0]:
                    mask_input = mask_input[:1].expand(tp.shape[0], -1, -1, -1) + torch.linspace(
                        -1, 1, tp.shape[0]
                    ).view(-1, 1, 1, 1)
                sparse, dense = enc((tp, tl), tb, mask_input, input_size=pred.image_size)
                fast, fast_iou = dec(st.embedding, pred._dense(), sparse, dense, multimask)
                ref, ref_iou = _reference_forward(dec, st.embedding, pred._dense(), sparse, dense, multimask)
                assert fast.shape == ref.shape == (tp.shape[0], 3 if multimask else 1, 256, 256)
                assert float((fast - ref).abs().max()) <= TOL
                assert float((fast_iou - ref_iou).abs().max()) <= 1e-5
                for f, r in zip(fast, ref, strict=True):
                    mf = upscale_logits(f, st.input_size, st.original_size)
                    mr = upscale_logits(r, st.input_size, st.original_size)
                    assert np.array_equal(mf, mr)
                previous = ref[:, :1].clone()


@pytest.mark.parametrize("name", IMAGES)
def test_segmenter_masks_identical(
    model: MobileSam, grabcut_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole recipe (2 prompt variants, clicks, previous-mask refinement) gives the same bool masks."""
    image = _image(grabcut_dir, name)
    h, w = image.shape[:2]
    ext = [(0.3 * w, 0.5 * h), (0.7 * w, 0.5 * h), (0.5 * w, 0.25 * h), (0.5 * w, 0.8 * h)]

    def run() -> list[np.ndarray]:
        seg = MobileSamSegmenter(model, decoder_precision="fp32")
        seg.set_image(image)
        first = seg.predict(extreme_points=ext, zoom="off")
        second = seg.predict(extreme_points=ext, clicks=[(0.5 * w, 0.5 * h, True)], previous=first, zoom="off")
        third = seg.predict(extreme_points=ext, clicks=[(0.35 * w, 0.4 * h, False)], previous=second)
        return [first.mask, second.mask, third.mask]

    fast = run()
    monkeypatch.setattr(MaskDecoder, "forward", _reference_forward)
    ref = run()
    for f, r in zip(fast, ref, strict=True):
        assert f.dtype == bool and np.array_equal(f, r)
