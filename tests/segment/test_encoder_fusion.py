"""Conv/linear + GELU fusion in the TinyViT encoder (``ConvGelu``, ``LinearGelu``, ``TinyViT.fuse_gelu``).

Conventions checked: fp32 fused == separate ops to float rounding; under CPU bf16 autocast the fused op
runs in bf16 (cached bf16 weights) and is at least as close to fp32 as the separate bf16 ops (one
rounding instead of two); without oneDNN, off CPU or with gradients it falls back to the separate ops.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import profile

from gt_widget.segment.mobilesam import MobileSam, SamPredictor, load_mobilesam
from gt_widget.segment.mobilesam.tiny_vit import ConvGelu, LinearGelu, TinyViT

FUSED_CONV_OPS = "mkldnn::_convolution_pointwise"
FUSED_LINEAR_OPS = "mkldnn::_linear_pointwise"
# PatchEmbed 1 + 2 MBConv x 2 + 3 PatchMerging x 2 convs; one MLP fc1 per TinyViT block (2 + 6 + 2).
N_CONV_GELU, N_LINEAR_GELU = 11, 10

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")

# (in, out, kernel, stride, pad, groups, side): the encoder's three kinds of conv+GELU.
CONVS = {
    "stem3x3s2": (3, 32, 3, 2, 1, 1, 64),
    "expand1x1": (64, 256, 1, 1, 0, 1, 32),
    "depthwise3x3": (128, 128, 3, 1, 1, 128, 32),
    "depthwise3x3s2": (128, 128, 3, 2, 1, 128, 33),
}


def _conv(name: str, device: str = "cpu") -> tuple[nn.Conv2d, torch.Tensor]:
    cin, cout, k, s, p, g, side = CONVS[name]
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, s, p, groups=g, bias=True).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) / (cin // g * k * k) ** 0.5)
        conv.bias.copy_(torch.randn(cout, generator=gen) * 0.1)  # type: ignore[union-attr]
    x = torch.randn(1, cin, side, side, generator=gen)
    return conv.to(device), x.to(device)


def _op_counts(fn: object) -> dict[str, int]:
    with profile() as prof:
        fn()  # type: ignore[operator]
    names = [e.name for e in prof.events()]
    return {n: names.count(n) for n in (FUSED_CONV_OPS, FUSED_LINEAR_OPS, "aten::gelu")}


def _random_encoder() -> TinyViT:
    """A TinyViT with non-trivial BatchNorm statistics (so folding matters), eval mode, not yet fused."""
    torch.manual_seed(0)
    enc = TinyViT().eval()
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)  # type: ignore[union-attr]
                m.running_var.uniform_(0.5, 1.5)  # type: ignore[union-attr]
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return enc


@needs_onednn
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("name", list(CONVS))
def test_conv_gelu_fp32_matches_separate_ops(name: str, channels_last: bool) -> None:
    conv, x = _conv(name)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=torch.channels_last)
    fused = ConvGelu(conv)
    with torch.inference_mode():
        ref = F.gelu(conv(x))
        out = fused(x)
        counts = _op_counts(lambda: fused(x))
    assert counts[FUSED_CONV_OPS] == 1 and counts["aten::gelu"] == 0
    assert out.dtype == torch.float32 and out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    if channels_last:
        assert out.is_contiguous(memory_format=torch.channels_last)


@needs_onednn
@pytest.mark.parametrize("name", list(CONVS))
def test_conv_gelu_bf16_autocast_runs_bf16_and_rounds_once(name: str) -> None:
    conv, x = _conv(name)
    fused = ConvGelu(conv)
    with torch.inference_mode():
        exact = F.gelu(conv(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            sep = F.gelu(conv(x))
            out = fused(x)
            cached = fused._cast
            again = fused(x)
    assert out.dtype == torch.bfloat16 and sep.dtype == torch.bfloat16
    assert cached is not None and fused._cast is cached  # the bf16 weight copy is reused, not re-cast
    assert cached[1].dtype == torch.bfloat16
    torch.testing.assert_close(again, out, rtol=0, atol=0)
    err_fused = (out.float() - exact).abs()
    err_sep = (sep.float() - exact).abs()
    assert err_fused.max() <= 0.05 * exact.abs().max()
    assert err_fused.mean() <= err_sep.mean() * 1.05, (err_fused.mean(), err_sep.mean())


@needs_onednn
def test_bf16_weight_cache_follows_weight_updates() -> None:
    conv, x = _conv("expand1x1")
    fused = ConvGelu(conv)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        before = fused(x)
    with torch.no_grad():
        conv.weight.mul_(2.0)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        after = fused(x)
        expected = F.gelu(conv(x))
    assert not torch.equal(before, after)
    torch.testing.assert_close(after.float(), expected.float(), rtol=0.05, atol=0.05)


@needs_onednn
def test_linear_gelu_matches_separate_ops() -> None:
    gen = torch.Generator().manual_seed(0)
    lin = nn.Linear(128, 512).eval()
    x = torch.randn(1, 16, 16, 128, generator=gen)
    fused = LinearGelu(lin)
    with torch.inference_mode():
        ref = F.gelu(lin(x))
        torch.testing.assert_close(fused(x), ref, rtol=1e-5, atol=1e-5)
        assert _op_counts(lambda: fused(x))[FUSED_LINEAR_OPS] == 1
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, sep = fused(x), F.gelu(lin(x))
    assert out.dtype == torch.bfloat16 and out.shape == ref.shape
    assert (out.float() - ref).abs().mean() <= (sep.float() - ref).abs().mean() * 1.05


def test_fallback_without_onednn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    conv, x = _conv("depthwise3x3")
    fused = ConvGelu(conv)
    with torch.inference_mode():
        ref = F.gelu(conv(x))
        counts = _op_counts(lambda: fused(x))
        out = fused(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fused(x)
    assert counts[FUSED_CONV_OPS] == 0 and counts["aten::gelu"] == 1
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert low.dtype == torch.bfloat16  # the plain ops under autocast


def test_fallback_where_onednn_lacks_the_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    """AVX2-only CPUs: oneDNN has no bf16 convolution there (the direct op raises, aten picks another
    kernel), so under bf16 autocast the plain ops run; fp32 still fuses."""
    from gt_widget.segment.mobilesam import tiny_vit

    monkeypatch.setattr(tiny_vit, "onednn_runs", lambda dtype: dtype == torch.float32)
    conv, x = _conv("expand1x1")
    fused = ConvGelu(conv)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = _op_counts(lambda: fused(x))
            ref = F.gelu(conv(x))
            out = fused(x)
        full = _op_counts(lambda: fused(x))
        dconv = copy.deepcopy(conv).double()  # no float64 in oneDNN: plain ops
        torch.testing.assert_close(ConvGelu(dconv)(x.double()), F.gelu(dconv(x.double())), rtol=0, atol=0)
    assert low[FUSED_CONV_OPS] == 0 and low["aten::gelu"] == 1
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    if torch.backends.mkldnn.is_available():
        assert full[FUSED_CONV_OPS] == 1


def test_fallback_off_cpu_and_with_gradients() -> None:
    conv, x = _conv("expand1x1", device="meta")  # any non-CPU device takes the plain ops
    out = ConvGelu(conv)(x)
    assert out.device.type == "meta" and out.shape == (1, 256, 32, 32)
    conv, x = _conv("expand1x1")
    fused = ConvGelu(conv)
    fused(x).sum().backward()  # no autograd formula for the oneDNN op: the plain ops run
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()


@needs_onednn
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_encoder_matches_and_really_fuses(channels_last: bool) -> None:
    enc = _random_encoder()
    enc.fuse_conv_bn()
    fused = copy.deepcopy(enc)
    assert fused.fuse_gelu() == N_CONV_GELU + N_LINEAR_GELU
    assert sum(isinstance(m, ConvGelu) for m in fused.modules()) == N_CONV_GELU
    assert sum(isinstance(m, LinearGelu) for m in fused.modules()) == N_LINEAR_GELU
    for m in (enc, fused):
        m.channels_last = channels_last
        if channels_last:
            m.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref, out = enc(x), fused(x)
        counts = _op_counts(lambda: fused(x))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    # Only MBConv's residual ``act(y + x)`` (2 blocks) keeps a separate GELU.
    assert counts == {FUSED_CONV_OPS: N_CONV_GELU, FUSED_LINEAR_OPS: N_LINEAR_GELU, "aten::gelu": 2}


def test_fuse_gelu_needs_folded_batchnorm() -> None:
    enc = _random_encoder()
    with pytest.raises(RuntimeError, match="fuse_conv_bn"):
        enc.fuse_gelu()
    assert not any(isinstance(m, (ConvGelu, LinearGelu)) for m in enc.modules())  # left untouched
    model = MobileSam().optimize_for_inference(fuse_conv_bn=False)
    assert not any(isinstance(m, (ConvGelu, LinearGelu)) for m in model.modules())


@pytest.fixture(scope="module")
def models(weights_path: Path) -> dict[str, MobileSam]:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    unfused = load_mobilesam(weights_path, optimize=False).optimize_for_inference(fuse_gelu=False)
    return {
        "exact": load_mobilesam(weights_path, optimize=False),
        "unfused": unfused,
        "fused": load_mobilesam(weights_path),
    }


@pytest.mark.weights
def test_load_mobilesam_fuses_by_default(models: dict[str, MobileSam]) -> None:
    for name, n_conv, n_lin in (("fused", N_CONV_GELU, N_LINEAR_GELU), ("exact", 0, 0), ("unfused", 0, 0)):
        mods = list(models[name].modules())
        assert sum(isinstance(m, ConvGelu) for m in mods) == n_conv, name
        assert sum(isinstance(m, LinearGelu) for m in mods) == n_lin, name


@pytest.mark.weights
@needs_onednn
def test_bf16_fused_embedding_as_close_to_fp32_as_unfused(models: dict[str, MobileSam], shared_dir: Path) -> None:
    from gt_widget.imageio import load_image

    image = load_image(shared_dir / "data" / "grabcut" / "images" / "llama.png")
    embs = {}
    for name, model, precision in (
        ("exact", models["exact"], "fp32"),
        ("fp32_fused", models["fused"], "fp32"),
        ("bf16_unfused", models["unfused"], "bf16"),
        ("bf16_fused", models["fused"], "bf16"),
    ):
        p = SamPredictor(model, precision=precision)
        p.set_image(image)
        embs[name] = p.get_image_embedding().numpy()
    exact = embs["exact"]
    assert np.abs(embs["fp32_fused"] - exact).max() < 1e-4
    err_unfused = np.abs(embs["bf16_unfused"] - exact).mean()
    err_fused = np.abs(embs["bf16_fused"] - exact).mean()
    assert err_fused <= err_unfused * 1.1, (err_fused, err_unfused)  # 12 images: 1.49e-3 vs 1.50e-3 mean
    assert np.abs(embs["bf16_fused"] - exact).max() < 0.1


def test_torch_compile_of_fused_module_works() -> None:
    """Inductor cannot lower the pointwise oneDNN ops (and fuses conv+GELU itself): compiled code takes
    the plain ops (benchmarks/bench_latency.py's ``compile`` variant compiles the optimized encoder)."""
    lin = nn.Linear(128, 512).eval()
    x = torch.randn(1, 8, 8, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = F.gelu(lin(x))
        out = torch.compile(LinearGelu(lin))(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
