"""``gt-widget`` command line. Each area registers its own subcommands; this module only dispatches.

Handlers return the process exit code. A ``GtWidgetError`` or an ``OSError`` (full disk, read-only or missing
folder, permissions) becomes one ``error: ...`` line and exit 2;
heavy imports (torch, boto3) happen inside handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from gt_widget import __version__
from gt_widget.errors import GtWidgetError


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``gt-widget`` parser. Given the ``command`` about to run and it is one of the segment area's
    (``segment_cli.COMMANDS``), only that area's subcommands are registered: the others import the widget
    (ipywidgets and more, ~0.2 s) which a batch pre-labeling run would pay for nothing. Otherwise (no or
    another command, ``--help``) the full parser."""
    from gt_widget.segment import cli as segment_cli

    parser = argparse.ArgumentParser(
        prog="gt-widget",
        description="Ground Truth image-segmentation labeling in Jupyter: segment, label, build and run jobs.",
    )
    parser.add_argument("--version", action="version", version=f"gt-widget {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    segment_cli.register(sub)  # segment, weights
    if command in segment_cli.COMMANDS:
        return parser
    from gt_widget import quality_cli
    from gt_widget.formats import cli as formats_cli
    from gt_widget.groundtruth import cli as groundtruth_cli
    from gt_widget.preview import cli as preview_cli
    from gt_widget.widget import cli as widget_cli

    widget_cli.register(sub)  # demo
    formats_cli.register(sub)  # export, import
    groundtruth_cli.register(sub)  # job
    quality_cli.register(sub)  # evaluate, resegment
    template = sub.add_parser("template", help="render and preview Liquid task templates")
    template_sub = template.add_subparsers(dest="template_command", required=True, metavar="ACTION")
    groundtruth_cli.register_template(template_sub)  # template render | builtin
    preview_cli.register_template(template_sub)  # template preview
    return parser


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def local_path(value: str) -> Path:
    """argparse ``type=`` for arguments that name a local file or folder: a URL (``s3://...``) is refused
    with its scheme intact (``Path`` would turn ``s3://b/k`` into ``s3:/b/k`` and report it missing)."""
    if _URL.match(value) and not value.startswith("file://"):
        raise argparse.ArgumentTypeError(
            f"{value!r} is a URL; this command reads and writes local files: download it first "
            f"(e.g. `aws s3 cp {value} .`) and pass the local path"
        )
    return Path(value.removeprefix("file://"))


def os_error_message(exc: OSError) -> str:
    """One line for a disk / file-system error: what failed, on which path, and what to check."""
    where = f" {exc.filename!r}" if exc.filename else ""
    if exc.filename2:
        where += f" -> {exc.filename2!r}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return (
        f"{reason}:{where} ({type(exc).__name__}); check that the path exists, that you may write there "
        "and that the disk has free space, then run the command again"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gt-widget`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list[0] if args_list else None)
    args = parser.parse_args(args_list)
    try:
        code: int = args.func(args)
    except GtWidgetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
