"""TinyViT-5M image encoder of MobileSAM ("vit_t"), written from the published architecture.

Layout (parameter names match the upstream checkpoint so ``load_state_dict(strict=True)`` works):

- ``patch_embed``: two stride-2 3x3 ``Conv2d_BN`` with GELU between -> 64 channels at 1/4 resolution.
- ``layers[0]``: 2 MBConv blocks (inverted residual, expand 4), then ``PatchMerging`` to 128 ch at 1/8.
- ``layers[1..3]``: windowed-attention TinyViT blocks (dims 128/160/320, heads 4/5/10, windows 7/14/7);
  ``PatchMerging`` after stages 1 and 2 (the last one keeps the 1/16 resolution: stride 1).
- ``neck``: 1x1 conv -> LayerNorm2d -> 3x3 conv -> LayerNorm2d, 256 channels: the (B, 256, S/16, S/16)
  image embedding (64x64 for the standard 1024 input).
- ``norm_head`` / ``head``: ImageNet classifier left over from pre-training; unused, kept so the
  checkpoint loads strictly.

Details that matter numerically: ``nn.LayerNorm`` (eps 1e-5) inside attention and MLP, a channel-wise
``LayerNorm2d`` (eps 1e-6) in the neck, exact (erf) GELU, zero padding of the token map to a multiple
of the window *before* the attention's LayerNorm (so padded tokens take part in edge windows), and a
learned bias per head for every (|dy|, |dx|) offset inside a window.

Tensors between attention stages are kept channels-last, (B, H, W, C); the input size only has to be
a multiple of 16 (64 * 16 = 1024 is what the checkpoint was trained for).

Inference-only rewrites (``TinyViT.fuse_conv_bn`` then ``TinyViT.fuse_gelu``, done by
``MobileSam.optimize_for_inference``): BatchNorm folded into its convolution, and every convolution or
linear layer followed by GELU replaced by ``ConvGelu`` / ``LinearGelu`` (one oneDNN op, GELU applied as
a post-op on CPU). Module code that applies ``act`` after such a layer goes through ``then_gelu``.
``TinyViT.cache_casts`` then wraps every other conv/linear layer in ``CastConv2d`` / ``CastLinear``,
which keep their autocast-dtype (bf16) weights cached instead of autocast re-casting them on each run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor (as in SAM's neck)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Conv2d_BN(nn.Sequential):  # noqa: N801 - name mirrors the checkpoint's module structure
    """Bias-free convolution ``c`` followed by ``bn`` (BatchNorm2d in eval mode).

    ``fused()`` folds the BatchNorm into a single biased convolution (same function, one pass).
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, pad: int = 0, groups: int = 1
    ) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(in_ch, out_ch, kernel, stride, pad, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_ch))

    @torch.no_grad()
    def fused(self) -> nn.Conv2d:
        """An ``nn.Conv2d`` computing conv+BN in one step (inference only)."""
        conv: nn.Conv2d = self.c  # type: ignore[assignment]
        bn: nn.BatchNorm2d = self.bn  # type: ignore[assignment]
        assert bn.running_var is not None and bn.running_mean is not None
        inv_std = torch.rsqrt(bn.running_var.double() + bn.eps)
        scale = bn.weight.double() * inv_std
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            conv.stride,  # type: ignore[arg-type]
            conv.padding,  # type: ignore[arg-type]
            groups=conv.groups,
            bias=True,
        )
        fused.weight.copy_((conv.weight.double() * scale[:, None, None, None]).float())
        assert fused.bias is not None
        fused.bias.copy_((bn.bias.double() - bn.running_mean.double() * scale).float())
        return fused.to(conv.weight.device)


def onednn_usable(x: torch.Tensor) -> bool:
    """Whether the fused oneDNN CPU ops may run on ``x`` (CPU tensor, oneDNN built in and enabled)."""
    return x.device.type == "cpu" and torch.backends.mkldnn.is_available() and bool(torch.backends.mkldnn.enabled)


def onednn_runs(dtype: torch.dtype) -> bool:
    """Whether oneDNN on this CPU computes ``dtype`` (bf16 needs AVX512-BW/VL/DQ or AVX-NE-CONVERT, which
    AVX2-only CPUs lack; there aten picks another conv kernel while the fused op would raise)."""
    if dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if dtype == torch.float16:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    return dtype == torch.float32


class _CachedCast(nn.Module):
    """A wrapped conv/linear layer ``inner`` plus a cache of its weight/bias cast to an autocast dtype.

    Autocast re-casts every float32 parameter on each run (its own cache lives only as long as the
    outermost ``torch.autocast`` block); ``_cast_params`` makes the cast once, with the same ``.to``
    rounding, and refreshes it when a parameter is replaced or changed in place (storage or version).
    ``_apply`` (``.to``, ``.float()``, memory format...) drops the cache.
    """

    inner: nn.Conv2d | nn.Linear

    def __init__(self) -> None:
        super().__init__()
        self._cast: tuple[tuple[object, ...], torch.Tensor, torch.Tensor | None] | None = None

    def _cast_params(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``inner``'s weight and bias in ``dtype`` (the parameters themselves when already so)."""
        w, b = self.inner.weight, self.inner.bias
        if dtype == w.dtype:
            return w, b
        key = (dtype, w.data_ptr(), w._version, None if b is None else (b.data_ptr(), b._version))
        if self._cast is None or self._cast[0] != key:
            with torch.no_grad():
                self._cast = (key, w.detach().to(dtype), None if b is None else b.detach().to(dtype))
        return self._cast[1], self._cast[2]

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        self._cast = None
        return super()._apply(fn, recurse)


class _AutocastCached(_CachedCast):
    """Shared part of ``CastConv2d`` / ``CastLinear``: under autocast, feed the op the cached cast
    parameters and the input cast as autocast would (bit-identical result, minus the per-run weight
    casts). ``_operands`` returns None, and ``inner`` runs as is (autocast then casts as usual), outside
    autocast, for float64 data (autocast leaves it alone), with gradients, or under ``torch.compile``.
    """

    def _operands(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
        w = self.inner.weight
        device = x.device.type
        if torch.compiler.is_compiling() or not torch.is_autocast_enabled(device):
            return None
        if not (x.is_floating_point() and w.is_floating_point()) or torch.float64 in (x.dtype, w.dtype):
            return None
        if torch.is_grad_enabled() and (w.requires_grad or x.requires_grad):
            return None
        dtype = torch.get_autocast_dtype(device)
        w, b = self._cast_params(dtype)
        return x.to(dtype), w, b


class CastConv2d(_AutocastCached):
    """``conv(x)`` using a cached autocast-dtype copy of the weights (see ``_AutocastCached``)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.inner = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops = self._operands(x)
        if ops is None:
            return self.inner(x)
        conv: nn.Conv2d = self.inner  # type: ignore[assignment]
        return conv._conv_forward(*ops)


class CastLinear(_AutocastCached):
    """``linear(x)`` using a cached autocast-dtype copy of the weights (see ``_AutocastCached``)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.inner = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops = self._operands(x)
        return self.inner(x) if ops is None else F.linear(*ops)


class _FusedGelu(_CachedCast):
    """Shared part of ``ConvGelu`` / ``LinearGelu``: the wrapped layer ``inner`` and the dtype rule.

    Custom oneDNN ops are not covered by autocast, so ``_operands`` applies it by hand: under CPU
    autocast the input, weight and bias run in the autocast dtype (the cast weight/bias are cached,
    see ``_CachedCast``), otherwise in the weight's dtype. ``_operands`` returns None,
    and the separate ops (``inner`` then exact GELU) run, when oneDNN is unusable or lacks that dtype,
    gradients are needed (no autograd formula) or under ``torch.compile``.
    """

    def _operands(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
        w = self.inner.weight
        if torch.compiler.is_compiling():  # inductor cannot lower these ops, and fuses conv+GELU itself
            return None
        if not onednn_usable(x) or (torch.is_grad_enabled() and (w.requires_grad or x.requires_grad)):
            return None
        autocast = torch.is_autocast_enabled("cpu") and x.is_floating_point()
        dtype = torch.get_autocast_dtype("cpu") if autocast else w.dtype
        if not onednn_runs(dtype):
            return None
        w, b = self._cast_params(dtype)
        return x.to(dtype), w, b


class ConvGelu(_FusedGelu):
    """``gelu(conv(x))`` (exact GELU) as one ``mkldnn._convolution_pointwise`` op; NCHW or NHWC data."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        assert isinstance(conv.padding, tuple), "string padding is not supported"
        self.inner = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops = self._operands(x)
        if ops is None:
            return F.gelu(self.inner(x))
        x, w, b = ops
        c = self.inner
        return torch.ops.mkldnn._convolution_pointwise(
            x, w, b, c.padding, c.stride, c.dilation, c.groups, "gelu", [None], "none"
        )


class LinearGelu(_FusedGelu):
    """``gelu(linear(x))`` (exact GELU) as one ``mkldnn._linear_pointwise`` op; features on the last axis."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.inner = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops = self._operands(x)
        if ops is None:
            return F.gelu(self.inner(x))
        x, w, b = ops
        return torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu", [], "none")


def then_gelu(layer: nn.Module, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``act(layer(x))``, where a fused ``ConvGelu`` / ``LinearGelu`` layer already includes the GELU."""
    return layer(x) if isinstance(layer, _FusedGelu) else act(layer(x))


class PatchEmbed(nn.Module):
    """Stem: (B, 3, S, S) -> (B, dim, S/4, S/4)."""

    def __init__(self, in_ch: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(Conv2d_BN(in_ch, dim // 2, 3, 2, 1), nn.GELU(), Conv2d_BN(dim // 2, dim, 3, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq[2](then_gelu(self.seq[0], self.seq[1], x))


class MBConv(nn.Module):
    """Inverted residual block (1x1 expand, 3x3 depthwise, 1x1 project, residual, GELU); NCHW."""

    def __init__(self, dim: int, expand: float) -> None:
        super().__init__()
        hidden = int(dim * expand)
        self.conv1 = Conv2d_BN(dim, hidden)
        self.conv2 = Conv2d_BN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.conv3 = Conv2d_BN(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = then_gelu(self.conv1, self.act, x)
        y = then_gelu(self.conv2, self.act, y)
        y = self.conv3(y)
        return self.act(y + x)


class PatchMerging(nn.Module):
    """Downsample between stages: 1x1 conv, GELU, 3x3 depthwise (stride 2, or 1), GELU, 1x1 conv.

    Takes NCHW (after the MBConv stage) or channels-last (B, H, W, C); returns channels-last.
    """

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = Conv2d_BN(dim, out_dim)
        self.conv2 = Conv2d_BN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2d_BN(out_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, channels_last: bool) -> torch.Tensor:
        if channels_last:
            x = x.permute(0, 3, 1, 2)
        x = then_gelu(self.conv1, self.act, x)
        x = then_gelu(self.conv2, self.act, x)
        x = self.conv3(x)
        return x.permute(0, 2, 3, 1)


class ConvStage(nn.Module):
    """Stage 0: MBConv blocks on NCHW, then ``downsample`` to channels-last."""

    def __init__(self, dim: int, depth: int, out_dim: int, expand: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([MBConv(dim, expand) for _ in range(depth)])
        self.downsample = PatchMerging(dim, out_dim, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x, channels_last=False)


def window_offset_index(window: int) -> torch.Tensor:
    """(w*w, w*w) index into the learned bias table: offset (|dy|, |dx|) -> |dy| * w + |dx|.

    This is the order in which TinyViT enumerates offsets (first seen while scanning from (0, 0)).
    """
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    return (ys[:, None] - ys[None, :]).abs() * window + (xs[:, None] - xs[None, :]).abs()


class WindowAttention(nn.Module):
    """Multi-head self-attention inside one window, with LayerNorm first and a learned relative bias.

    ``qkv`` packs, per head, [q | k | v] (head_dim each). Input/output (B*, N, C) with N = window**2.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("bias_index", window_offset_index(window), persistent=False)
        self._bias_cache: torch.Tensor | None = None

    def bias(self) -> torch.Tensor:
        """(heads, N, N) additive attention bias (cached in eval mode)."""
        if self.training or self._bias_cache is None:
            b = self.attention_biases[:, self.bias_index]  # type: ignore[index]
            if self.training:
                return b
            self._bias_cache = b.detach()
        return self._bias_cache

    def train(self, mode: bool = True) -> WindowAttention:
        self._bias_cache = None
        return super().train(mode)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        self._bias_cache = None
        return super()._apply(fn, recurse)

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """Windows of projected tokens (B*, N, 3C) -> attention output (B*, N, C), before ``proj``."""
        b, n, c3 = qkv.shape
        qkv = qkv.view(b, n, self.num_heads, 3, self.head_dim).permute(3, 0, 2, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B*, heads, N, head_dim)
        # F.scaled_dot_product_attention was measured slower here on CPU (fp32 and bf16), so plain ops;
        # in place where the autograd graph allows it (saves two window-sized allocations per block).
        attn = q @ k.transpose(-2, -1)
        if torch.is_grad_enabled() and attn.requires_grad:
            attn = attn * self.scale + self.bias()
        else:
            attn.mul_(self.scale).add_(self.bias())
        out = attn.softmax(dim=-1) @ v
        return out.transpose(1, 2).reshape(b, n, c3 // 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens of whole windows (B*, N, C) -> (B*, N, C)."""
        return self.proj(self.attend(self.qkv(self.norm(x))))


class Mlp(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear (on the last axis)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1: nn.Linear | LinearGelu = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(then_gelu(self.fc1, self.act, self.norm(x)))


_Index = tuple[slice | int, ...]


def _window_parts(h: int, w: int, ws: int) -> list[tuple[_Index, _Index, tuple[int, ...]]]:
    """The (map index, window-grid index, shape) blocks that tile an (H, W) map cut into ws x ws windows.

    Map index: on (B, H, W, D). Grid index: on the (B, nh, ws, nw, ws, D) image-order view of the windows.
    Shape: the block seen as (B, rows, cols, D) split like the grid index (an always-valid ``view``).
    """
    kh, rh = divmod(h, ws)
    kw, rw = divmod(w, ws)
    fh, fw = kh * ws, kw * ws
    every = slice(None)
    parts: list[tuple[_Index, _Index, tuple[int, ...]]] = [
        ((every, slice(0, fh), slice(0, fw)), (every, slice(0, kh), every, slice(0, kw)), (kh, ws, kw, ws))
    ]
    if rh:
        parts.append(((every, slice(fh, h), slice(0, fw)), (every, kh, slice(0, rh), slice(0, kw)), (rh, kw, ws)))
    if rw:
        parts.append(
            ((every, slice(0, fh), slice(fw, w)), (every, slice(0, kh), every, kw, slice(0, rw)), (kh, ws, rw))
        )
    if rh and rw:
        parts.append(((every, slice(fh, h), slice(fw, w)), (every, kh, slice(0, rh), kw, slice(0, rw)), (rh, rw)))
    return parts


def _to_windows(t: torch.Tensor, ws: int, pad_row: Callable[[], torch.Tensor]) -> torch.Tensor:
    """(B, H, W, D) map -> (B * nh * nw, ws * ws, D) windows of it padded to a multiple of ``ws`` with
    the row ``pad_row()`` (called only if padding is needed), in one pass over ``t``.

    Same values as padding then ``view/transpose/reshape`` (pure data movement), without building the
    padded map first: the windows are written through their (B, nh, ws, nw, ws, D) image-order view.
    """
    b, h, w, d = t.shape
    nh, nw = -(-h // ws), -(-w // ws)
    win = t.new_empty(b * nh * nw, ws * ws, d)
    grid = win.view(b, nh, nw, ws, ws, d).transpose(2, 3)
    if h % ws or w % ws:  # edge windows start as padding; their real tokens are written below
        row = pad_row().to(t.dtype).view(d)
        if h % ws:
            grid[:, nh - 1] = row
        if w % ws:
            grid[:, :, :, nw - 1] = row
    for src, dst, shape in _window_parts(h, w, ws):
        grid[dst] = t[src].view(b, *shape, d)
    return win


def _from_windows(win: torch.Tensor, h: int, w: int, ws: int) -> torch.Tensor:
    """Inverse of ``_to_windows``: (B * nh * nw, ws * ws, D) windows -> the contiguous (B, H, W, D) map
    (padding dropped), in one pass."""
    nh, nw, d = -(-h // ws), -(-w // ws), win.shape[2]
    b = win.shape[0] // (nh * nw)
    grid = win.view(b, nh, nw, ws, ws, d).transpose(2, 3)
    out = win.new_empty(b, h, w, d)
    for dst, src, shape in _window_parts(h, w, ws):
        out[dst].view(b, *shape, d).copy_(grid[src])
    return out


class TinyViTBlock(nn.Module):
    """Window attention (+residual) -> 3x3 depthwise ``local_conv`` -> MLP (+residual); (B, H, W, C)."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window = window
        self.attn = WindowAttention(dim, num_heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2d_BN(dim, dim, 3, 1, 1, groups=dim)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention in ws x ws windows of the (B, H, W, C) map zero-padded to a multiple of ws.

        Same function as padding the tokens first (upstream), cheaper: LayerNorm of a zero token is
        exactly the norm's bias, so every padded token projects to one constant qkv row; the per-token
        ``norm``/``qkv`` therefore run on the H x W real tokens only and the padding is added after
        them, and ``proj`` runs after cropping. Padded tokens still act as keys/values in edge windows.
        Padding + window partition, and window merge + crop, are one copy each (``_to_windows`` /
        ``_from_windows``); ``proj`` thus gets a contiguous map, so its bias is added inside the GEMM
        (``addmm``, one rounding) rather than after it (a strided input takes ``matmul`` then ``add_``).
        """
        _, h, w, c = x.shape
        ws = self.window
        attn = self.attn
        qkv = attn.qkv(attn.norm(x))
        win = _to_windows(qkv, ws, lambda: attn.qkv(attn.norm(x.new_zeros(1, c))))
        out = _from_windows(attn.attend(win), h, w, ws)
        return attn.proj(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._windowed_attention(x)
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class AttentionStage(nn.Module):
    """Stages 1-3: TinyViT blocks, then an optional ``downsample``; channels-last in and out."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, window: int, mlp_ratio: float, out_dim: int | None, stride: int
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([TinyViTBlock(dim, num_heads, window, mlp_ratio) for _ in range(depth)])
        self.downsample = PatchMerging(dim, out_dim, stride) if out_dim is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x, channels_last=True)
        return x


class TinyViT(nn.Module):
    """MobileSAM's image encoder: normalised, padded (B, 3, S, S) -> (B, 256, S/16, S/16) embedding."""

    def __init__(
        self,
        embed_dims: tuple[int, ...] = (64, 128, 160, 320),
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (2, 4, 5, 10),
        window_sizes: tuple[int, ...] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand: float = 4.0,
        out_chans: int = 256,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(3, embed_dims[0])
        stages: list[nn.Module] = [ConvStage(embed_dims[0], depths[0], embed_dims[1], mbconv_expand)]
        last = len(embed_dims) - 1
        for i in range(1, len(embed_dims)):
            out_dim = embed_dims[i + 1] if i < last else None
            # The merge into the last stage keeps the resolution (1/16 overall), as MobileSAM does.
            stride = 1 if i + 1 == last else 2
            stages.append(
                AttentionStage(embed_dims[i], depths[i], num_heads[i], window_sizes[i], mlp_ratio, out_dim, stride)
            )
        self.layers = nn.ModuleList(stages)
        self.norm_head = nn.LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes)
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )
        self.channels_last = False
        """Feed the convolutions NHWC data (set by ``MobileSam.optimize_for_inference``, with NHWC weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.patch_embed(x)
        for stage in self.layers:
            x = stage(x)
        return self.neck(x.permute(0, 3, 1, 2)).contiguous()

    def fuse_conv_bn(self) -> int:
        """Fold every ``Conv2d_BN`` into one biased conv (inference speed-up); returns how many.

        After this the module no longer loads the upstream checkpoint (names change); do it after loading.
        """
        count = 0
        for name, module in list(self.named_modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, Conv2d_BN):
                    setattr(module, child_name, child.fused())
                    count += 1
            del name
        return count

    def fuse_gelu(self, *, linear: bool = True) -> int:
        """Wrap each folded conv that GELU follows (and, with ``linear``, each MLP ``fc1``) in
        ``ConvGelu`` / ``LinearGelu``; returns how many. Needs ``fuse_conv_bn`` first (inference only)."""
        convs: list[tuple[nn.Module, str]] = [(self.patch_embed.seq, "0")]
        convs += [(m, n) for m in self.modules() if isinstance(m, (MBConv, PatchMerging)) for n in ("conv1", "conv2")]
        if any(isinstance(getattr(parent, name), Conv2d_BN) for parent, name in convs):
            raise RuntimeError("fuse_gelu needs fuse_conv_bn() first")
        count = 0
        for parent, name in convs:  # (``setattr(seq, "0", m)`` replaces a Sequential's first entry)
            child = _uncast(getattr(parent, name))
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, ConvGelu(child))
                count += 1
        for module in list(self.modules()) if linear else []:
            fc1 = _uncast(module.fc1) if isinstance(module, Mlp) else None
            if isinstance(module, Mlp) and isinstance(fc1, nn.Linear):
                module.fc1 = LinearGelu(fc1)
                count += 1
        return count

    def cache_casts(self) -> int:
        """Wrap every remaining plain ``nn.Conv2d`` / ``nn.Linear`` in ``CastConv2d`` / ``CastLinear``
        (cached autocast-dtype weights: same result, no per-run weight casts); returns how many.
        Needs ``fuse_conv_bn`` first (inference only); ``fuse_gelu`` may come before or after."""
        if any(isinstance(m, Conv2d_BN) for m in self.modules()):
            raise RuntimeError("cache_casts needs fuse_conv_bn() first")
        count = 0
        for module in list(self.modules()):
            if isinstance(module, _CachedCast):
                continue  # its ``inner`` already uses the cache
            for name, child in list(module.named_children()):
                if type(child) is nn.Conv2d:
                    setattr(module, name, CastConv2d(child))
                    count += 1
                elif type(child) is nn.Linear:
                    setattr(module, name, CastLinear(child))
                    count += 1
        return count


def _uncast(layer: nn.Module) -> nn.Module:
    """The plain layer inside a ``CastConv2d`` / ``CastLinear``; any other module as is."""
    return layer.inner if isinstance(layer, _AutocastCached) else layer
