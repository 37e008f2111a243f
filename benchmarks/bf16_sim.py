"""bf16 mask decoder simulated in fp32, for quality runs on CPUs without native bf16 (benchmark only).

Without AVX512-BF16 / AMX, PyTorch runs bf16 matrix products through a slow reference kernel (~7x slower
than fp32 here), so a quality run of ``decoder_precision=bf16`` on such a CPU would take hours. This
module reproduces the bf16 decoder's arithmetic at fp32 speed: the weights are rounded to bf16 (kept as
fp32 values) and the output of every tensor operation inside the decoder is rounded to bf16, as a bf16
kernel does (bf16 inputs, products exact in fp32, fp32 accumulation, bf16 result). What differs from a
real bf16 run is the accumulation order inside a kernel (and ops that keep an fp32 intermediate between
two PyTorch calls); ``check`` measures how close the two are. The IoU head runs in fp32 on the rounded
tokens and the logits come back as fp32, as in ``MaskDecoder.forward``.

    install()   # MaskDecoder.forward(dtype=torch.bfloat16) is simulated from now on (this process)
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from gt_widget.segment.mobilesam.mask_decoder import MaskDecoder

_LAYOUT = {
    "view",
    "reshape",
    "transpose",
    "permute",
    "flatten",
    "contiguous",
    "expand",
    "unsqueeze",
    "squeeze",
    "__getitem__",
    "size",
    "dim",
    "stride",
    "__get__",
    "cat",
    "stack",
    "repeat",
    "clone",
    "to",
    "float",
}


def _round(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.dtype == torch.float32:
        return x.to(torch.bfloat16).to(torch.float32)
    if isinstance(x, tuple):
        return tuple(_round(v) for v in x)
    return x


class RoundToBf16(TorchFunctionMode):
    """Rounds the fp32 output of every non-layout tensor operation to the nearest bf16 value."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        return out if getattr(func, "__name__", "") in _LAYOUT else _round(out)


def rounded_copy(decoder: MaskDecoder) -> MaskDecoder:
    """An fp32 decoder whose weights are the bf16 copy's (``MaskDecoder.lowp``), made once."""
    copies: dict[str, MaskDecoder] = decoder.__dict__.setdefault("_sim_copies", {})
    sim = copies.get("bf16")
    if sim is None:
        sim = copies["bf16"] = copy.deepcopy(MaskDecoder.lowp(decoder, torch.bfloat16)).float()
        sim.__dict__.pop("_lowp_copies", None)
    return sim


_ORIGINAL = MaskDecoder.forward


def simulated_forward(
    self: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse_prompt_embeddings: torch.Tensor,
    dense_prompt_embeddings: torch.Tensor,
    multimask_output: bool,
    dtype: torch.dtype = torch.float32,
    cache: dict[Any, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``MaskDecoder.forward`` with ``dtype=torch.bfloat16`` simulated (module doc); fp32 unchanged."""
    if dtype != torch.bfloat16:
        return _ORIGINAL(
            self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, multimask_output
        )
    sim = rounded_copy(self)
    dense = dense_prompt_embeddings
    shared = image_embeddings.shape[0] == 1 and (dense.shape[0] == 1 or dense.stride(0) == 0)
    with RoundToBf16():
        if shared:
            src = _round(image_embeddings + dense[:1])
        else:
            bs = sparse_prompt_embeddings.shape[0]
            emb = image_embeddings.expand(bs, -1, -1, -1) if image_embeddings.shape[0] == 1 else image_embeddings
            src = _round(emb + dense)
        side = sim.transformer.image_side(src, _round(image_pe[:1]))
        h, w = image_embeddings.shape[-2:]
        hs, masks = sim._decode(side, _round(sparse_prompt_embeddings), multimask_output, h, w)
    sel = slice(1, None) if multimask_output else slice(0, 1)
    return masks, self.iou_prediction_head(hs[:, 0, :])[:, sel]


def install() -> None:
    """Simulate the bf16 decoder in this process (``MaskDecoder.forward`` replaced)."""
    MaskDecoder.forward = simulated_forward  # type: ignore[method-assign]


def check(decoder: MaskDecoder, calls: list[tuple[Any, ...]]) -> dict[str, float]:
    """Real bf16 vs simulated vs fp32 on recorded decoder calls: max |logit| differences and the share of
    low-res pixels whose sign differs (bf16 real vs simulated; bf16 real vs fp32)."""
    out = {"sim_max_abs": 0.0, "sim_sign_flip": 0.0, "fp32_max_abs": 0.0, "fp32_sign_flip": 0.0, "iou_sim": 0.0}
    with torch.inference_mode():
        for c in calls:
            real, iou_real = _ORIGINAL(decoder, *c[:5], dtype=torch.bfloat16)
            sim, iou_sim = simulated_forward(decoder, *c[:5], dtype=torch.bfloat16)
            ref, _ = _ORIGINAL(decoder, *c[:5])
            out["sim_max_abs"] = max(out["sim_max_abs"], float((real - sim).abs().max()))
            out["sim_sign_flip"] = max(out["sim_sign_flip"], float(((real > 0) != (sim > 0)).float().mean()))
            out["fp32_max_abs"] = max(out["fp32_max_abs"], float((real - ref).abs().max()))
            out["fp32_sign_flip"] = max(out["fp32_sign_flip"], float(((real > 0) != (ref > 0)).float().mean()))
            out["iou_sim"] = max(out["iou_sim"], float((iou_real - iou_sim).abs().max()))
    return out
