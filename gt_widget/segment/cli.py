"""Command-line subcommands of gt_widget.segment."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the top-level parser (placeholder until the area lands)."""
