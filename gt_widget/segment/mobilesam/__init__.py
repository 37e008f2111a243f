"""Clean-room MobileSAM in plain PyTorch (no torchvision, timm or segment-anything).

Kernel side. ``load_mobilesam()`` builds the model and loads the checksum-verified ``mobile_sam.pt``;
``SamPredictor`` embeds an image once (``set_image``) and predicts masks for prompts (``predict``).
Coordinates are (x, y) pixels of the original image; masks are bool (H, W).
"""

from __future__ import annotations

from gt_widget.segment.mobilesam.model import MobileSam, load_mobilesam
from gt_widget.segment.mobilesam.predictor import SamPredictor
from gt_widget.segment.mobilesam.transforms import (
    input_tensor,
    preprocess,
    resize_image,
    resized_shape,
    scale_boxes,
    scale_coords,
    upscale_logits,
)

__all__ = [
    "MobileSam",
    "SamPredictor",
    "input_tensor",
    "load_mobilesam",
    "preprocess",
    "resize_image",
    "resized_shape",
    "scale_boxes",
    "scale_coords",
    "upscale_logits",
]
