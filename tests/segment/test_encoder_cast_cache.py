"""Cached autocast-dtype weights in the TinyViT encoder (``CastConv2d``, ``CastLinear``, ``TinyViT.cache_casts``).

Conventions checked: under CPU bf16 autocast the wrapped layers give bit-identical results to plain
autocast (same ``.to`` rounding of the weights, same kernels) without casting their weights on each
run; the cache follows in-place weight changes; outside autocast, with gradients or for float64 data
the plain layer runs; the optimized model's bf16 and fp32 embeddings of real images are unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.profiler import profile

from gt_widget.segment.mobilesam import MobileSam, SamPredictor, load_mobilesam
from gt_widget.segment.mobilesam.tiny_vit import CastConv2d, CastLinear, ConvGelu, LinearGelu, TinyViT

# PatchEmbed 1 + MBConv conv3 x 2 + PatchMerging conv3 x 3 + (qkv, proj, fc2, local_conv) x 10 blocks
# + neck 2 + the unused classifier head 1.
N_CAST = 1 + 2 + 3 + 4 * 10 + 2 + 1
BF16 = torch.bfloat16


def _layers() -> list[tuple[nn.Module, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    return [
        (nn.Linear(96, 160).eval(), torch.randn(2, 7, 96, generator=gen)),
        (nn.Conv2d(64, 64, 3, 1, 1, groups=64).eval(), torch.randn(1, 64, 20, 20, generator=gen)),
        (nn.Conv2d(64, 32, 1, bias=False).eval(), torch.randn(1, 64, 9, 9, generator=gen)),
    ]


def _wrap(layer: nn.Module) -> CastConv2d | CastLinear:
    return CastLinear(layer) if isinstance(layer, nn.Linear) else CastConv2d(layer)  # type: ignore[arg-type]


def _weight_casts(module: nn.Module, x: torch.Tensor, shapes: set[tuple[int, ...]]) -> int:
    """How many ``aten::_to_copy`` calls ``module(x)`` makes on tensors shaped like a weight in ``shapes``."""
    with profile(record_shapes=True) as prof:
        module(x)
    return sum(e.name == "aten::_to_copy" and tuple(e.input_shapes[0]) in shapes for e in prof.events())


@pytest.mark.parametrize("channels_last", [False, True])
def test_cached_cast_is_bit_identical_to_autocast_and_skips_weight_casts(channels_last: bool) -> None:
    for layer, x in _layers():
        if channels_last and x.dim() == 4:
            layer = layer.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            x = x.contiguous(memory_format=torch.channels_last)
        wrapped = _wrap(layer)
        shapes = {tuple(layer.weight.shape)}
        with torch.inference_mode(), torch.autocast("cpu", dtype=BF16):
            ref = layer(x)
            out = wrapped(x)
            assert out.dtype == BF16
            assert torch.equal(out, ref), layer
            assert _weight_casts(layer, x, shapes) == 1  # autocast: every run
            assert _weight_casts(wrapped, x, shapes) == 0  # cached since the first run
        with torch.inference_mode():  # no autocast: the plain fp32 layer
            assert torch.equal(wrapped(x), layer(x))


def test_cache_follows_weight_changes_and_device_moves() -> None:
    layer, x = _layers()[0]
    wrapped = _wrap(layer)
    with torch.inference_mode(), torch.autocast("cpu", dtype=BF16):
        before = wrapped(x)
    with torch.no_grad():
        layer.weight.mul_(2.0)
    with torch.inference_mode(), torch.autocast("cpu", dtype=BF16):
        after = wrapped(x)
        assert not torch.equal(after, before)
        assert torch.equal(after, layer(x))
    wrapped.to(torch.float32)  # ``_apply`` drops the cache
    assert wrapped._cast is None


def test_plain_layer_with_gradients_and_float64() -> None:
    layer, x = _layers()[0]
    wrapped = _wrap(layer)
    with torch.autocast("cpu", dtype=BF16):
        out = wrapped(x)
        out.float().sum().backward()
    assert layer.weight.grad is not None and wrapped._cast is None
    x64, wrapped64 = x.double(), _wrap(nn.Linear(96, 160).double().eval())
    with torch.inference_mode(), torch.autocast("cpu", dtype=BF16):
        assert wrapped64(x64).dtype == torch.float64 and wrapped64._cast is None


def test_cache_casts_needs_folding_and_composes_with_fuse_gelu() -> None:
    enc = TinyViT().eval()
    with pytest.raises(RuntimeError, match="fuse_conv_bn"):
        enc.cache_casts()
    enc.fuse_conv_bn()
    # cache_casts before fuse_gelu: the GELU-followed layers are still fused (unwrapped first).
    assert enc.cache_casts() == N_CAST + 21
    assert enc.fuse_gelu() == 21
    mods = list(enc.modules())
    assert sum(isinstance(m, (CastConv2d, CastLinear)) for m in mods) == N_CAST
    assert sum(isinstance(m, (ConvGelu, LinearGelu)) for m in mods) == 21
    assert enc.cache_casts() == 0  # idempotent; fused layers' ``inner`` is not wrapped again


@pytest.fixture(scope="module")
def models(weights_path: Path) -> dict[str, MobileSam]:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return {
        "uncached": load_mobilesam(weights_path, optimize=False).optimize_for_inference(cache_casts=False),
        "cached": load_mobilesam(weights_path),
    }


@pytest.mark.weights
def test_load_mobilesam_caches_casts_by_default(models: dict[str, MobileSam]) -> None:
    for name, n in (("cached", N_CAST), ("uncached", 0)):
        assert sum(isinstance(m, (CastConv2d, CastLinear)) for m in models[name].modules()) == n, name
    assert models["cached"].casts_cached and not models["uncached"].casts_cached


@pytest.mark.weights
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_embedding_of_real_images_is_bit_identical(
    models: dict[str, MobileSam], grabcut_dir: Path, precision: str
) -> None:
    from gt_widget.imageio import load_image

    for stem in ("106024.jpg", "llama.png"):
        image = load_image(grabcut_dir / "images" / stem)
        embs = []
        for name in ("uncached", "cached"):
            p = SamPredictor(models[name], precision=precision)
            p.set_image(image)
            embs.append(p.get_image_embedding())
        assert torch.equal(embs[0], embs[1]), (stem, precision, (embs[0] - embs[1]).abs().max().item())
