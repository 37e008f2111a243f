"""Command-line subcommands of gt_widget.preview."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the top-level parser (placeholder until the area lands)."""


def register_template(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's ``template`` actions (placeholder until the area lands)."""
