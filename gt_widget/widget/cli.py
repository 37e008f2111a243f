"""Command-line subcommand of gt_widget.widget: ``demo`` (``export`` lives in ``gt_widget.formats.cli``)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the top-level parser."""
    demo = sub.add_parser(
        "demo",
        help="open the quickstart notebook in JupyterLab (or run it headless)",
        description="Copy notebooks/quickstart.ipynb into a working folder, fetch the MobileSAM weights and open "
        "JupyterLab on 127.0.0.1 on it; with --headless, run it end to end and print where the outputs went.",
    )
    demo.add_argument("--dir", default="gt-widget-demo", help="working folder (default: ./gt-widget-demo)")
    demo.add_argument("--headless", action="store_true", help="run the notebook with nbclient instead of JupyterLab")
    demo.add_argument("--output", default=None, help="Ground Truth output folder (default: <dir>/gt-widget-output)")
    demo.add_argument("--port", type=int, default=None, help="JupyterLab port (default: JupyterLab's choice)")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    demo.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds (headless)")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from gt_widget.widget.demo import launch_lab, run_headless

    if args.headless:
        job_dir = run_headless(args.dir, timeout=args.timeout, output_dir=args.output)
        print(f"Ground Truth outputs: {job_dir}")
        return 0
    return launch_lab(args.dir, port=args.port, open_browser=not args.no_browser)
