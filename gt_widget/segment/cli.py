"""Command-line subcommands of gt_widget.segment: ``segment`` (batch pre-labeling) and ``weights``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gt_widget.cli import local_path
from gt_widget.errors import FormatError

COMMANDS = ("segment", "weights")
"""The subcommands ``register`` adds (``gt_widget.cli`` parses them without the other areas' parsers)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``COMMANDS`` (``segment`` and ``weights``) to the top-level parser."""
    seg = sub.add_parser(
        "segment",
        help="pre-label a folder or input manifest of images from boxes / extreme points",
        description="Segment every image of SOURCE (a folder, or a JSON Lines input manifest with local "
        "source-ref paths) from the objects in PROMPTS, a JSON file such as "
        '{"cat.jpg": [{"label": "cat", "extreme_points": [[x, y], [x, y], [x, y], [x, y]]}, '
        '{"label": "dog", "box": [x0, y0, x1, y1]}]} (x, y pixels of the original image). Writes label-map '
        "PNGs, Ground Truth consolidated PNGs and an output.manifest under OUT/JOB_NAME/. A bad image is "
        "reported and skipped; the exit code is 1 if any image failed or a prompt key matches no image.",
    )
    seg.add_argument("source", type=local_path, help="folder of images, or an input manifest (.jsonl / .manifest)")
    seg.add_argument(
        "--prompts", type=local_path, default=None, help="JSON file: image -> list of {label, extreme_points|box}"
    )
    seg.add_argument(
        "--proposals",
        action="store_true",
        help="instead of --prompts: automatic object proposals (MobileSAM point grid) as instance pre-labels",
    )
    seg.add_argument("--points-per-side", type=int, default=16, help="--proposals: grid of N x N points (16)")
    seg.add_argument("--label", default="object", help="--proposals: the label of every proposal (object)")
    seg.add_argument("--out", type=local_path, required=True, help="output folder (the job folder is OUT/JOB_NAME)")
    seg.add_argument(
        "--segmenter",
        choices=["auto", "mobilesam", "grabcut"],
        default="auto",
        help="auto (default): MobileSAM, else GrabCut with a warning",
    )
    seg.add_argument("--weights", default=None, help="MobileSAM checkpoint path (default: the verified cache)")
    seg.add_argument(
        "--fast",
        action="store_true",
        help="MobileSAM: one encoder pass per image, of the image's own area only (no zoomed second pass per "
        "object; ~2 points less mIoU)",
    )
    seg.add_argument("--labels", nargs="+", default=None, help="label order (default: order of appearance)")
    seg.add_argument("--job-name", default="gt-widget-prelabel", help="job name (default: gt-widget-prelabel)")
    seg.add_argument("--label-attribute", default="label-ref", help="label attribute name, ends in -ref")
    seg.add_argument("--quiet", action="store_true", help="no progress bar")
    seg.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local (default): this process; ray: one model per Ray actor (pip install 'gt_widget[ray]')",
    )
    seg.add_argument(
        "--address", default=None, help="ray: cluster address (auto, host:6379, ray://host:10001); default: local"
    )
    seg.add_argument(
        "--workers",
        type=int,
        default=None,
        help="ray: actors (default: one per GPU, else per CPU); local: model threads (default: one per core)",
    )
    seg.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available, else CPU)")
    seg.add_argument(
        "--restart", action="store_true", help="redo every image (default: keep images an earlier run finished)"
    )
    seg.set_defaults(func=_segment)

    weights = sub.add_parser(
        "weights",
        help="download / locate the MobileSAM weights",
        description="fetch: download the MobileSAM checkpoint into the cache (sha256-verified) unless it is "
        "already there, and print its path. path: print the path of the verified checkpoint without downloading.",
    )
    weights.add_argument("action", choices=["fetch", "path"])
    weights.add_argument("--path", default=None, help="use this checkpoint file (verified) instead of the cache")
    weights.add_argument("--quiet", action="store_true", help="no download progress bar")
    weights.set_defaults(func=_weights)


def _segment(args: argparse.Namespace) -> int:
    from functools import partial

    from gt_widget.groundtruth.labels import validate_label_names
    from gt_widget.segment import load_segmenter
    from gt_widget.segment.batch import list_images, load_prompts, prelabel

    list_images(args.source)  # bad arguments fail fast, before any model is loaded (or downloaded)
    if args.proposals:
        return _proposals(args)
    if args.prompts is None:
        raise FormatError("give --prompts PROMPTS.json (objects to segment) or --proposals (automatic objects)")
    load_prompts(args.prompts)
    if args.labels is not None:
        validate_label_names(args.labels)
    kwargs: dict[str, Any] = {"weights": args.weights} if args.weights else {}
    if args.fast:
        from gt_widget.segment.named import RECIPES

        kwargs.update(RECIPES["fast"][1])
    name = None if args.segmenter == "auto" else args.segmenter
    if name == "grabcut":
        kwargs = {}
    elif args.device is not None:
        kwargs["device"] = args.device
    factory = partial(load_segmenter, name, **kwargs)
    report = prelabel(
        args.source,
        args.prompts,
        args.out,
        segmenter=factory() if args.engine == "local" else None,
        segmenter_factory=factory,
        engine=args.engine,
        address=args.address,
        workers=args.workers,
        resume=not args.restart,
        labels=args.labels,
        job_name=args.job_name,
        label_attribute=args.label_attribute,
        progress=not args.quiet,
    )
    print(report.summary())
    return 1 if report.failed or report.unmatched else 0


def _proposals(args: argparse.Namespace) -> int:
    from gt_widget.segment import load_segmenter
    from gt_widget.segment.proposal_prelabel import prelabel_proposals

    if args.prompts is not None:
        raise FormatError("--proposals and --prompts exclude each other: proposals need no prompts")
    if args.segmenter == "grabcut":
        raise FormatError("--proposals needs MobileSAM (--segmenter mobilesam or auto with weights)")
    kwargs: dict[str, Any] = {"weights": args.weights} if args.weights else {}
    segmenter = load_segmenter("mobilesam", **kwargs)
    job_name = args.job_name if args.job_name != "gt-widget-prelabel" else "gt-widget-proposals"
    report = prelabel_proposals(
        args.source,
        args.out,
        segmenter=segmenter,
        label=args.label,
        points_per_side=args.points_per_side,
        job_name=job_name,
        progress=not args.quiet,
    )
    print(report.summary())
    return 1 if report.failed else 0


def _weights(args: argparse.Namespace) -> int:
    from gt_widget.segment.weights import resolve_weights

    if args.action == "fetch":
        path = resolve_weights(args.path, download=True, progress=not args.quiet and sys.stderr.isatty())
    else:
        path = resolve_weights(args.path, download=False, progress=False)
    print(path)
    return 0
