"""``MobileSam``: TinyViT image encoder + SAM prompt encoder + SAM mask decoder, and its loader.

The weights are the upstream ``mobile_sam.pt`` (a plain state_dict, 439 tensors, 10.14 M parameters);
they load with ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``. ``load_mobilesam``
finds and checksum-verifies them through ``gt_widget.segment.weights.resolve_weights``.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gt_widget.errors import WeightsError
from gt_widget.segment.mobilesam.mask_decoder import MaskDecoder
from gt_widget.segment.mobilesam.prompt_encoder import PromptEncoder
from gt_widget.segment.mobilesam.runtime import tune_allocator
from gt_widget.segment.mobilesam.tiny_vit import TinyViT
from gt_widget.segment.mobilesam.transforms import PIXEL_MEAN, PIXEL_STD


class MobileSam(nn.Module):
    """MobileSAM ("vit_t"). Use it through ``SamPredictor``; parameter names match the checkpoint."""

    image_format = "RGB"
    mask_threshold = 0.0
    img_size = 1024
    """Input side the checkpoint was trained for (the predictor may run the encoder at another)."""

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = TinyViT()
        self.prompt_encoder = PromptEncoder(embed_dim=256, image_embedding_size=64, input_image_size=1024)
        self.mask_decoder = MaskDecoder(dim=256)
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(-1, 1, 1), persistent=False)
        self.fused = False
        self.gelu_fused = False
        self.casts_cached = False
        self.weights_sha256: str | None = None
        """sha256 of the verified checkpoint these weights came from (set by ``load_mobilesam``; None for
        any other weights). It keys caches of computed values (``blank_cache``); loading other weights
        with ``load_state_dict`` clears it."""

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """``nn.Module.load_state_dict``; the weights are then no longer the verified file's."""
        self.weights_sha256 = None
        return super().load_state_dict(*args, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def optimize_for_inference(
        self,
        *,
        fuse_conv_bn: bool = True,
        channels_last: bool = True,
        fuse_gelu: bool = True,
        cache_casts: bool = True,
    ) -> MobileSam:
        """Inference-only speed-ups that keep the function (within float rounding, see the golden test):
        fold BatchNorm into the convolutions, run them on NHWC data (oneDNN's depthwise kernels are
        ~3x faster so) and, with ``fuse_gelu`` (needs ``fuse_conv_bn``), apply each GELU that follows a
        conv or MLP ``fc1`` inside that layer's oneDNN op (``tiny_vit.ConvGelu`` / ``LinearGelu``; plain
        ops when oneDNN is unusable). With ``cache_casts`` (needs ``fuse_conv_bn``) every other encoder
        conv/linear keeps a cached autocast-dtype copy of its weights (``tiny_vit.CastConv2d`` /
        ``CastLinear``): the bf16 encoder output is bit-identical, without re-casting the weights on each
        run. After folding, the model no longer loads checkpoints."""
        self.eval()
        if fuse_conv_bn and not self.fused:
            self.image_encoder.fuse_conv_bn()
            self.fused = True
        if fuse_gelu and self.fused and not self.gelu_fused:
            self.image_encoder.fuse_gelu()
            self.gelu_fused = True
        if cache_casts and self.fused and not self.casts_cached:
            self.image_encoder.cache_casts()
            self.casts_cached = True
        if channels_last:
            self.image_encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.image_encoder.channels_last = channels_last
        return self


def load_state_dict_file(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)``; a damaged or foreign file raises ``WeightsError``."""
    try:
        state = torch.load(str(path), map_location=device, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise WeightsError(
            f"cannot read MobileSAM weights {str(path)!r}: {exc}. Delete the file and let gt_widget download "
            "it again, or point GT_WIDGET_WEIGHTS at a good copy of mobile_sam.pt"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{str(path)!r} is not a MobileSAM state_dict (expected a dict of tensors)")
    return state


def load_mobilesam(
    weights: str | Path | None = None, *, device: str = "cpu", optimize: bool = True, verify: bool = True
) -> MobileSam:
    """Build MobileSAM, load its weights strictly and put it in eval mode on ``device``.

    ``weights``: a path, or None to resolve ($GT_WIDGET_WEIGHTS, the cache, then a download; see
    ``gt_widget.segment.weights``). The file is sha256-verified unless ``verify=False`` (tests of other
    checkpoints only). ``optimize`` applies ``MobileSam.optimize_for_inference`` (conv+BN folding, NHWC
    convolutions; agrees with the exact path within the golden tolerances) and ``tune_allocator()``.
    """
    from gt_widget.segment.weights import MOBILESAM_SHA256, resolve_weights

    if verify or weights is None:
        path, identity = resolve_weights(weights), MOBILESAM_SHA256  # resolve_weights checked exactly this
    else:
        path, identity = Path(weights), None
    state = load_state_dict_file(path, device)
    model = MobileSam()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"{str(path)!r} does not fit the MobileSAM (vit_t) architecture: {str(exc)[:500]}. "
            "Use the official mobile_sam.pt"
        ) from None
    model.to(device).eval()
    model.weights_sha256 = identity
    if optimize:
        model.optimize_for_inference()
        tune_allocator()
    return model
