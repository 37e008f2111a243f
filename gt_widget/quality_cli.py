"""``gt-widget evaluate`` (the benchmark protocol on your labels) and ``gt-widget resegment`` (replay the
prompt logs of a job folder with another recipe or model)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``evaluate`` and ``resegment`` to the top-level parser."""
    ev = sub.add_parser(
        "evaluate",
        help="which recipe suits my data: the benchmark protocol on your own finished labels",
        description="For every labeled object of SOURCE (a job folder with manifests/output/output.manifest, "
        "a COCO JSON file, or a folder of mask PNGs with --images), take its 4 extreme points, segment, then "
        "simulate corrective clicks (the protocol of the project's benchmarks), and print mIoU, NoC@85/90 "
        "and model seconds per object for each recipe.",
    )
    ev.add_argument("source", help="job folder, COCO .json, or folder of mask PNGs")
    ev.add_argument("--images", default=None, help="image folder (masks folder: same stems; COCO: file_name root)")
    ev.add_argument(
        "--recipes", nargs="+", default=["default", "fast", "fallback"], help="default, fast, fallback (all three)"
    )
    ev.add_argument("--weights", default=None, help="MobileSAM checkpoint path (default: the verified cache)")
    ev.add_argument("--limit", type=int, default=None, help="only the first N objects")
    ev.add_argument("--no-clicks", action="store_true", help="extreme points only (no NoC loop; much faster)")
    ev.add_argument("--json", type=Path, default=None, help="also write the table (with per-object rows) here")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=_evaluate)

    rs = sub.add_parser(
        "resegment",
        help="re-segment a labeled job folder from its prompt logs with another recipe or model",
        description="Replay the prompt log of every image of OUTPUT_DIR (a job folder labeled with the widget): "
        "model-made masks are recomputed from their recorded extreme points, clicks and proposals with RECIPE, "
        "brush/eraser/polygon/fill edits are applied on top in their order. Writes OUT/JOB_NAME (Ground Truth "
        "layout, new prompt logs) and resegment-report.json (IoU old vs new per object), and prints the "
        "objects that changed most.",
    )
    rs.add_argument("output_dir", help="job folder with gt-widget/prompt-log/")
    rs.add_argument("--out", required=True, help="where the new job folder goes")
    rs.add_argument(
        "--recipe", default="default", help="default, fast, fallback, or recorded (each log's own model and recipe)"
    )
    rs.add_argument("--set", nargs="*", default=[], help="extra segmenter flags, e.g. zoom_below=0.5")
    rs.add_argument("--weights", default=None, help="MobileSAM checkpoint path (default: the verified cache)")
    rs.add_argument("--job-name", default=None, help="new job name (default: <old>-resegmented)")
    rs.add_argument("--quiet", action="store_true", help="no progress bar")
    rs.set_defaults(func=_resegment)


def _evaluate(args: argparse.Namespace) -> int:
    from gt_widget.evaluate import evaluate_labels, format_table, labeled_objects

    labeled_objects(args.source, args.images)  # bad input fails before any model loads
    table = evaluate_labels(
        args.source,
        args.recipes,
        images=args.images,
        weights=args.weights,
        limit=args.limit,
        clicks=not args.no_clicks,
        progress=not args.quiet,
    )
    print(format_table(table))
    if args.json is not None:
        args.json.write_text(json.dumps(table, indent=1))
    return 0


def _resegment(args: argparse.Namespace) -> int:
    from gt_widget.errors import GtWidgetError
    from gt_widget.resegment import resegment
    from gt_widget.segment.named import RECIPES, parse_flags

    if args.recipe != "recorded" and args.recipe not in RECIPES:
        raise GtWidgetError(f"unknown recipe {args.recipe!r}: choose one of {', '.join(RECIPES)}, recorded")
    report = resegment(
        args.output_dir,
        args.out,
        recipe=args.recipe,
        flags=parse_flags(args.set),
        weights=args.weights,
        job_name=args.job_name,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0
