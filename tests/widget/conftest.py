"""Fixtures of the widget tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def mobilesam(weights_path: Path) -> Any:
    """The real MobileSAM segmenter, one per test module (its per-image state stays inside the module)."""
    from gt_widget.segment import load_segmenter

    return load_segmenter("mobilesam", weights=weights_path)
