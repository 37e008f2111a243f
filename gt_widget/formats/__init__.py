"""Datasets in and out: a job's Ground Truth output exported to YOLO segmentation, VOC-style index PNGs,
COCO (RLE) and Hugging Face ``datasets``; COCO, YOLO and mask folders imported as initial labels.

Notebook use::

    export_yolo("out/my-job", "yolo/")                     # data.yaml, images/, labels/
    export_voc("out/my-job", "voc/")                       # SegmentationClass/, labelmap.txt, ...
    export_coco("out/my-job", "coco.json")                 # RLE masks
    ds = export_hf("out/my-job", "hf/")                    # datasets.Dataset, saved with save_to_disk

    labels = import_coco("instances.json", images="imgs/")  # or import_yolo("yolo/"), import_masks("voc/")
    SegmentationWidget(path, labels.labels, mode=labels.mode, initial_value=labels.initial_value(path))
    labels.write_job("out", job_name="imported")            # Ground Truth output layout, for adjustment jobs
"""

from __future__ import annotations

from gt_widget.formats.coco import import_coco
from gt_widget.formats.hf import export_hf
from gt_widget.formats.job import export_coco, export_png_masks
from gt_widget.formats.labels import ImportedImage, ImportedLabels
from gt_widget.formats.masks import import_masks
from gt_widget.formats.voc import export_voc
from gt_widget.formats.yolo import export_yolo, import_yolo

__all__ = [
    "ImportedImage",
    "ImportedLabels",
    "export_coco",
    "export_hf",
    "export_png_masks",
    "export_voc",
    "export_yolo",
    "import_coco",
    "import_masks",
    "import_yolo",
]
