"""What the widget sends to the browser: RGBA overlays (lossless), only the changed region, full redraw on
(re)connect / view change, draws from the model thread, bounded bytes for huge images, and a real
ipykernel showing that canvas messages sent from the model thread reach the client."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import ipycanvas.canvas as ipc
import numpy as np
import pytest
from PIL import Image

from gt_widget.palette import PALETTE, hex_to_rgb
from gt_widget.widget import SegmentationWidget, render
from gt_widget.widget.testing import BoxSegmenter

EXTREME = [(20, 10), (20, 30), (10, 20), (34, 20)]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, tuple[Any, ...], str]] = []
        self.wire_bytes = 0
        self.messages = 0


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    r = Recorder()
    orig_put = ipc.Canvas.put_image_data
    orig_clear_rect = ipc.Canvas.clear_rect
    orig_clear = ipc.Canvas.clear
    orig_send = ipc._CanvasManager._send_custom

    orig_put_png = render.put_png

    def put(self: Any, data: Any, x: int = 0, y: int = 0) -> None:
        r.calls.append(("put", self, (np.array(data), x, y), threading.current_thread().name))
        orig_put(self, data, x, y)

    def put_png(layer: Any, png: bytes, x: int, y: int) -> None:  # recorded as the RGBA the browser decodes
        rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
        r.calls.append(("put", layer, (rgba, x, y), threading.current_thread().name))
        orig_put_png(layer, png, x, y)

    def clear_rect(self: Any, x: int, y: int, w: int, h: int | None = None) -> None:
        r.calls.append(("clear_rect", self, (x, y, w, h), threading.current_thread().name))
        orig_clear_rect(self, x, y, w, h)

    def clear(self: Any) -> None:
        r.calls.append(("clear", self, (), threading.current_thread().name))
        orig_clear(self)

    def send(self: Any, command: Any, buffers: Any = ()) -> None:
        r.wire_bytes += sum(len(memoryview(b).cast("B")) for b in buffers)
        r.messages += 1
        orig_send(self, command, list(buffers))

    monkeypatch.setattr(ipc.Canvas, "put_image_data", put)
    monkeypatch.setattr(render, "put_png", put_png)
    monkeypatch.setattr(ipc.Canvas, "clear_rect", clear_rect)
    monkeypatch.setattr(ipc.Canvas, "clear", clear)
    monkeypatch.setattr(ipc._CanvasManager, "_send_custom", send)
    yield r


def _image(h: int = 60, w: int = 80) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _puts(rec: Recorder, layer: Any) -> list[tuple[np.ndarray, int, int, str]]:
    return [(a[0], a[1], a[2], t) for kind, c, a, t in rec.calls if kind == "put" and c is layer]


def test_brush_sends_only_the_changed_region_as_rgba(rec: Recorder) -> None:
    w = SegmentationWidget(_image(), ["cat", "dog"], segmenter=BoxSegmenter())
    w.opacity = 0.6
    rec.calls.clear()
    w.brush([(40, 30)], radius=3)
    overlay = w.canvas[1]
    puts = _puts(rec, overlay)
    assert len(puts) == 1
    rgba, x, y, _ = puts[0]
    assert rgba.shape[2] == 4  # RGBA -> ipycanvas encodes PNG (lossless), not JPEG
    # the disc's 7x7 pixel box grown by 1 pixel (its contour's neighbours) at 10 canvas px per pixel
    assert (rgba.shape[1], rgba.shape[0]) == (90, 90)
    assert (x, y) == (360, 260)
    centre = rgba[45, 45]
    assert tuple(centre) == (*hex_to_rgb(PALETTE[0]), round(0.6 * 255))
    edge = rgba[45, 10]  # the disc's leftmost pixel column starts at canvas x 370: a darker, opaque contour
    assert edge[3] == 255 and tuple(edge[:3]) == tuple(round(c * 0.55) for c in hex_to_rgb(PALETTE[0]))
    assert ("clear_rect", overlay, (360, 260, 90, 90), "MainThread") in rec.calls
    assert not _puts(rec, w.canvas[0])  # the photo is not re-sent for an edit
    assert overlay.image_smoothing_enabled is False
    w.close()


def test_each_mouse_event_is_one_batched_message(rec: Recorder) -> None:
    w = SegmentationWidget(_image(), ["cat"], segmenter=BoxSegmenter())
    w.tool = "brush"
    rec.messages = 0
    w.handle_mouse_down(*w.image_to_canvas(10, 10))
    assert rec.messages == 1  # overlay patch + brush outline travel together
    rec.messages = 0
    w.handle_mouse_move(*w.image_to_canvas(20, 12))
    assert rec.messages == 1
    rec.messages = 0
    w.handle_mouse_up(*w.image_to_canvas(20, 12))
    assert rec.messages <= 2
    rec.messages = 0
    w.zoom(2.0)
    assert rec.messages == 1  # photo + overlay + interaction
    w.close()


def test_opacity_and_reconnect_redraw_everything(rec: Recorder) -> None:
    w = SegmentationWidget(_image(), ["cat"], segmenter=BoxSegmenter())
    w.brush([(40, 30)], radius=5)
    rec.calls.clear()
    w.opacity = 0.25
    ((rgba, _x, _y, _),) = _puts(rec, w.canvas[1])
    assert rgba.shape[:2] == (600, 800) and rgba[300, 400, 3] == round(0.25 * 255)
    rec.calls.clear()
    w.canvas._canvases[-1]._handle_frontend_event(None, {"event": "client_ready"}, [])
    assert len(_puts(rec, w.canvas[0])) == 1 and len(_puts(rec, w.canvas[1])) == 1
    photo = _puts(rec, w.canvas[0])[0][0]
    assert photo.shape == (600, 800, 3)
    rec.calls.clear()
    w.handle_key_down("o")  # outline only
    ((rgba, _x, _y, _),) = _puts(rec, w.canvas[1])
    assert rgba[300, 400, 3] == 0 and rgba[..., 3].max() == 255
    rec.calls.clear()
    w.handle_key_down("o")  # hide labels
    assert not _puts(rec, w.canvas[1]) and w.overlay_style == "hidden"
    w.close()


def test_model_results_are_drawn_from_the_model_thread(rec: Recorder) -> None:
    gate = threading.Event()
    w = SegmentationWidget(_image(), ["cat"], segmenter=BoxSegmenter(gate=gate))
    rec.calls.clear()
    w.auto_segment(EXTREME, wait=False)
    gate.set()
    assert w.wait_idle(10)
    puts = _puts(rec, w.canvas[1])
    assert puts and all(t == "gt-widget-model" for *_, t in puts)
    rgba, _x, _y, _ = puts[-1]
    assert rgba[10:-10, 10:-10, 3].all() and rgba.shape[:2] == (230, 270)  # the 25x21 box (+1 px margin)
    w.close()


def test_huge_image_sends_canvas_sized_messages(rec: Recorder) -> None:
    big = np.zeros((8000, 10000, 3), np.uint8)
    big[:, :, 1] = np.arange(10000, dtype=np.uint32)[None, :] % 251
    t0 = time.perf_counter()
    w = SegmentationWidget(big, ["cat"], segmenter=BoxSegmenter())
    load_s = time.perf_counter() - t0
    first = rec.wire_bytes
    assert first < 1_500_000, first  # one canvas-sized JPEG + overlay, never the 240 MB image
    rec.wire_bytes = 0
    w.brush([(5000, 4000), (6000, 4500)], radius=200)
    assert rec.wire_bytes < 200_000
    assert (w.label_map[4000, 5000], w.label_map[4000, 4000]) == (1, 0)
    rec.wire_bytes = 0
    w.zoom(4.0, center=(5000, 4000))
    assert rec.wire_bytes < 1_500_000
    w.undo()
    assert not w.label_map.any()
    assert w.editor.state.history_bytes() < 5_000_000
    w.close()
    assert load_s < 30


def test_canvas_messages_from_the_model_thread_reach_the_client() -> None:
    """A real ipykernel: the overlay drawn after a background auto-segment arrives on iopub after the
    cell that released the model has already finished (so it was sent from the model thread)."""
    jc = pytest.importorskip("jupyter_client.manager")
    km, kc = jc.start_new_kernel(kernel_name="python3")
    try:
        setup = (
            "import threading, numpy as np\n"
            "from gt_widget.widget import SegmentationWidget\n"
            "from gt_widget.widget.testing import BoxSegmenter\n"
            "gate = threading.Event()\n"
            "w = SegmentationWidget(np.zeros((60, 80, 3), np.uint8), ['cat'], segmenter=BoxSegmenter(gate=gate, predict_delay=1.0))\n"
            "w.auto_segment([(20, 10), (20, 30), (10, 20), (34, 20)], wait=False)\n"
        )
        reply = kc.execute_interactive(setup, timeout=60)
        assert reply["content"]["status"] == "ok", reply
        msg_id = kc.execute("gate.set()")
        idle_seen = False
        late: list[dict[str, Any]] = []
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except Exception:
                if late:
                    break
                continue
            parent = msg.get("parent_header", {}).get("msg_id")
            if parent == msg_id and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle_seen = True
            elif idle_seen and msg["msg_type"] == "comm_msg" and msg.get("buffers"):
                late.append(msg)
        assert idle_seen and late, "no canvas draw arrived after the cell finished"
        check = kc.execute_interactive("assert int((w.label_map == 1).sum()) == 25 * 21", timeout=30)
        assert check["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
