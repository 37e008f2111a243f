"""Fixtures of the preview tests: the GrabCut llama with its mask, and a Chromium page that may only talk to
127.0.0.1 (helpers live in tests/preview/helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def llama(grabcut_dir: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """(image path, bool GT mask, bool void band) of the GrabCut set's llama."""
    image = grabcut_dir / "images" / "llama.png"
    mask = np.asarray(Image.open(grabcut_dir / "masks" / "llama.png").convert("L")) > 127
    void_path = grabcut_dir / "void" / "llama.png"
    void = np.asarray(Image.open(void_path).convert("L")) > 127 if void_path.exists() else np.zeros_like(mask)
    return image, mask, void


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[[str], tuple[Any, list[str]]]]:
    """open_page(url) -> (page, outside): a 1600x1100 page; requests to anything but 127.0.0.1 are
    aborted and listed in ``outside`` (the preview must work offline). Console errors are collected too."""
    contexts: list[Any] = []

    def opener(url: str) -> tuple[Any, list[str]]:
        ctx = browser.new_context(viewport={"width": 1600, "height": 1100})
        contexts.append(ctx)
        outside: list[str] = []

        def guard(route: Any) -> None:
            outside.append(route.request.url)
            route.abort()

        # only requests that leave 127.0.0.1 are intercepted (local ones never wait for this Python thread)
        ctx.route(lambda u: not u.startswith(("http://127.0.0.1:", "data:", "blob:")), guard)
        page = ctx.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        return page, outside

    yield opener
    for ctx in contexts:
        ctx.close()
