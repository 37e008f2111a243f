"""``gt-widget`` command line. Each area registers its own subcommands; this module only dispatches.

Handlers return the process exit code. A ``GtWidgetError`` becomes one ``error: ...`` line and exit 2;
heavy imports (torch, boto3) happen inside handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gt_widget import __version__
from gt_widget.errors import GtWidgetError


def build_parser() -> argparse.ArgumentParser:
    """The full ``gt-widget`` parser."""
    from gt_widget.formats import cli as formats_cli
    from gt_widget.groundtruth import cli as groundtruth_cli
    from gt_widget.preview import cli as preview_cli
    from gt_widget.segment import cli as segment_cli
    from gt_widget.widget import cli as widget_cli

    parser = argparse.ArgumentParser(
        prog="gt-widget",
        description="Ground Truth image-segmentation labeling in Jupyter: segment, label, build and run jobs.",
    )
    parser.add_argument("--version", action="version", version=f"gt-widget {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    segment_cli.register(sub)  # segment, weights
    widget_cli.register(sub)  # demo
    formats_cli.register(sub)  # export, import
    groundtruth_cli.register(sub)  # job
    template = sub.add_parser("template", help="render and preview Liquid task templates")
    template_sub = template.add_subparsers(dest="template_command", required=True, metavar="ACTION")
    groundtruth_cli.register_template(template_sub)  # template render | builtin
    preview_cli.register_template(template_sub)  # template preview
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gt-widget`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except GtWidgetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
