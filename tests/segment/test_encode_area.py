"""``encode_area``: encoding only the image's own area (opt-in) vs the full padded square (default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gt_widget.segment.mobilesam import MobileSam, SamPredictor, load_mobilesam
from gt_widget.segment.mobilesam.predictor import _BLANK

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def model(weights_path: Path) -> MobileSam:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_mobilesam(weights_path)


@pytest.fixture(scope="module")
def frame(shared_dir: Path) -> np.ndarray:
    """A 16:9 DAVIS frame (854 x 480 -> 1024 x 576 of a 1024 square: 36 of 64 embedding rows are real)."""
    from gt_widget.imageio import load_image

    return load_image(shared_dir / "data" / "davis345" / "images" / "000.jpg")


@pytest.fixture(scope="module")
def gt(shared_dir: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(shared_dir / "data" / "davis345" / "masks" / "000.png").convert("L")) > 127


@pytest.fixture(scope="module")
def embeddings(model: MobileSam, frame: np.ndarray) -> dict[str, SamPredictor]:
    out = {}
    for area in ("full", "real", "real-zeros"):
        p = SamPredictor(model, encode_area=area)
        p.set_image(frame)
        out[area] = p
    return out


def test_default_is_the_full_square(model: MobileSam, frame: np.ndarray, embeddings: dict[str, SamPredictor]) -> None:
    default = SamPredictor(model)
    assert default.encode_area == "full"
    default.set_image(frame)
    assert torch.equal(default.get_image_embedding(), embeddings["full"].get_image_embedding())


def test_square_image_is_unchanged_by_the_option(model: MobileSam, frame: np.ndarray) -> None:
    square = np.ascontiguousarray(frame[:, :480])
    full, real = SamPredictor(model), SamPredictor(model, encode_area="real")
    full.set_image(square)
    real.set_image(square)
    assert torch.equal(full.get_image_embedding(), real.get_image_embedding())


def test_real_area_embedding_shape_fill_and_masks(
    model: MobileSam, embeddings: dict[str, SamPredictor], gt: np.ndarray
) -> None:
    full = embeddings["full"].get_image_embedding()
    real = embeddings["real"].get_image_embedding()
    zeros = embeddings["real-zeros"].get_image_embedding()
    assert real.shape == zeros.shape == full.shape == (1, 256, 64, 64)
    assert embeddings["real"].input_size == (576, 1024)
    # padded rows: the full encoder's blank embedding, or zeros
    assert torch.equal(real[..., 36:, :], _BLANK[model][(1024, "fp32")][..., 36:, :])
    assert not zeros[..., 36:, :].any()
    assert torch.equal(real[..., :36, :], zeros[..., :36, :])
    # real rows: close to the full encoder's (they differ near the padding's edge only)
    cos = torch.nn.functional.cosine_similarity(real[..., :32, :], full[..., :32, :], dim=1)
    assert cos.mean() > 0.9, float(cos.mean())
    ys, xs = np.nonzero(gt)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
    for area in ("full", "real", "real-zeros"):
        mask = embeddings[area].predict(box=box, multimask_output=False)[0][0]
        assert mask.shape == gt.shape == (480, 854) and mask.dtype == bool
        iou = (mask & gt).sum() / (mask | gt).sum()
        assert iou > 0.8, (area, float(iou))


def test_bad_encode_area_says_which_values(model: MobileSam) -> None:
    with pytest.raises(ValueError, match="encode_area must be one of"):
        SamPredictor(model, encode_area="crop")


def test_only_the_fast_recipe_turns_it_on(weights_path: Path, frame: np.ndarray, gt: np.ndarray) -> None:
    from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter
    from gt_widget.segment.named import load_recipe

    default, fast = load_recipe("default", weights=weights_path), load_recipe("fast", weights=weights_path)
    assert isinstance(default, MobileSamSegmenter) and isinstance(fast, MobileSamSegmenter)
    assert default.encode_area == "full" and fast.encode_area == "real"
    ys, xs = np.nonzero(gt)
    fast.set_image(frame)
    mask = fast.predict(box=[xs.min(), ys.min(), xs.max(), ys.max()]).mask
    assert mask.shape == gt.shape and (mask & gt).sum() / (mask | gt).sum() > 0.8


def test_blank_embedding_is_computed_once_for_concurrent_workers(
    weights_path: Path, frame: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch engine's model workers start together: only one of them runs the blank encode."""
    import threading
    import time

    monkeypatch.setenv("GT_WIDGET_CACHE", str(tmp_path))  # an empty disk cache: the blank must be computed

    fresh = load_mobilesam(weights_path)  # nothing cached for it yet
    barrier = threading.Barrier(2)
    blanks: list[int] = []

    def hook(_m: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if not inputs[0].any():  # the all-padding input
            blanks.append(1)
            time.sleep(0.3)  # the other worker asks meanwhile
        else:
            barrier.wait(timeout=30)  # both workers encode their images at once, then want the blank

    fresh.image_encoder.register_forward_pre_hook(hook)
    predictors = [SamPredictor(fresh, image_size=256, encode_area="real") for _ in range(2)]
    threads = [threading.Thread(target=p.set_image, args=(frame,)) for p in predictors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(blanks) == 1
    assert torch.equal(predictors[0].get_image_embedding(), predictors[1].get_image_embedding())
