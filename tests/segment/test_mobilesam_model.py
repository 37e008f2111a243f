"""MobileSAM model loading and the ``SamPredictor`` contract beyond the golden numbers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from gt_widget.errors import ImageLoadError, PromptError, WeightsError
from gt_widget.segment.mobilesam import MobileSam, SamPredictor, load_mobilesam, upscale_logits
from gt_widget.segment.mobilesam.model import load_state_dict_file


@pytest.fixture(scope="module")
def model(weights_path: Path) -> MobileSam:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_mobilesam(weights_path)


@pytest.fixture(scope="module")
def image(shared_dir: Path) -> np.ndarray:
    from gt_widget.imageio import load_image

    return load_image(shared_dir / "data" / "grabcut" / "images" / "llama.png")


@pytest.fixture(scope="module")
def predictor(model: MobileSam, image: np.ndarray) -> SamPredictor:
    p = SamPredictor(model)
    p.set_image(image)
    return p


@pytest.mark.weights
def test_checkpoint_loads_weights_only_and_strict(weights_path: Path) -> None:
    state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
    assert len(state) == 439
    model = MobileSam()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    n_params = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert round(n_params / 1e6, 2) == 10.14
    assert set(model.state_dict()) == set(state)


def test_damaged_checkpoint_is_a_weights_error(tmp_path: Path) -> None:
    bad = tmp_path / "mobile_sam.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="GT_WIDGET_WEIGHTS"):
        load_state_dict_file(bad)
    other = tmp_path / "other.pt"
    torch.save({"layer.weight": torch.zeros(2)}, other)
    with pytest.raises(WeightsError, match="does not fit"):
        load_mobilesam(other, verify=False)


@pytest.mark.weights
def test_outputs_have_the_documented_shapes(predictor: SamPredictor, image: np.ndarray) -> None:
    h, w = image.shape[:2]
    assert predictor.is_image_set and predictor.original_size == (h, w) and predictor.input_size == (741, 1024)
    masks, iou, low = predictor.predict(np.array([[200.0, 200.0]]), np.array([1]))
    assert masks.shape == (3, h, w) and masks.dtype == np.bool_
    assert iou.shape == (3,) and iou.dtype == np.float32
    assert low.shape == (3, 256, 256) and low.dtype == np.float32
    logits, _, _ = predictor.predict(box=np.array([122, 116, 358, 370]), multimask_output=False, return_logits=True)
    assert logits.shape == (1, h, w) and logits.dtype == np.float32
    box_mask, _, _ = predictor.predict(box=np.array([122, 116, 358, 370]), multimask_output=False)
    np.testing.assert_array_equal(box_mask, logits > 0)


@pytest.mark.weights
def test_mask_input_refines_and_negative_click_removes(predictor: SamPredictor) -> None:
    box = np.array([122, 116, 358, 370])
    masks, _, low = predictor.predict(box=box, multimask_output=False)
    assert masks[0, 200, 200] and not masks[0, 10, 10]
    # a negative click on the object, with the previous logits, must carve the object out around it
    again, _, _ = predictor.predict(
        np.array([[195.0, 250.0]]), np.array([0]), box=box, mask_input=low[0][None], multimask_output=False
    )
    assert again[0].sum() < masks[0].sum()


@pytest.mark.weights
def test_embedding_round_trip(model: MobileSam, predictor: SamPredictor) -> None:
    other = SamPredictor(model)
    other.set_embedding(predictor.get_image_embedding(), predictor.original_size, predictor.input_size)
    pts, lab = np.array([[250.0, 220.0], [150.0, 300.0]]), np.array([1, 0])
    a = predictor.predict(pts, lab)
    b = other.predict(pts, lab)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(PromptError, match="shape"):
        other.set_embedding(torch.zeros(1, 256, 32, 32), (10, 10), (1024, 1024))


@pytest.mark.weights
def test_bad_inputs_raise_clear_errors(model: MobileSam, predictor: SamPredictor) -> None:
    fresh = SamPredictor(model)
    with pytest.raises(PromptError, match="set_image"):
        fresh.predict(box=np.array([0, 0, 5, 5]))
    with pytest.raises(ImageLoadError, match="load_image"):
        fresh.set_image(np.zeros((10, 10), np.uint8))
    with pytest.raises(ImageLoadError, match="uint8"):
        fresh.set_image(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(PromptError, match=r"\(N, 2\)"):
        predictor.predict(np.array([1.0, 2.0, 3.0]), np.array([1]))
    with pytest.raises(PromptError, match="together"):
        predictor.predict(np.array([[1.0, 2.0]]))
    with pytest.raises(PromptError, match="1 \\(positive\\) or 0"):
        predictor.predict(np.array([[1.0, 2.0]]), np.array([2]))
    with pytest.raises(PromptError, match="box"):
        predictor.predict(box=np.array([1, 2, 3]))
    with pytest.raises(PromptError, match="mask_input"):
        predictor.predict(box=np.array([1, 2, 30, 40]), mask_input=np.zeros((256, 256), np.float32))
    with pytest.raises(ValueError, match="multiple of 16"):
        SamPredictor(model, image_size=1000)
    with pytest.raises(ValueError, match="precision"):
        SamPredictor(model, precision="fp16")


@pytest.mark.weights
def test_set_image_in_a_thread_swaps_atomically(model: MobileSam, image: np.ndarray) -> None:
    p = SamPredictor(model)
    small = np.ascontiguousarray(image[:200, :300])
    p.set_image(small)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            p.set_image(image)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    shapes = set()
    while t.is_alive():
        masks, _, _ = p.predict(box=np.array([10, 10, 100, 100]), multimask_output=False)
        shapes.add(masks.shape)
    t.join()
    assert not errors
    assert shapes <= {(1, 200, 300), (1, *image.shape[:2])}
    assert p.predict(box=np.array([10, 10, 100, 100]))[0].shape[1:] == image.shape[:2]


@pytest.mark.weights
def test_lower_encoder_resolution_still_segments(model: MobileSam, predictor: SamPredictor, image: np.ndarray) -> None:
    fast = SamPredictor(model, image_size=512)
    fast.set_image(image)
    assert fast.get_image_embedding().shape == (1, 256, 32, 32) and fast.input_size == (370, 512)
    box = np.array([122, 116, 358, 370])
    m512, _, low = fast.predict(box=box, multimask_output=False)
    m1024, _, _ = predictor.predict(box=box, multimask_output=False)
    assert low.shape == (1, 256, 256)
    iou = (m512 & m1024).sum() / (m512 | m1024).sum()
    assert iou > 0.9, iou
    again, _, _ = fast.predict(box=box, mask_input=low, multimask_output=False)
    assert again.shape == m512.shape


def test_banded_upscaling_matches_direct_interpolation(rng: np.random.Generator) -> None:
    low = torch.from_numpy(rng.normal(0, 4, size=(3, 256, 256)).astype(np.float32))
    low = torch.nn.functional.avg_pool2d(low[None], 5, 1, 2)[0]  # smooth, like real logits
    for original, inp in [((1537, 2311), (681, 1024)), ((3000, 700), (1024, 239))]:
        direct = upscale_logits(low, inp, original, return_logits=True)
        banded = upscale_logits(low, inp, original, return_logits=True, max_chunk_elements=50_000)
        np.testing.assert_allclose(banded, direct, atol=1e-5)
        masks = upscale_logits(low, inp, original, max_chunk_elements=50_000)
        assert masks.dtype == np.bool_
        assert (masks == (direct > 0)).mean() > 0.99999
        # the sign-change shortcut of the bool path equals thresholding the banded logits exactly
        np.testing.assert_array_equal(masks, banded > 0)


def test_big_image_upscaling_stays_small_in_memory() -> None:
    import tracemalloc

    low = torch.randn(3, 256, 256)
    tracemalloc.start()
    try:
        masks = upscale_logits(low, (819, 1024), (8000, 10000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert masks.shape == (3, 8000, 10000) and masks.dtype == np.bool_
    # the bool output itself is 240 MB; three float32 full-size copies would add 960 MB
    assert peak < masks.nbytes + 80e6, peak / 1e6


def test_allocator_tuning_is_idempotent_and_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from gt_widget.segment.mobilesam import runtime

    first = runtime.tune_allocator()
    assert runtime.tune_allocator() is first
    if sys.platform.startswith("linux"):
        assert first  # glibc here: the thresholds were accepted
    monkeypatch.setattr(runtime, "_tuned", None)
    monkeypatch.setenv("GT_WIDGET_NO_MALLOC_TUNING", "1")
    assert runtime.tune_allocator() is False


@pytest.mark.weights
def test_batched_predict_torch_equals_single_calls(predictor: SamPredictor) -> None:
    from gt_widget.segment.mobilesam import scale_boxes

    boxes = np.array([[122, 116, 358, 370], [10, 10, 200, 150]], np.float64)
    scaled = torch.as_tensor(scale_boxes(boxes, predictor.original_size, predictor.input_size), dtype=torch.float32)
    masks, iou, low = predictor.predict_torch(None, None, scaled, multimask_output=True)
    assert masks.shape == (2, 3, *predictor.original_size) and iou.shape == (2, 3) and low.shape == (2, 3, 256, 256)
    for i, box in enumerate(boxes):
        m, s, lo = predictor.predict(box=box)
        assert (m == masks[i]).mean() > 0.9999
        np.testing.assert_allclose(s, iou[i], atol=1e-5)
        np.testing.assert_allclose(lo, low[i], atol=1e-3)
