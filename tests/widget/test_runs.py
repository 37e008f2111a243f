"""Palette runs (``gt_widget.widget.runs``): the page must get exactly the pixels of the palette PNG they
replace, a page without the patch must see a harmless image, and the widget sends runs only once the page
said it draws them (issue 13: no image decode between the kernel and the screen)."""

from __future__ import annotations

import io
from typing import Any

import ipycanvas.canvas as ipc
import numpy as np
import pytest
from PIL import Image

from gt_widget.widget import SegmentationWidget, render, runs
from gt_widget.widget.testing import BoxSegmenter

EXTREME = [(20, 10), (20, 30), (10, 20), (34, 20)]


def _png_rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (57, 1), (90, 120), (516, 737)])
def test_runs_decode_to_exactly_the_palette_pngs_pixels(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    index = np.zeros(shape, np.uint8)
    h, w = shape
    for v in (1, 2, 5, 129, 130, 255):  # blobs, contour values, the last palette entry
        y, x = rng.integers(0, h), rng.integers(0, w)
        index[y : y + rng.integers(1, h + 1), x : x + rng.integers(1, w + 1)] = v
    palette = rng.integers(0, 256, (256, 4), dtype=np.uint8)
    palette[0] = 0
    payload = runs.encode(index, palette)
    np.testing.assert_array_equal(runs.decode(payload), _png_rgba(render.palette_png(index, palette)))


def test_a_runs_payload_is_a_transparent_png_to_a_page_without_the_patch() -> None:
    index = np.full((40, 60), 3, np.uint8)
    palette = np.zeros((256, 4), np.uint8)
    palette[3] = (200, 10, 10, 255)
    payload = runs.encode(index, palette)
    assert payload.startswith(runs.TINY_PNG)
    im = Image.open(io.BytesIO(payload))
    assert im.size == (1, 1) and _png_rgba(payload)[0, 0, 3] == 0
    assert len(payload) < 1200 + len(runs.TINY_PNG)  # one run: header, palette, 5 bytes


class _Sent:
    def __init__(self) -> None:
        self.puts: list[bytes] = []


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> _Sent:
    s = _Sent()
    orig = render.put_png

    def put_png(layer: Any, png: bytes, x: int, y: int) -> None:
        s.puts.append(bytes(png))
        orig(layer, png, x, y)

    monkeypatch.setattr(render, "put_png", put_png)
    return s


def test_widget_sends_runs_only_after_the_page_says_it_draws_them(sent: _Sent) -> None:
    img = np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    w = SegmentationWidget(img, ["cat"], segmenter=BoxSegmenter())
    assert w.scope.canvas_ref == w.canvas[1].model_id
    w.auto_segment(EXTREME)
    assert sent.puts and all(runs.MAGIC not in p for p in sent.puts)  # PNGs until the page is ready
    sent.puts.clear()
    w.redraw()
    png_overlay = _png_rgba(sent.puts[0])
    w.scope._handle(w.scope, {"type": "runs_ready"})
    sent.puts.clear()
    w.redraw()
    assert sent.puts and all(runs.MAGIC in p for p in sent.puts)
    np.testing.assert_array_equal(runs.decode(sent.puts[0]), png_overlay)  # the same overlay, as runs
    w.close()


def test_runs_travel_in_ipycanvas_own_put_image_data_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same command, same batch: ipycanvas keeps the order of clears and draws on every layer."""
    commands: list[Any] = []
    orig = ipc._CanvasManager.send_draw_command

    def record(self: Any, canvas: Any, name: Any, args: Any = (), buffers: Any = ()) -> None:
        commands.append((canvas, name, list(buffers)))
        orig(self, canvas, name, args, buffers)

    monkeypatch.setattr(ipc._CanvasManager, "send_draw_command", record)
    img = np.random.default_rng(2).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    w = SegmentationWidget(img, ["cat"], segmenter=BoxSegmenter())
    w.scope._handle(w.scope, {"type": "runs_ready"})
    commands.clear()
    w.auto_segment(EXTREME)
    puts = [c for c in commands if c[1] == ipc.COMMANDS["putImageData"] and c[0] is w.canvas[1]]
    assert len(puts) == 1 and runs.MAGIC in bytes(puts[0][2][0])
    w.close()
