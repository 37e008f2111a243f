"""MobileSAM's mask decoder re-arranged for many single-point prompts on one image embedding.

Kernel side only; used by ``gt_widget.segment.proposals``. It computes the same function as
``MaskDecoder.predict_all`` (same weights, same operations up to float rounding; the test compares them)
but in an order that is cheap when hundreds of prompts share one embedding and no mask input:

- the first two-way block sees the *same* image tokens for every prompt (embedding + the no-mask dense
  embedding), so its image-side projections (keys and values of token->image attention, queries of
  image->token attention) are computed once per image, not once per prompt;
- attention between a few prompt tokens (T = 7) and the 4096 image tokens is re-associated so that no
  per-prompt (N, 128) projection of the image tokens is ever formed: token->image logits are
  ``(q W_k) (K + P)^T`` and its output ``(A K) W_v^T``; image->token logits are ``(K + P) (W_q^T k^T)`` and its
  output ``A (v W_o^T)``, with the output bias folded into the values (attention rows sum to 1 per head);
- the two transposed convolutions of the upscaling (kernel 2, stride 2: a per-pixel linear map) run as
  channels-last matrix products, and only for the prompts the caller keeps (``upscale``), and only the
  three multimask outputs are produced (mask token 0, the single-mask output, cannot win a proposal).

``matmul_dtype=torch.bfloat16`` runs the upscaling's two big products in bf16 (the project's precision
setting decides: ``MobileSamSegmenter.precision``); everything else stays fp32.
Shapes: N image tokens (e*e), C = 256 channels, H = 8 heads, T tokens per prompt.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from gt_widget.segment.mobilesam.mask_decoder import Attention, MaskDecoder, TwoWayAttentionBlock
from gt_widget.segment.mobilesam.tiny_vit import LayerNorm2d


def _norm(norm: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` in ``x``'s dtype (bf16 image tokens keep bf16)."""
    w, b = norm.weight, norm.bias
    return F.layer_norm(x, norm.normalized_shape, w.to(x.dtype), b.to(x.dtype), norm.eps)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., L, D) -> (..., heads, L, D / heads)."""
    *lead, n, d = x.shape
    return x.reshape(*lead, n, heads, d // heads).transpose(-3, -2)


class GridDecoder:
    """``MaskDecoder`` for many prompts on one embedding (module docstring). Build once per image.

    ``embedding`` (1, C, e, e) image embedding, ``image_pe`` (1, C, e, e) its positional encoding,
    ``no_mask`` (C,) the prompt encoder's no-mask embedding.
    """

    def __init__(
        self,
        decoder: MaskDecoder,
        embedding: torch.Tensor,
        image_pe: torch.Tensor,
        no_mask: torch.Tensor,
        matmul_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.d = decoder
        self.matmul_dtype = matmul_dtype
        h, w = embedding.shape[-2:]
        self.e = (h, w)
        x0 = (embedding[0] + no_mask.reshape(-1, 1, 1)).flatten(1).T.contiguous()  # (N, C)
        pe = image_pe[0].flatten(1).T.contiguous()  # (N, C)
        first = cast(TwoWayAttentionBlock, decoder.transformer.layers[0])
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        xp = x0 + pe
        dt = matmul_dtype
        self.x0, self.pe = x0.to(dt), pe.to(dt)
        self.k0 = _heads(t2i.k_proj(xp), t2i.num_heads).transpose(-1, -2).contiguous()  # (H, d, N)
        self.v0 = _heads(t2i.v_proj(x0), t2i.num_heads).contiguous()  # (H, N, d)
        self.q0 = i2t.q_proj(xp)  # (N, Ci), heads split when used
        up = decoder.output_upscaling
        conv1, conv2 = cast(nn.ConvTranspose2d, up[0]), cast(nn.ConvTranspose2d, up[3])
        norm = cast(LayerNorm2d, up[1])
        # ConvTranspose2d weight (in, out, 2, 2) -> (in, 2*2*out): output order (dy, dx, out)
        self.w1 = conv1.weight.permute(0, 2, 3, 1).reshape(conv1.in_channels, -1).to(matmul_dtype)
        self.b1 = conv1.bias.repeat(4).to(dt)  # type: ignore[union-attr]
        self.norm_w, self.norm_b, self.norm_eps = norm.weight.to(dt), norm.bias.to(dt), norm.eps
        self.w2 = conv2.weight.permute(0, 2, 3, 1).reshape(conv2.in_channels, -1).to(matmul_dtype)
        self.b2 = conv2.bias.repeat(4).to(dt)  # type: ignore[union-attr]
        self.c1, self.c2 = conv1.out_channels, conv2.out_channels

    # ------------------------------------------------------------------ attention pieces
    @staticmethod
    def _token_to_image(
        attn: Attention, q_in: torch.Tensor, kp: torch.Tensor | None, k: torch.Tensor, pe: torch.Tensor | None
    ) -> torch.Tensor:
        """Tokens (B, T, C) attend to per-prompt image tokens ``k`` (B, N, C) (+ ``pe`` (N, C) for keys,
        or ``kp`` = k + pe precomputed); values are ``k``. Returns (B, T, C) after ``out_proj``."""
        b, t, c = q_in.shape
        hn = attn.num_heads
        q = _heads(attn.q_proj(q_in), hn)  # (B, H, T, d)
        dh = q.shape[-1]
        wk = attn.k_proj.weight.reshape(hn, dh, c)  # (H, d, C)
        qk = (q @ wk).reshape(b, hn * t, c)  # (B, H*T, C)
        bias = (q @ attn.k_proj.bias.reshape(hn, dh, 1)).reshape(b, hn * t, 1)  # type: ignore[union-attr]
        dt = k.dtype
        qk = qk.to(dt)
        if kp is not None:
            logits = torch.bmm(qk, kp.transpose(1, 2)).float()
        else:
            assert pe is not None
            logits = (qk.reshape(-1, c) @ pe.T).reshape(b, hn * t, -1).float()
            logits += torch.bmm(qk, k.transpose(1, 2))
        logits += bias
        a = (logits * (1.0 / math.sqrt(dh))).softmax(dim=-1)  # (B, H*T, N)
        ak = (a.to(dt) @ k).reshape(b, hn, t, c).float()  # (B, H, T, C)
        wv = attn.v_proj.weight.reshape(hn, dh, c)
        out = ak @ wv.transpose(1, 2) + attn.v_proj.bias.reshape(hn, 1, dh)  # type: ignore[union-attr]
        return attn.out_proj(out.transpose(1, 2).reshape(b, t, hn * dh))

    @staticmethod
    def _image_to_token_update(
        attn: Attention, keys: torch.Tensor, logits: torch.Tensor, tok: torch.Tensor
    ) -> torch.Tensor:
        """``keys`` (N, C) or (B, N, C) + out_proj(softmax(logits) @ v): ``logits`` (B, H, T, N) scaled
        (the softmax runs over T: a short axis, so it is kept off the innermost one), ``tok`` (B, T, C)
        the value tokens."""
        b, hn, t, n = logits.shape
        a = logits.softmax(dim=2).reshape(b, hn * t, n).transpose(1, 2)  # (B, N, H*T), a view when contiguous
        v = _heads(attn.v_proj(tok), hn)  # (B, H, T, d)
        dh = v.shape[-1]
        wo = attn.out_proj.weight.reshape(-1, hn, dh).permute(1, 2, 0)  # (H, d, C)
        vw = (v @ wo).reshape(b, hn * t, -1)  # (B, H*T, C)
        vw = vw + (attn.out_proj.bias / hn)  # type: ignore[operator]  # rows of a sum to 1 per head
        base = keys if keys.dim() == 3 else keys.expand(b, -1, -1)
        return torch.baddbmm(base, a.to(keys.dtype), vw.to(keys.dtype))

    # ------------------------------------------------------------------ decoding
    def transformer(self, sparse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse prompt embeddings (B, Tp, C) -> (final tokens (B, T, C), final image tokens (B, N, C))."""
        dec = self.d
        tf = dec.transformer
        b = sparse.shape[0]
        out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        qpe = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)  # (B, T, C)
        t = qpe.shape[1]
        # ---- block 0: image side shared by every prompt
        blk = cast(TwoWayAttentionBlock, tf.layers[0])
        queries = blk.norm1(blk.self_attn(qpe, qpe, qpe))
        t2i = blk.cross_attn_token_to_image
        hn = t2i.num_heads
        q = _heads(t2i.q_proj(queries + qpe), hn)  # (B, H, T, d)
        a = ((q @ self.k0) * (1.0 / math.sqrt(q.shape[-1]))).softmax(dim=-1)  # (B, H, T, N)
        out = (a @ self.v0).transpose(1, 2).reshape(b, t, -1)
        queries = blk.norm2(queries + t2i.out_proj(out))
        queries = blk.norm3(queries + blk.mlp(queries))
        i2t = blk.cross_attn_image_to_token
        k = _heads(i2t.k_proj(queries + qpe), i2t.num_heads)  # (B, H, T, d)
        dh = k.shape[-1]
        q0 = self.q0.reshape(-1, i2t.num_heads, dh)  # (N, H, d)
        kh = (k * (1.0 / math.sqrt(dh))).transpose(0, 1).reshape(i2t.num_heads, b * t, dh)  # (H, B*T, d)
        logits = torch.bmm(kh, q0.permute(1, 2, 0)).view(-1, b, t, q0.shape[0]).transpose(0, 1)  # (B, H, T, N)
        keys = _norm(blk.norm4, self._image_to_token_update(i2t, self.x0, logits, queries))
        # ---- block 1 and the final attention: per-prompt image tokens
        for layer in tf.layers[1:]:
            blk = cast(TwoWayAttentionBlock, layer)
            qq = queries + qpe
            queries = blk.norm1(queries + blk.self_attn(qq, qq, queries))
            kp = keys + self.pe
            queries = blk.norm2(
                queries + self._token_to_image(blk.cross_attn_token_to_image, queries + qpe, kp, keys, None)
            )
            queries = blk.norm3(queries + blk.mlp(queries))
            i2t = blk.cross_attn_image_to_token
            hn = i2t.num_heads
            k = _heads(i2t.k_proj(queries + qpe), hn)  # (B, H, T, d)
            dh = k.shape[-1]
            wq = i2t.q_proj.weight.reshape(hn, dh, -1)  # (H, d, C)
            m = (k @ wq).reshape(b, hn * t, -1)  # (B, H*T, C)
            bias = (k @ i2t.q_proj.bias.reshape(hn, dh, 1)).reshape(b, hn * t, 1)  # type: ignore[union-attr]
            logits = torch.bmm(m.to(kp.dtype), kp.transpose(1, 2)).float().add_(bias).mul_(1.0 / math.sqrt(dh))
            del kp
            keys = _norm(blk.norm4, self._image_to_token_update(i2t, keys, logits.view(b, hn, t, -1), queries))
        fin = self._token_to_image(tf.final_attn_token_to_image, queries + qpe, None, keys, self.pe)
        queries = tf.norm_final_attn(queries + fin)
        return queries, keys

    def iou(self, queries: torch.Tensor) -> torch.Tensor:
        """Predicted IoU (B, 3) of the three multimask outputs."""
        out: torch.Tensor = self.d.iou_prediction_head(queries[:, 0])[:, 1:]
        return out

    def upscale(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Low-resolution logits (B, 3, 4e, 4e) of the three multimask outputs."""
        dec = self.d
        b, _, c = keys.shape
        h, w = self.e
        mt = dec.num_mask_tokens
        hyper = torch.stack([dec.output_hypernetworks_mlps[i](queries[:, 1 + i]) for i in range(1, mt)], dim=2)
        y = torch.addmm(self.b1, keys.reshape(-1, c), self.w1)  # (B*N, 4*c1)
        y = F.gelu(F.layer_norm(y.view(-1, self.c1), (self.c1,), self.norm_w, self.norm_b, self.norm_eps))
        y = F.gelu(torch.addmm(self.b2, y, self.w2))  # (B*N*4, 4*c2)
        y = (y.view(b, -1, self.c2) @ hyper.to(y.dtype)).float()  # (B, N*16, 3): pixels (y, x, dy, dx, ey, ex)
        y = y.view(b, h, w, 2, 2, 2, 2, mt - 1).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return y.reshape(b, mt - 1, 4 * h, 4 * w)
