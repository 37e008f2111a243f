"""The one place the formats package reads a job's Ground Truth output and reuses the COCO/PNG exports.

``read_job_output`` / ``LabeledImage`` / ``export_coco`` / ``export_png_masks`` / the COCO RLE codec live
in the job-export module (``gt_widget/groundtruth/export.py``);
they are imported here once so that the move changes one line.
"""

from __future__ import annotations

from gt_widget.groundtruth.export import (
    LabeledImage,
    export_coco,
    export_png_masks,
    mask_bbox,
    read_job_output,
    rle_decode,
    rle_encode,
    rle_to_string,
)

__all__ = [
    "LabeledImage",
    "export_coco",
    "export_png_masks",
    "mask_bbox",
    "read_job_output",
    "rle_decode",
    "rle_encode",
    "rle_to_string",
]
