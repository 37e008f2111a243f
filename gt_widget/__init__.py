"""gt_widget: Ground Truth's image-segmentation labeling experience inside Jupyter.

Sides: the kernel owns all state (numpy label maps, model, files); the browser canvas only shows it.
Coordinates are (x, y) pixels of the original image; masks are bool (H, W) arrays.
"""

from __future__ import annotations

__version__ = "0.1.0"
