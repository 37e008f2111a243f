"""SAM's mask decoder: a two-way transformer between prompt tokens and the image embedding.

Tokens = [IoU token, 4 mask tokens, prompt tokens]. Two ``TwoWayAttentionBlock`` layers alternate
token self-attention, token->image cross-attention, an MLP (ReLU) on tokens and image->token
cross-attention; a final token->image attention follows. The image side is upscaled 4x by two
transposed convolutions (to 256x256 for a 64x64 embedding) and each mask token's hypernetwork MLP gives
the per-pixel weights of its mask. Mask token 0 is the single-mask output, tokens 1..3 the three
multimask candidates; the IoU head predicts each mask's quality.

``MaskDecoder.forward(..., dtype=torch.bfloat16)`` runs the transformer, the upscaling and the
hypernetworks on a bf16 copy of the decoder (the IoU head and the returned logits stay float32): on CPUs
with native bf16 (AMX / AVX512-BF16) its matrix products run several times faster; elsewhere oneDNN
emulates bf16 and it is much slower, so ``runtime.choose_decoder_precision``'s ``auto`` only picks it
where the CPU has it (the default is fp32 until its quality is shown in full). ``cache=`` (a dict kept per image embedding by the caller) keeps what
depends only on the image: the image tokens and the first block's image-side projections.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from gt_widget.segment.mobilesam.tiny_vit import LayerNorm2d


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims_in, dims_out, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return x


class MLPBlock(nn.Module):
    """Linear -> ReLU -> Linear (``lin1`` / ``lin2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.relu(self.lin1(x)))


class Attention(nn.Module):
    """Multi-head attention whose q/k/v projections may shrink the width by ``downsample_rate``."""

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.internal_dim = dim // downsample_rate
        self.q_proj = nn.Linear(dim, self.internal_dim)
        self.k_proj = nn.Linear(dim, self.internal_dim)
        self.v_proj = nn.Linear(dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.attend(self.q_proj(q), self.k_proj(k), self.v_proj(v))

    def attend(self, qp: torch.Tensor, kp: torch.Tensor, vp: torch.Tensor) -> torch.Tensor:
        """Attention on already projected queries / keys / values (B, N, internal_dim) -> (B, Nq, dim)."""
        root = math.sqrt(qp.shape[-1] // self.num_heads)
        few_keys = kp.shape[-2] < qp.shape[-2]
        if math.log2(root).is_integer():
            # 1/sqrt(d) a power of two: scaling the short side first is bit-identical and skips a pass
            # over the (heads, N, T) logits
            qp, kp, root = (qp, kp * (1.0 / root), 1.0) if few_keys else (qp * (1.0 / root), kp, 1.0)
        qh, kh, vh = self._heads(qp), self._heads(kp), self._heads(vp)
        if few_keys:
            # few keys (image -> token): softmax over the short axis kept off the innermost one
            attn_t = kh @ qh.transpose(-2, -1)  # (B, H, Nk, Nq)
            attn_t = attn_t / root if root != 1.0 else attn_t
            out = attn_t.softmax(dim=-2).transpose(-2, -1) @ vh
        else:
            attn = qh @ kh.transpose(-2, -1)
            attn = attn / root if root != 1.0 else attn
            out = attn.softmax(dim=-1) @ vh
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.internal_dim))


class TwoWayAttentionBlock(nn.Module):
    """Self-attn on tokens, tokens->image, MLP on tokens, image->tokens; post-norm residuals."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, downsample_rate: int, skip_first_layer_pe: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
        projected: ImageSide | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``projected``: this block's image-side projections of ``keys`` (``image_side``), when known."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        side = projected if projected is not None else self.image_side(keys, key_pe)
        q = queries + query_pe
        queries = self.norm2(queries + t2i.attend(t2i.q_proj(q), side.t2i_k, side.t2i_v))

        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys + i2t.attend(side.i2t_q, i2t.k_proj(q), i2t.v_proj(queries)))
        return queries, keys

    def image_side(self, keys: torch.Tensor, key_pe: torch.Tensor) -> ImageSide:
        """The projections of this block that depend on the image tokens only (not on the prompts)."""
        k = keys + key_pe
        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        return ImageSide(keys, key_pe, t2i.k_proj(k), t2i.v_proj(keys), i2t.q_proj(k))


@dataclass(frozen=True)
class ImageSide:
    """What the first two-way block needs from the image alone: image tokens (b, N, C) channels-last,
    their positional encoding (1, N, C), token->image keys and values and image->token queries, projected
    (b, N, C / downsample_rate). Computed once per image embedding when the dense prompt is shared."""

    keys: torch.Tensor
    key_pe: torch.Tensor
    t2i_k: torch.Tensor
    t2i_v: torch.Tensor
    i2t_q: torch.Tensor


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks plus a final token->image attention."""

    def __init__(
        self, depth: int = 2, dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048, downsample_rate: int = 2
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(dim, num_heads, mlp_dim, downsample_rate, skip_first_layer_pe=(i == 0))
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample_rate)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(
        self,
        image_embedding: torch.Tensor | None,
        image_pe: torch.Tensor | None,
        point_embedding: torch.Tensor,
        side: ImageSide | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) image, (B, C, h, w) positional encoding, (B, N, C) tokens -> (tokens, image tokens).

        ``side``: ``image_side(image_embedding, image_pe)`` computed earlier (the image and its encoding
        may then be None)."""
        if side is None:
            assert image_embedding is not None and image_pe is not None
            side = self.image_side(image_embedding, image_pe)
        keys, key_pe = side.keys, side.key_pe
        queries = point_embedding
        for i, layer in enumerate(self.layers):
            queries, keys = layer(queries, keys, point_embedding, key_pe, side if i == 0 else None)
        q = queries + point_embedding
        k = keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys

    def image_side(self, image_embedding: torch.Tensor, image_pe: torch.Tensor) -> ImageSide:
        """(b, C, h, w) image and (1|b, C, h, w) encoding -> the first block's image-side inputs."""
        # channels-last copies: every later add / projection on them runs on contiguous memory
        keys = image_embedding.flatten(2).transpose(1, 2).contiguous()
        key_pe = image_pe.flatten(2).transpose(1, 2).contiguous()
        return cast(TwoWayAttentionBlock, self.layers[0]).image_side(keys, key_pe)


class MaskDecoder(nn.Module):
    """Predicts 4 mask logits (B, 4, 4h, 4w) and their IoU scores (B, 4) from image + prompt embeddings."""

    def __init__(
        self, dim: int = 256, num_multimask_outputs: int = 3, iou_head_depth: int = 3, iou_head_hidden: int = 256
    ) -> None:
        super().__init__()
        self.num_mask_tokens = num_multimask_outputs + 1
        self.transformer = TwoWayTransformer(dim=dim)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, iou_head_hidden, self.num_mask_tokens, iou_head_depth)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        dtype: torch.dtype = torch.float32,
        cache: dict[Any, Any] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image embedding (1, C, h, w) shared by B prompt sets -> masks (B, 1|3, 4h, 4w), IoU (B, 1|3).

        Same function as ``predict_all`` followed by the selection, up to float rounding (the test
        compares them), computed more cheaply: when the dense prompt embedding is the same for every
        prompt set (no mask input: the prompt encoder returns it expanded), the image tokens enter the
        transformer once (batch 1) and broadcast, so the first block's image-side projections run once
        per call, not once per prompt; the upscaling's transposed convolutions run as channels-last
        matrix products; only the selected mask tokens' masks are formed.

        ``dtype``: the precision of the transformer, upscaling and hypernetworks (float32 or bfloat16; a
        bf16 copy of the weights is kept); the IoU head runs in float32 and both outputs are float32.
        ``cache``: a dict the caller keeps for this ``image_embeddings`` (and ``image_pe``) and drops with
        it; when the dense prompt is the no-mask embedding (constant over the grid; checked by value), the
        first block's image-side inputs (``ImageSide``) are kept there and later calls on the same image
        skip them (the same values, so the same masks).
        """
        sel = slice(1, None) if multimask_output else slice(0, 1)
        low = self if dtype == torch.float32 else self.lowp(dtype)
        side = self.first_side(
            image_embeddings, image_pe, dense_prompt_embeddings, dtype, cache, sparse_prompt_embeddings.shape[0]
        )
        h, w = image_embeddings.shape[-2:]
        hs, masks = low._decode(side, sparse_prompt_embeddings.to(dtype), multimask_output, h, w)
        return masks.float(), self.iou_prediction_head(hs[:, 0, :].float())[:, sel]

    def first_side(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        dense: torch.Tensor,
        dtype: torch.dtype = torch.float32,
        cache: dict[Any, Any] | None = None,
        prompts: int = 1,
    ) -> ImageSide:
        """The first two-way block's image-side inputs for ``prompts`` prompt sets (see ``forward``): from
        ``cache`` when it holds them for this dense prompt, else computed (and kept there when the dense
        prompt is constant over the grid, the no-mask embedding, checked by value). Calling it once after
        an embedding is made fills the cache ahead of the first click (``SamPredictor.prime_decoder``)."""
        shared = image_embeddings.shape[0] == 1 and (dense.shape[0] == 1 or dense.stride(0) == 0)
        low = self if dtype == torch.float32 else self.lowp(dtype)
        # cached only for a dense prompt constant over the grid (the no-mask embedding), checked by value
        constant = shared and dense.stride(-1) == 0 and dense.stride(-2) == 0
        key = ("first", dtype, tuple(image_embeddings.shape[-2:]))
        hit = cache.get(key) if cache is not None and constant else None
        if hit is not None and torch.equal(hit[0], dense[0, :, 0, 0]):
            return cast(ImageSide, hit[1])
        if shared:
            src = (image_embeddings + dense[:1]).to(dtype)  # (1, C, h, w): broadcast over the B prompt sets
        else:
            src = image_embeddings.expand(prompts, -1, -1, -1) if image_embeddings.shape[0] == 1 else image_embeddings
            src = (src + dense).to(dtype)
        side = low.transformer.image_side(src, image_pe[:1].to(dtype))
        if cache is not None and constant:
            cache[key] = (dense[0, :, 0, 0].clone(), side)
        return side

    def _decode(
        self, side: ImageSide, sparse: torch.Tensor, multimask_output: bool, h: int, w: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transformer, hypernetworks and upscaling in this module's dtype -> (tokens (B, T, C), masks)."""
        bs = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(bs, -1, -1), sparse], dim=1)
        hs, src_tokens = self.transformer(None, None, tokens, side)
        chosen = range(1, self.num_mask_tokens) if multimask_output else range(1)
        hyper = torch.stack([self.output_hypernetworks_mlps[i](hs[:, 1 + i, :]) for i in chosen], dim=2)  # (B, C/8, M)
        return hs, self._upscale_masks(src_tokens, hyper, h, w)

    def lowp(self, dtype: torch.dtype) -> MaskDecoder:
        """A copy of this decoder in ``dtype`` (made once, kept beside the module, not registered as a
        submodule; rebuilt if the module moved to another device). Weights are read when it is made."""
        copies: dict[torch.dtype, MaskDecoder] = self.__dict__.setdefault("_lowp_copies", {})
        dev = self.iou_token.weight.device
        low = copies.get(dtype)
        if low is None or low.iou_token.weight.device != dev:
            low = copy.deepcopy(self)
            low.__dict__.pop("_lowp_copies", None)
            low = low.to(dtype).eval().requires_grad_(False)
            copies[dtype] = low
        return low

    def _upscale_masks(self, tokens: torch.Tensor, hyper: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Image tokens (B, h*w, C), hypernetwork weights (B, C/8, M) -> mask logits (B, M, 4h, 4w).

        ``output_upscaling`` (two kernel-2 stride-2 transposed convolutions: a per-pixel linear map to a
        2x2 block each) as channels-last matrix products, then the per-mask dot products.
        """
        up = self.output_upscaling
        conv1, conv2 = cast(nn.ConvTranspose2d, up[0]), cast(nn.ConvTranspose2d, up[3])
        norm = cast(LayerNorm2d, up[1])
        c1, c2 = conv1.out_channels, conv2.out_channels
        b, _, c = tokens.shape
        m = hyper.shape[-1]
        # ConvTranspose2d weight (in, out, 2, 2) -> (in, 2*2*out): output order (dy, dx, out)
        w1 = conv1.weight.permute(0, 2, 3, 1).reshape(c, -1)
        w2 = conv2.weight.permute(0, 2, 3, 1).reshape(c1, -1)
        y = torch.addmm(conv1.bias.repeat(4), tokens.reshape(-1, c), w1)  # type: ignore[union-attr]
        y = F.gelu(F.layer_norm(y.view(-1, c1), (c1,), norm.weight, norm.bias, norm.eps))
        y = F.gelu(torch.addmm(conv2.bias.repeat(4), y, w2))  # type: ignore[union-attr]  # (B*h*w*4, 4*c2)
        y = y.view(b, -1, c2) @ hyper  # (B, h*w*16, M): pixels (y, x, dy, dx, ey, ex)
        y = y.view(b, h, w, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return y.reshape(b, m, 4 * h, 4 * w)

    def predict_all(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All 4 mask tokens: masks (B, 4, 4h, 4w) and IoU predictions (B, 4)."""
        bs = sparse_prompt_embeddings.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(bs, -1, -1), sparse_prompt_embeddings], dim=1)
        src = image_embeddings.expand(bs, -1, -1, -1) if image_embeddings.shape[0] == 1 else image_embeddings
        src = src + dense_prompt_embeddings
        pos = image_pe.expand(bs, -1, -1, -1)
        b, c, h, w = src.shape
        hs, src_tokens = self.transformer(src, pos, tokens)
        iou_out = hs[:, 0, :]
        mask_out = hs[:, 1 : 1 + self.num_mask_tokens, :]
        up = self.output_upscaling(src_tokens.transpose(1, 2).reshape(b, c, h, w))
        hyper = torch.stack([mlp(mask_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        b, c2, h2, w2 = up.shape
        masks = (hyper @ up.view(b, c2, h2 * w2)).view(b, -1, h2, w2)
        return masks, self.iou_prediction_head(iou_out)
