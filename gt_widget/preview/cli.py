"""Command-line subcommands of gt_widget.preview: ``gt-widget template preview``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """This area adds no top-level subcommands (its command lives under ``template``)."""


def register_template(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``template preview``."""
    p = sub.add_parser(
        "preview",
        help="preview a task template in a browser, offline, with auto-segment",
        description=(
            "Render TEMPLATE with the task input like Ground Truth does, serve it on 127.0.0.1 with stand-ins "
            "for the crowd elements (no network needed) and open it in a browser. Auto-segment runs the "
            "kernel-side segmenter; Submit prints a summary and, with --save, writes the worker-response JSON."
        ),
    )
    p.add_argument("template", help="template file, or builtin:semantic / builtin:instance")
    p.add_argument(
        "--input",
        "-i",
        required=True,
        metavar="TASK.json",
        help='task input (task.input), e.g. {"taskObject": "s3://bucket/img.jpg", "labels": ["cat"]}; '
        "image paths may also be local files",
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL")
    p.add_argument(
        "--segmenter", choices=("mobilesam", "grabcut"), default=None, help="default: MobileSAM, else GrabCut"
    )
    p.add_argument("--save", metavar="FILE.json", help="write each submission there as a worker-response file")
    p.add_argument("--once", action="store_true", help="exit after the first submission")
    p.set_defaults(func=_run_preview)


def _summary(content: dict[str, Any]) -> str:
    parts = []
    for name, value in content.items():
        if isinstance(value, dict) and "labeledImage" in value:
            props = value.get("inputImageProperties", {})
            what = (
                f"{len(value['instances'])} instance(s)"
                if "instances" in value
                else f"labels {sorted(value.get('labelMappings', {}))}"
            )
            parts.append(f"{name}: {props.get('width')}x{props.get('height')}, {what}")
        else:
            parts.append(f"{name}: {json.dumps(value)[:60]}")
    return "; ".join(parts) or "(empty answer)"


def _run_preview(args: argparse.Namespace) -> int:
    from gt_widget.preview.preview import preview_template

    done = threading.Event()

    def on_submit(content: dict[str, Any]) -> None:
        print(f"submitted: {_summary(content)}", flush=True)
        if args.save:
            print(f"saved the worker response to {args.save}", flush=True)
        if args.once:
            done.set()

    preview = preview_template(
        args.template,
        args.input,
        segmenter=args.segmenter,
        port=args.port,
        on_submit=on_submit,
        save_to=args.save,
        open_browser=not args.no_browser,
        once=args.once,
    )
    try:
        print(f"previewing {args.template} at {preview.url}  (Ctrl+C stops)", flush=True)
        while not done.wait(0.5):
            pass
        done.wait(0.5)  # let the browser receive the server's reply before stopping
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        preview.stop()
    return 0
