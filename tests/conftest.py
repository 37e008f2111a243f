"""Shared fixtures. Evaluation material (weights, benchmark images) lives in ../shared, never in the repo.

Outside CI a test that needs it is skipped with the reason; under CI (``CI=true``) it fails instead, so a
green CI run always means the real model and data were exercised.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real moto S3 server on 127.0.0.1, with fake credentials in the environment.

    Point boto3 at it with ``endpoint_url=s3_endpoint`` (or ``AWS_ENDPOINT_URL_S3``).
    """
    from tests.support.servers import FAKE_AWS_ENV, moto_s3_server

    saved = {k: os.environ.get(k) for k in FAKE_AWS_ENV}
    os.environ.update(FAKE_AWS_ENV)
    try:
        with moto_s3_server(tmp_path_factory.mktemp("moto")) as url:
            yield url
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A Playwright ``Browser`` (headless Debian Chromium), shared by the session's browser tests."""
    from tests.support.servers import chromium_browser

    if not Path("/usr/bin/chromium").exists() and not IN_CI:
        pytest.skip("chromium not installed (make setup installs it)")
    with chromium_browser() as b:
        yield b
