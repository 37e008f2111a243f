"""``gt-widget export`` (coco, png, yolo, voc, hf) and ``gt-widget import`` (coco, yolo, masks)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gt_widget.errors import FormatError

EXPORT_FORMATS = ("coco", "png", "yolo", "voc", "hf")
IMPORT_FORMATS = ("coco", "yolo", "masks")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` and ``import`` to the top-level parser."""
    export = sub.add_parser(
        "export",
        help="export a labeling job's output: COCO (RLE), PNG masks, YOLO segmentation, VOC, Hugging Face",
        description="Read JOB_DIR/manifests/output/output.manifest and its consolidated PNGs (a LabelingSession's "
        "folder, a pre-labeling run or a downloaded Ground Truth job) and write it as --format: coco (one JSON, "
        "RLE masks), png (one label-map PNG per image), yolo (data.yaml, images/, labels/), voc "
        "(SegmentationClass/ index PNGs with VOC's palette) or hf (a datasets.Dataset saved with save_to_disk). "
        "The older form `gt-widget export coco JOB_DIR` still works.",
    )
    export.add_argument("job_dir", nargs="+", metavar="JOB_DIR", help="the job folder, <output_dir>/<job_name>")
    export.add_argument("--format", choices=EXPORT_FORMATS, default=None, help="output format (default: coco)")
    export.add_argument("--out", required=True, help="coco: the JSON file to write; the others: a folder")
    export.add_argument("--labels", nargs="+", default=None, help="label order (default: order of appearance)")
    export.add_argument("--compressed", action="store_true", help="coco: COCO's compressed RLE strings")
    export.add_argument("--no-images", action="store_true", help="yolo/voc: do not copy the images")
    export.set_defaults(func=_export)

    imp = sub.add_parser(
        "import",
        help="turn COCO, YOLO or mask-folder labels into a Ground Truth output folder (initial labels)",
        description="Read existing labels and write them in Ground Truth's output layout under OUT/JOB_NAME "
        "(consolidated PNGs, output.manifest with human-annotated 'no'), ready to adjust in the widget, export, "
        "or send to workers as an adjustment job.",
    )
    imp.add_argument("format", choices=IMPORT_FORMATS, help="coco: a JSON; yolo: a dataset folder; masks: index PNGs")
    imp.add_argument("source", help="the COCO JSON, the YOLO dataset folder, or the masks / VOC folder")
    imp.add_argument("--images", default=None, help="folder of the images (coco, masks)")
    imp.add_argument("--labels", nargs="+", default=None, help="label names (masks: value 1 first; yolo: class 0)")
    imp.add_argument("--mode", choices=["semantic", "instance"], default=None, help="default: instance if known")
    imp.add_argument("--out", required=True, help="output folder (the job folder is OUT/JOB_NAME)")
    imp.add_argument("--job-name", default="gt-widget-import", help="job name (default: gt-widget-import)")
    imp.set_defaults(func=_import)


def _export(args: argparse.Namespace) -> int:
    from gt_widget import formats

    positional = list(args.job_dir)
    fmt = args.format
    if len(positional) == 2 and positional[0] in EXPORT_FORMATS and fmt is None:
        fmt, positional = positional[0], positional[1:]  # the older `export FORMAT JOB_DIR`
    if len(positional) != 1:
        raise FormatError("give one job folder: gt-widget export JOB_DIR --format yolo --out OUT")
    job_dir, fmt = positional[0], fmt or "coco"
    images = not args.no_images
    if fmt == "coco":
        print(f"wrote {formats.export_coco(job_dir, args.out, labels=args.labels, compressed=args.compressed)}")
    elif fmt == "png":
        files = formats.export_png_masks(job_dir, args.out, labels=args.labels)
        print(f"wrote {len(files)} files to {Path(args.out).resolve()}")
    elif fmt == "yolo":
        print(f"wrote {formats.export_yolo(job_dir, args.out, labels=args.labels, copy_images=images)}")
    elif fmt == "voc":
        print(f"wrote {formats.export_voc(job_dir, args.out, labels=args.labels, copy_images=images)}")
    else:
        ds = formats.export_hf(job_dir, args.out, labels=args.labels)
        print(f"wrote a datasets.Dataset of {len(ds)} rows to {Path(args.out).resolve()} (load_from_disk)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from gt_widget import formats

    if args.format == "coco":
        labels = formats.import_coco(args.source, images=args.images, mode=args.mode or "instance")
    elif args.format == "yolo":
        labels = formats.import_yolo(args.source, names=args.labels, mode=args.mode or "instance")
    else:
        labels = formats.import_masks(args.source, images=args.images, labels=args.labels, mode=args.mode)
    job_dir = labels.write_job(args.out, job_name=args.job_name)
    print(f"imported {len(labels.images)} image(s), labels {labels.labels}, {labels.mode} mode -> {job_dir}")
    return 0
