"""Window partition / merge of ``TinyViTBlock._windowed_attention`` in one copy each
(``tiny_vit._to_windows`` / ``_from_windows``).

Conventions checked: the same values as the former pad-then-``view/transpose/reshape`` (and merge,
then crop) on every padding case and dtype, and a contiguous merged map. The former merge left a
strided crop, which ``proj`` (``F.linear``) handles as ``matmul`` then a separate bias ``add_`` (two
bf16 roundings) where a contiguous map gets ``addmm`` (bias inside the GEMM, one rounding): with the
former copies patched back in plus ``.contiguous()`` the bf16 / fp32 embeddings of real images are
bit-identical, and without it they are no closer to the exact fp32 embedding than the new ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from gt_widget.segment.mobilesam import MobileSam, SamPredictor, load_mobilesam, tiny_vit


def _ref_to_windows(t: torch.Tensor, ws: int, pad_row: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The former code: a padded map (expand().contiguous(), then the real tokens), then partition."""
    b, h, w, d = t.shape
    pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
    if pad_b or pad_r:
        padded = pad_row().view(1, 1, 1, d).expand(b, h + pad_b, w + pad_r, d).contiguous()
        padded[:, :h, :w] = t
        t = padded
    ph, pw = h + pad_b, w + pad_r
    return t.view(b, ph // ws, ws, pw // ws, ws, d).transpose(2, 3).reshape(-1, ws * ws, d)


def _ref_from_windows(win: torch.Tensor, h: int, w: int, ws: int, contiguous: bool = False) -> torch.Tensor:
    """The former code: merge the windows into the padded map, then crop (a strided view)."""
    d = win.shape[2]
    ph, pw = -(-h // ws) * ws, -(-w // ws) * ws
    b = win.shape[0] // ((ph // ws) * (pw // ws))
    out = win.view(b, ph // ws, pw // ws, ws, ws, d).transpose(2, 3).reshape(b, ph, pw, d)
    return out[:, :h, :w].contiguous() if contiguous else out[:, :h, :w]


# (batch, H, W, window): the encoder's 1024 px stages (128/7, 64/14, 64/7), exact multiples, maps
# smaller than a window, padding on one side only.
SHAPES = [(1, 128, 128, 7), (2, 64, 64, 14), (1, 64, 64, 7), (1, 14, 28, 7), (1, 5, 9, 7), (2, 20, 14, 7), (1, 7, 3, 7)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
def test_one_copy_windows_equal_the_former_ones(shape: tuple[int, int, int, int], dtype: torch.dtype) -> None:
    b, h, w, ws = shape
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(b, h, w, 6, generator=gen).to(dtype)
    row = torch.randn(1, 6, generator=gen).to(dtype)
    calls: list[int] = []

    def pad_row() -> torch.Tensor:
        calls.append(1)
        return row

    win = tiny_vit._to_windows(t, ws, pad_row)
    assert torch.equal(win, _ref_to_windows(t, ws, lambda: row))
    assert len(calls) == (1 if h % ws or w % ws else 0)
    out = torch.randn(win.shape, generator=gen).to(dtype)
    merged = tiny_vit._from_windows(out, h, w, ws)
    assert merged.is_contiguous() and torch.equal(merged, _ref_from_windows(out, h, w, ws))


@pytest.fixture(scope="module")
def models(weights_path: Path) -> dict[str, MobileSam]:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return {"optimized": load_mobilesam(weights_path), "exact": load_mobilesam(weights_path, optimize=False)}


def _embedding(model: MobileSam, image: np.ndarray, precision: str) -> torch.Tensor:
    p = SamPredictor(model, precision=precision)
    p.set_image(image)
    return p.get_image_embedding()


@pytest.mark.weights
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_embedding_bit_identical_to_the_former_copies_made_contiguous(
    models: dict[str, MobileSam], grabcut_dir: Path, precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gt_widget.imageio import load_image

    image = load_image(grabcut_dir / "images" / "llama.png")
    new = _embedding(models["optimized"], image, precision)
    exact = _embedding(models["exact"], image, "fp32")
    monkeypatch.setattr(tiny_vit, "_to_windows", _ref_to_windows)
    monkeypatch.setattr(tiny_vit, "_from_windows", functools.partial(_ref_from_windows, contiguous=True))
    assert torch.equal(_embedding(models["optimized"], image, precision), new)
    monkeypatch.setattr(tiny_vit, "_from_windows", _ref_from_windows)
    former = _embedding(models["optimized"], image, precision)
    err_new, err_former = (new - exact).abs().mean().item(), (former - exact).abs().mean().item()
    print(f"{precision}: mean |emb - exact| new {err_new:.3e}, former {err_former:.3e}")
    assert err_new <= err_former * 1.01, (err_new, err_former)
