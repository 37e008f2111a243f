"""Shared fixtures. Evaluation material (weights, benchmark images) lives in ../shared, never in the repo.

Outside CI a test that needs it is skipped with the reason; under CI (``CI=true``) it fails instead, so a
green CI run always means the real model and data were exercised.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GT_WIDGET_SHARED", REPO.parent / "shared")).resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        message = f"{what} not found at {path}"
        if IN_CI:
            pytest.fail(message + " (CI must exercise it)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (evaluation data and weights)."""
    return _need(SHARED, "shared evaluation folder")


@pytest.fixture(scope="session")
def weights_path() -> Path:
    """MobileSAM weights: $GT_WIDGET_WEIGHTS, else ../shared/models/mobile_sam.pt."""
    env = os.environ.get("GT_WIDGET_WEIGHTS")
    return _need(Path(env) if env else SHARED / "models" / "mobile_sam.pt", "MobileSAM weights")


@pytest.fixture(scope="session")
def grabcut_dir(shared_dir: Path) -> Path:
    """../shared/data/grabcut."""
    return _need(shared_dir / "data" / "grabcut", "GrabCut benchmark set")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so failures reproduce."""
    return np.random.default_rng(1234)
