"""Helpers for the Ground Truth tooling tests: golden files and an S3 bucket on the moto server."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("GT_WIDGET_REGEN_GOLDEN", "") == "1"


def check_golden(name: str, text: str) -> None:
    """Compare ``text`` with ``golden/<name>``; with GT_WIDGET_REGEN_GOLDEN=1 rewrite it instead."""
    path = GOLDEN / name
    if REGENERATE or not path.exists():
        if not REGENERATE:
            pytest.fail(f"golden file {path} is missing: run with GT_WIDGET_REGEN_GOLDEN=1 and review it by eye")
        path.write_text(text, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file (GT_WIDGET_REGEN_GOLDEN=1 regenerates it)"


def check_golden_json(name: str, value: Any) -> None:
    check_golden(name, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 S3 client on the moto server; AWS_ENDPOINT_URL_S3 points gt_widget's own clients at it."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    """A fresh bucket named after the test."""
    import re

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-") + "-b"
    s3.create_bucket(Bucket=name)
    return name
