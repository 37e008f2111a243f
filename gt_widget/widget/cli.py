"""Command-line subcommands of gt_widget.widget: ``demo`` and ``export``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` and ``export`` to the top-level parser."""
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

    export = sub.add_parser(
        "export",
        help="export a labeling job's output as COCO JSON (RLE) or PNG masks",
        description="Read <output_dir>/<job_name>/manifests/output/output.manifest and its consolidated PNGs "
        "(a LabelingSession's folder or a downloaded Ground Truth job) and write COCO JSON or PNG masks.",
    )
    export.add_argument("format", choices=["coco", "png"], help="coco: one JSON with RLE masks; png: one PNG per image")
    export.add_argument("job_dir", help="the job folder, <output_dir>/<job_name>")
    export.add_argument("--out", required=True, help="coco: the JSON file to write; png: the folder to write")
    export.add_argument("--labels", nargs="+", default=None, help="category order (default: order of appearance)")
    export.add_argument("--compressed", action="store_true", help="coco: COCO's compressed RLE strings")
    export.set_defaults(func=_export)


def _demo(args: argparse.Namespace) -> int:
    from gt_widget.widget.demo import launch_lab, run_headless

    if args.headless:
        job_dir = run_headless(args.dir, timeout=args.timeout, output_dir=args.output)
        print(f"Ground Truth outputs: {job_dir}")
        return 0
    return launch_lab(args.dir, port=args.port, open_browser=not args.no_browser)


def _export(args: argparse.Namespace) -> int:
    from gt_widget.groundtruth.export import export_coco, export_png_masks

    if args.format == "coco":
        path = export_coco(args.job_dir, args.out, labels=args.labels, compressed=args.compressed)
        print(f"wrote {path}")
    else:
        files = export_png_masks(args.job_dir, args.out, labels=args.labels)
        print(f"wrote {len(files)} files to {Path(args.out).resolve()}")
    return 0
