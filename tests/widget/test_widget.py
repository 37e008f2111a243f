"""SegmentationWidget driven headlessly by synthetic ipycanvas events (the same dispatch the browser's
messages go through) and by its Python API, with the deterministic ``BoxSegmenter``."""

from __future__ import annotations

import base64
import io
import threading
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gt_widget.errors import GtWidgetError, ImageLoadError, PromptError
from gt_widget.groundtruth import formats
from gt_widget.palette import PALETTE, hex_to_rgb
from gt_widget.widget import SegmentationWidget
from gt_widget.widget.keys import SHORTCUTS
from gt_widget.widget.state import WidgetError, stroke_footprint
from gt_widget.widget.testing import BoxSegmenter

LABELS = ["cat", "dog", "bird"]
EXTREME = [(20, 10), (20, 30), (10, 20), (34, 20)]  # top, bottom, left, right -> box x 10..34, y 10..30


def _image(h: int = 60, w: int = 80) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def _box(shape: tuple[int, int], x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


def _disc(shape: tuple[int, int], x: float, y: float, r: float) -> np.ndarray:
    gy, gx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (gx - x) ** 2 + (gy - y) ** 2 <= r * r


def fire(w: SegmentationWidget, event: str, x: float = 0.0, y: float = 0.0) -> None:
    """A browser mouse event, through ipycanvas' own message handler (canvas pixels)."""
    w.canvas._canvases[-1]._handle_frontend_event(None, {"event": event, "x": x, "y": y}, [])


def press(w: SegmentationWidget, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> None:
    """A browser key-down event on the focused canvas."""
    content = {"event": "key_down", "key": key, "shift_key": shift, "ctrl_key": ctrl, "meta_key": meta}
    w.canvas._canvases[-1]._handle_frontend_event(None, content, [])


def click_image(w: SegmentationWidget, x: float, y: float) -> None:
    cx, cy = w.image_to_canvas(x, y)
    fire(w, "mouse_down", cx, cy)
    fire(w, "mouse_up", cx, cy)


def drag_image(w: SegmentationWidget, pts: list[tuple[float, float]]) -> None:
    cs = [w.image_to_canvas(x, y) for x, y in pts]
    fire(w, "mouse_down", *cs[0])
    for c in cs[1:]:
        fire(w, "mouse_move", *c)
    fire(w, "mouse_up", *cs[-1])


@pytest.fixture
def seg() -> BoxSegmenter:
    return BoxSegmenter()


@pytest.fixture
def w(seg: BoxSegmenter) -> Any:
    widget = SegmentationWidget(_image(), LABELS, segmenter=seg)
    assert widget.wait_idle(10)
    yield widget
    widget.close()


# ------------------------------------------------------------------------------------------ bad input


def test_bad_construction_is_a_clear_error(seg: BoxSegmenter) -> None:
    with pytest.raises(GtWidgetError, match="empty"):
        SegmentationWidget(_image(), [], segmenter=seg)
    with pytest.raises(GtWidgetError, match="duplicate"):
        SegmentationWidget(_image(), ["a", "b", "a"], segmenter=seg)
    with pytest.raises(GtWidgetError, match="mode"):
        SegmentationWidget(_image(), ["a"], mode="panoptic", segmenter=seg)
    with pytest.raises(ImageLoadError):
        SegmentationWidget("/no/such/image.png", ["a"], segmenter=seg)


def test_bad_points_are_clear_errors(w: SegmentationWidget) -> None:
    with pytest.raises(PromptError, match="exactly 4"):
        w.auto_segment(EXTREME[:3])
    with pytest.raises(PromptError, match="outside the 80x60 image"):
        w.auto_segment([*EXTREME[:3], (80, 20)])
    with pytest.raises(PromptError, match="outside"):
        w.corrective_click(-3, 5)
    with pytest.raises(PromptError, match="outside"):
        w.brush([(10, 100)])
    with pytest.raises(PromptError, match="at least 3"):
        w.polygon([(1, 1), (5, 5)])
    with pytest.raises(WidgetError, match="unknown tool"):
        w.tool = "lasso"
    with pytest.raises(WidgetError, match="unknown label"):
        w.label = "cow"
    with pytest.raises(WidgetError, match="opacity"):
        w.opacity = 1.5
    with pytest.raises(WidgetError, match="instance mode"):
        w.add_instance("cat")
    with pytest.raises(PromptError, match="needs a mask"):
        w.corrective_click(5, 5, positive=False)
    assert w.history == (0, 0)


# ------------------------------------------------------------------------------------------ auto-segment


def test_four_canvas_clicks_auto_segment_in_the_current_label(w: SegmentationWidget) -> None:
    press(w, "2")
    assert w.label == "dog"
    press(w, "a")
    for x, y in EXTREME[:3]:
        click_image(w, x, y)
    assert w.status.startswith("extreme point 3/4") and not w.label_map.any()
    click_image(w, *EXTREME[3])
    assert w.wait_idle(10)
    assert np.array_equal(w.label_map, _box((60, 80), 10, 34, 10, 30).astype(np.uint8) * 2)
    assert w.history == (1, 0)


def test_points_placed_beside_the_image_are_ignored(w: SegmentationWidget) -> None:
    w.zoom(0.5)
    fire(w, "mouse_down", 1, 1)  # the backdrop around the shrunken image
    assert "outside the image" in w.status


def test_missed_part_is_added_to_the_mask(w: SegmentationWidget) -> None:
    w.auto_segment(EXTREME)
    w.auto_segment([(50, 40), (50, 50), (45, 45), (60, 45)])
    expected = _box((60, 80), 10, 34, 10, 30) | _box((60, 80), 45, 60, 40, 50)
    assert np.array_equal(w.label_map == 1, expected)
    assert w.history == (2, 0)


def test_corrective_clicks_refine_the_last_mask(w: SegmentationWidget) -> None:
    w.auto_segment(EXTREME)
    base = _box((60, 80), 10, 34, 10, 30)
    w.tool = "click"
    click_image(w, 40, 20)  # positive: adds a disc
    assert w.wait_idle(10)
    assert np.array_equal(w.label_map == 1, base | _disc((60, 80), 40, 20, 3))
    press(w, "x")  # polarity -> negative
    click_image(w, 20, 20)
    assert w.wait_idle(10)
    assert np.array_equal(w.label_map == 1, (base | _disc((60, 80), 40, 20, 3)) & ~_disc((60, 80), 20, 20, 3))
    press(w, "x")
    press(w, "Shift")  # one-shot negative
    click_image(w, 12, 12)
    click_image(w, 30, 28)  # back to positive (inside anyway)
    assert w.wait_idle(10)
    assert not (w.label_map == 1)[12, 12]
    assert w.history == (5, 0)
    w.undo()
    w.undo()
    assert (w.label_map == 1)[12, 12]


def test_click_removal_restores_the_label_that_was_painted_over(w: SegmentationWidget) -> None:
    w.label = "bird"
    w.brush([(20, 20)], radius=4)
    w.label = "cat"
    w.auto_segment(EXTREME)  # overwrites the bird disc
    assert not (w.label_map == 3).any()
    w.corrective_click(20, 20, positive=False)
    lm = w.label_map
    assert (lm[_disc((60, 80), 20, 20, 3)] == 3).all()  # bird is back where the mask shrank


def test_candidate_cycling(w: SegmentationWidget, seg: BoxSegmenter) -> None:
    w.auto_segment(EXTREME)
    press(w, "n")
    assert np.array_equal(w.label_map == 1, _box((60, 80), 12, 32, 12, 28))  # shrunk candidate
    press(w, "n")
    assert np.array_equal(w.label_map == 1, _box((60, 80), 8, 36, 8, 32))  # grown candidate
    press(w, "n")
    assert np.array_equal(w.label_map == 1, _box((60, 80), 10, 34, 10, 30))
    assert w.history == (4, 0)
    w.undo()
    assert np.array_equal(w.label_map == 1, _box((60, 80), 8, 36, 8, 32))


@pytest.mark.parametrize(
    ("scores", "shrink", "unsure"),
    [
        ((0.55, 0.52, 0.2), 6, True),  # low score with a close, clearly different runner-up
        ((0.55, 0.3, 0.2), 6, False),  # a low score alone: calibrated as no sign of a better candidate
        ((0.95, 0.93, 0.4), 6, True),  # a clearly different candidate scores almost as well
        ((0.95, 0.93, 0.92), 0, False),  # close scores but the same mask: nothing to choose
        ((0.95, 0.6, 0.4), 6, False),  # confident
    ],
)
def test_unsure_model_invites_cycling(scores: tuple[float, ...], shrink: int, unsure: bool) -> None:
    w = SegmentationWidget(_image(), LABELS, segmenter=BoxSegmenter(scores=scores, shrink=shrink))
    w.auto_segment(EXTREME)
    assert ("unsure" in w.status) == unsure
    assert (w.toolbar.candidate_button.button_style == "warning") == unsure and not w.toolbar.candidate_button.disabled
    w.close()


def test_clicks_while_busy_are_queued_then_applied_on_the_model_thread() -> None:
    gate = threading.Event()
    seg = BoxSegmenter(gate=gate)
    w = SegmentationWidget(_image(), LABELS, segmenter=seg)
    assert w.busy and "gt-spinner" in w.toolbar.busy.value
    for x, y in EXTREME:
        click_image(w, x, y)
    w.tool = "click"
    click_image(w, 40, 20)
    assert not w.label_map.any() and "queued" in w.status  # nothing dropped, nothing applied yet
    gate.set()
    assert w.wait_idle(10)
    assert not w.busy and w.toolbar.busy.value == ""
    assert np.array_equal(w.label_map == 1, _box((60, 80), 10, 34, 10, 30) | _disc((60, 80), 40, 20, 3))
    assert seg.threads == {"gt-widget-model"}  # every model call ran off the main thread
    w.close()


def test_results_for_a_previous_image_are_discarded() -> None:
    gate = threading.Event()
    seg = BoxSegmenter(gate=gate)
    w = SegmentationWidget(_image(), LABELS, segmenter=seg)
    w.auto_segment(EXTREME, wait=False)
    w.load_image(_image(50, 70))
    gate.set()
    assert w.wait_idle(10)
    assert w.label_map.shape == (50, 70) and not w.label_map.any() and w.history == (0, 0)
    w.close()


def test_model_failure_is_reported_not_raised_from_the_ui() -> None:
    class Broken(BoxSegmenter):
        def predict(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("CUDA out of memory")

    w = SegmentationWidget(_image(), LABELS, segmenter=Broken())
    for x, y in EXTREME:
        click_image(w, x, y)
    assert w.wait_idle(10)
    assert "CUDA out of memory" in w.status
    with pytest.raises(GtWidgetError, match="segmentation model failed"):
        w.auto_segment(EXTREME)
    w.close()


# ------------------------------------------------------------------------------------------ painting tools


def test_brush_stroke_paints_exact_pixels_and_is_one_undo_step(w: SegmentationWidget) -> None:
    press(w, "b")
    w.brush_radius = 4
    path = [(10.0, 10.0), (20.0, 15.0), (30.0, 15.0), (40.0, 30.0)]
    drag_image(w, path)
    expected = np.zeros((60, 80), bool)
    fp = stroke_footprint(path, 4, (60, 80))
    assert fp is not None
    (y0, y1, x0, x1), m = fp
    expected[y0:y1, x0:x1] = m
    assert np.array_equal(w.label_map == 1, expected)
    for x, y in path:
        assert (w.label_map == 1)[_disc((60, 80), x, y, 4)].all()
    assert w.history == (1, 0)
    press(w, "z")
    assert not w.label_map.any()
    press(w, "y")
    assert np.array_equal(w.label_map == 1, expected)


def test_brush_api_single_point_is_the_disc(w: SegmentationWidget) -> None:
    w.brush([(33.3, 21.7)], radius=5)
    assert np.array_equal(w.label_map == 1, _disc((60, 80), 33.3, 21.7, 5))


def test_brush_overwrites_other_labels_and_eraser_clears_all(w: SegmentationWidget) -> None:
    w.brush([(20, 20)], radius=6)
    w.label = "dog"
    w.brush([(26, 20)], radius=6)
    lm = w.label_map
    assert (lm[_disc((60, 80), 26, 20, 6)] == 2).all()  # overwrote cat where they overlap
    assert lm[20, 14] == 1
    press(w, "e")
    drag_image(w, [(14, 20), (30, 20)])
    lm = w.label_map
    assert lm[20, 14] == 0 and lm[20, 26] == 0 and w.history == (3, 0)


def test_stroke_leaving_the_canvas_ends_it(w: SegmentationWidget) -> None:
    w.tool = "brush"
    w.brush_radius = 2
    cx, cy = w.image_to_canvas(5, 5)
    fire(w, "mouse_down", cx, cy)
    fire(w, "mouse_move", *w.image_to_canvas(15, 5))
    fire(w, "mouse_out", *w.image_to_canvas(25, 5))
    fire(w, "mouse_move", *w.image_to_canvas(40, 40))  # button no longer held: no paint
    assert w.history == (1, 0) and w.label_map[5, 15] == 1 and w.label_map[40, 40] == 0


def test_polygon_by_clicks_closing_on_first_vertex(w: SegmentationWidget) -> None:
    press(w, "p")
    for x, y in [(10, 10), (30, 10), (30, 20), (10, 20)]:
        click_image(w, x, y)
    assert not w.label_map.any()
    cx, cy = w.image_to_canvas(10, 10)
    fire(w, "mouse_down", cx + 3, cy - 2)  # near the first vertex closes it
    expected = np.zeros((60, 80), bool)
    expected[10:21, 10:31] = True
    assert np.array_equal(w.label_map == 1, expected) and w.history == (1, 0)


def test_polygon_enter_closes_escape_cancels(w: SegmentationWidget) -> None:
    w.tool = "polygon"
    for x, y in [(5, 5), (15, 5), (5, 15)]:
        click_image(w, x, y)
    press(w, "Escape")
    press(w, "Enter")
    assert not w.label_map.any()
    for x, y in [(5, 5), (15, 5), (15, 15), (40, 40)]:
        click_image(w, x, y)
    press(w, "Backspace")  # drop (40, 40)
    press(w, "Enter")
    lm = w.label_map == 1
    assert lm[6, 14] and lm[5, 5] and not lm[14, 6] and not lm[30, 30]


def test_clear_is_undoable(w: SegmentationWidget) -> None:
    w.brush([(20, 20)], radius=5)
    before = w.label_map
    w.clear()
    assert not w.label_map.any()
    w.undo()
    assert np.array_equal(w.label_map, before)


def test_fifty_five_undo_steps_through_keys(w: SegmentationWidget) -> None:
    w.tool = "brush"
    w.brush_radius = 1
    snaps = [w.label_map]
    for i in range(55):
        press(w, str(i % 3 + 1))
        x, y = 2 + (i % 19) * 4, 3 + (i // 19) * 9
        drag_image(w, [(x, y), (x + 1, y + 5)])
        snaps.append(w.label_map)
    assert w.history == (55, 0)
    for i in range(55, 0, -1):
        assert np.array_equal(w.label_map, snaps[i])
        press(w, "z", ctrl=i % 2 == 0)
    assert not w.label_map.any() and w.history == (0, 55)
    for i in range(1, 56):
        press(w, "z", shift=True, ctrl=True) if i % 2 else press(w, "y")
        assert np.array_equal(w.label_map, snaps[i])


# ------------------------------------------------------------------------------------------ keys and view


def test_every_shortcut_is_in_the_help_panel(w: SegmentationWidget) -> None:
    text = w.toolbar.help.value
    for s in SHORTCUTS:
        if "instance" in s.action:
            continue
        assert s.help.split(":")[0] in text
    assert w.toolbar.help.layout.display == "none"
    press(w, "?")
    assert w.toolbar.help.layout.display == "block"


def test_tool_and_label_keys(w: SegmentationWidget) -> None:
    for key, tool in [("c", "click"), ("b", "brush"), ("e", "eraser"), ("p", "polygon"), (" ", "pan"), ("a", "auto")]:
        press(w, key)
        assert w.tool == tool and "gt-tool-active" in w.toolbar.tool_buttons[tool]._dom_classes
    press(w, "h")
    assert w.tool == "pan"
    press(w, "3")
    assert w.label == "bird" and "gt-label-selected" in w.toolbar.label_chips[2]._dom_classes
    press(w, "9")  # no 9th label: ignored
    assert w.label == "bird"
    r = w.brush_radius
    press(w, "]")
    assert w.brush_radius > r
    press(w, "[")
    assert w.brush_radius == r
    w.toolbar.label_chips[0].click()  # the toolbar drives the same state
    assert w.label == "cat"


def test_zoomed_canvas_clicks_hit_the_right_image_pixels(w: SegmentationWidget) -> None:
    w.zoom(3.0, center=(60, 45))
    w.pan(-17, 9)
    assert w.view.scale == pytest.approx(30.0)
    x, y = w.canvas_to_image(400, 300)
    w.tool = "brush"
    w.brush_radius = 1
    fire(w, "mouse_down", 400, 300)
    fire(w, "mouse_up", 400, 300)
    assert np.array_equal(w.label_map == 1, _disc((60, 80), x, y, 1))
    assert w.image_to_canvas(x, y) == pytest.approx((400, 300))


def test_wheel_zooms_at_the_mouse_and_f_fits(w: SegmentationWidget) -> None:
    fire(w, "mouse_move", 200, 100)
    before = w.canvas_to_image(200, 100)
    fire(w, "mouse_wheel", 0, -300)
    assert w.view.scale > 10.0
    assert w.canvas_to_image(200, 100) == pytest.approx(before)
    press(w, "f")
    assert w.view.scale == pytest.approx(10.0)


def test_pan_tool_drags_the_view(w: SegmentationWidget) -> None:
    w.zoom(2.0)
    press(w, "h")
    ox = w.view.offset_x
    fire(w, "mouse_down", 300, 300)
    fire(w, "mouse_move", 340, 310)
    fire(w, "mouse_up", 340, 310)
    assert w.view.offset_x == pytest.approx(ox + 40) and not w.label_map.any()


# ------------------------------------------------------------------------------------------ instance mode


def test_instance_bookkeeping_and_answer(seg: BoxSegmenter) -> None:
    w = SegmentationWidget(_image(), LABELS, mode="instance", segmenter=seg)
    w.auto_segment(EXTREME)  # no instance selected: creates instance 1 (cat)
    assert [(i.label, i.color) for i in w.instances] == [("cat", PALETTE[0])]
    w.auto_segment([(50, 40), (50, 50), (45, 45), (60, 45)])  # missed part: same instance
    assert len(w.instances) == 1
    k = w.add_instance("dog")
    assert k == 2 and w.selected_instance == 2
    w.brush([(70, 10)], radius=3)
    press(w, "1")  # choosing another label deselects: the next paint starts a new cat
    w.brush([(5, 50)], radius=2)
    assert [i.label for i in w.instances] == ["cat", "dog", "cat"]
    assert [i.color for i in w.instances] == [PALETTE[0], PALETTE[1], PALETTE[2]]
    imap = w.instance_map
    assert imap[20, 20] == 1 and imap[45, 50] == 1 and imap[10, 70] == 2 and imap[50, 5] == 3
    masks = w.instance_masks
    assert len(masks) == 3 and masks[1].sum() == _disc((60, 80), 70, 10, 3).sum()
    lm = w.label_map
    assert lm[10, 70] == 2 and lm[50, 5] == 1
    w.relabel_instance(2, "bird")
    assert w.instances[1].label == "bird" and w.instances[1].color == PALETTE[1] and w.label_map[10, 70] == 3
    w.delete_instance(1)
    assert [i.label for i in w.instances] == ["bird", "cat"]
    assert w.instance_ids == [2, 3], "the others keep their ids after a delete (finding 7)"
    # the written form stays compact: value k is instances[k - 1]
    assert w.instance_map[20, 20] == 0 and w.instance_map[10, 70] == 1 and w.instance_map[50, 5] == 2
    ans = w.to_answer()
    assert ans["instances"] == [{"color": PALETTE[1], "label": "bird"}, {"color": PALETTE[2], "label": "cat"}]
    back = formats.read_answer(ans)
    assert isinstance(back, formats.InstanceResult) and np.array_equal(back.instance_map, w.instance_map)
    snap_map, snap_instances = w.snapshot()
    assert np.array_equal(snap_map, w.instance_map) and snap_instances == w.instances
    w.undo()  # undelete
    assert [i.label for i in w.instances] == ["cat", "bird", "cat"] and w.instance_map[20, 20] == 1
    assert w.instance_ids == [1, 2, 3]
    press(w, ".")
    assert w.selected_instance == 1 or w.selected_instance == 2
    w.select_instance(2)
    press(w, "Delete")
    assert len(w.instances) == 2 and w.instance_ids == [1, 3]
    with pytest.raises(WidgetError, match=r"no instance 2: the instances are \[1, 3\]"):
        w.select_instance(2)
    w.close()


def test_instance_add_key_and_list_widget(seg: BoxSegmenter) -> None:
    w = SegmentationWidget(_image(), LABELS, mode="instance", segmenter=seg)
    press(w, "2")
    press(w, "i")
    press(w, "i")
    assert [i.label for i in w.instances] == ["dog", "dog"] and w.selected_instance == 2
    assert list(w.toolbar.instance_chips) == [1, 2]
    w.toolbar.instance_chips[1].click()
    assert w.selected_instance == 1
    w.close()


# ------------------------------------------------------------------------------------------ outputs


def test_answer_worker_response_and_consolidated_png(w: SegmentationWidget) -> None:
    w.auto_segment(EXTREME)
    w.label = "bird"
    w.brush([(60, 50)], radius=4)
    ans = w.to_answer()
    assert set(ans["labelMappings"]) == {"cat", "bird"} and "initialValueModified" not in ans
    back = formats.read_answer(ans, LABELS)
    assert np.array_equal(back.label_map, w.label_map)  # type: ignore[union-attr]
    resp = w.to_worker_response()
    content = resp["answers"][0]["answerContent"]
    assert set(content) == {"crowd-semantic-segmentation"} and resp["answers"][0]["workerId"] == "local-notebook"
    png = w.consolidated_png()
    assert np.array_equal(formats.read_consolidated_png(png), w.label_map)
    img = Image.open(io.BytesIO(png))
    assert img.mode == "P" and tuple(img.getpalette()[3:6]) == hex_to_rgb(PALETTE[0])


def test_initial_value_round_trip_semantic(w: SegmentationWidget, seg: BoxSegmenter) -> None:
    w.auto_segment(EXTREME)
    w.label = "dog"
    w.polygon([(40, 40), (70, 40), (70, 55)])
    for value in (w.to_answer(), w.to_worker_response(), formats.read_answer(w.to_answer(), LABELS), w.label_map):
        w2 = SegmentationWidget(_image(), LABELS, segmenter=seg, initial_value=value)
        assert np.array_equal(w2.label_map, w.label_map)
        assert w2.to_answer()["initialValueModified"] is False and w2.history == (0, 0)
        w2.brush([(2, 2)], radius=1)
        assert w2.to_answer()["initialValueModified"] is True
        w2.close()


def test_initial_value_attribute_with_src(w: SegmentationWidget, seg: BoxSegmenter, tmp_path: Any) -> None:
    w.auto_segment(EXTREME)
    png = base64.b64decode(w.to_answer()["labeledImage"]["pngImageData"])
    (tmp_path / "prior.png").write_bytes(png)
    attr = {"labelMappings": {"cat": {"color": PALETTE[0]}}, "src": str(tmp_path / "prior.png")}
    w2 = SegmentationWidget(_image(), LABELS, segmenter=seg, initial_value=attr)
    assert np.array_equal(w2.label_map, w.label_map)
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    w2.load_image(_image(), initial_value={**attr, "src": data_url})
    assert np.array_equal(w2.label_map, w.label_map)
    with pytest.raises(GtWidgetError, match="another image"):
        w2.load_image(_image(30, 40), initial_value=w.to_answer())
    with pytest.raises(GtWidgetError, match="not in the given labels"):
        SegmentationWidget(_image(), ["zebra"], segmenter=seg, initial_value=w.to_answer())
    w2.close()


def test_initial_value_round_trip_instance(seg: BoxSegmenter) -> None:
    w = SegmentationWidget(_image(), LABELS, mode="instance", segmenter=seg)
    w.auto_segment(EXTREME)
    w.add_instance("dog")
    w.brush([(60, 45)], radius=6)
    w.add_instance("cat")
    w.polygon([(40, 5), (60, 5), (50, 15)])
    w2 = SegmentationWidget(_image(), LABELS, mode="instance", segmenter=seg, initial_value=w.to_answer())
    assert np.array_equal(w2.instance_map, w.instance_map) and w2.instances == w.instances
    assert w2.to_answer() == w.to_answer()
    # a semantic widget collapses it to labels
    w3 = SegmentationWidget(_image(), LABELS, segmenter=seg, initial_value=w.to_answer())
    assert np.array_equal(w3.label_map, w.label_map)
    w.close()
    w2.close()
    w3.close()


def test_observers_run_once_per_committed_edit(w: SegmentationWidget) -> None:
    calls: list[int] = []
    w.observe_changes(lambda widget: calls.append(widget.history[0]))
    w.auto_segment(EXTREME)
    w.tool = "brush"
    drag_image(w, [(50, 50), (55, 50), (60, 52)])
    w.undo()
    w.next_candidate()  # undoing the stroke made the auto-segment's mask refinable again: one more step
    assert calls == [1, 2, 1, 2]
    w.brush([(5, 5)], radius=1)
    assert w.next_candidate() == -1  # a manual edit ends the model's part: nothing to cycle, no event
    assert calls == [1, 2, 1, 2, 3]


def test_load_image_resets_and_prefetch_reuses_the_embedding(w: SegmentationWidget, seg: BoxSegmenter) -> None:
    w.brush([(5, 5)], radius=2)
    nxt = _image(40, 100)
    w.prefetch(nxt)
    assert w.wait_idle(10)
    calls = seg.set_image_calls
    w.load_image(nxt)
    assert w.wait_idle(10)
    assert seg.set_image_calls == calls  # restored from the prefetched state, not recomputed
    assert w.history == (0, 0) and not w.label_map.any() and w.label_map.shape == (40, 100)
    assert (w.canvas.width, w.canvas.height) == (900, 360)
    w.auto_segment([(20, 10), (20, 30), (10, 20), (34, 20)])
    assert (w.label_map == 1).sum() == 25 * 21


def test_lazy_default_segmenter_failure_leaves_manual_tools_working(monkeypatch: pytest.MonkeyPatch) -> None:
    import gt_widget.segment as segment

    def broken(name: str | None = None, **kw: Any) -> Any:
        raise segment.WeightsError("no weights here")

    monkeypatch.setattr(segment, "load_segmenter", broken)
    w = SegmentationWidget(_image(), LABELS)
    assert w.wait_idle(10)
    assert "no weights here" in w.status
    with pytest.raises(GtWidgetError, match="no segmentation model"):
        w.auto_segment(EXTREME)
    w.brush([(5, 5)], radius=2)
    assert w.label_map[5, 5] == 1
    w.close()


def test_lazy_default_segmenter_fallback_warning_reaches_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import gt_widget.segment as segment

    def fallback(name: str | None = None, **kw: Any) -> Any:
        warnings.warn("MobileSAM is unavailable (no weights); using the GrabCut fallback", RuntimeWarning, stacklevel=2)
        return BoxSegmenter()

    monkeypatch.setattr(segment, "load_segmenter", fallback)
    w = SegmentationWidget(_image(), LABELS)
    assert w.wait_idle(10)
    assert "GrabCut fallback" in w.status
    w.auto_segment(EXTREME)
    assert (w.label_map == 1).sum() == 25 * 21
    w.close()


def test_touch_draws_like_the_mouse(w: SegmentationWidget) -> None:
    w.tool = "brush"
    w.brush_radius = 2
    canvas = w.canvas._canvases[-1]
    a, b = w.image_to_canvas(10, 10), w.image_to_canvas(30, 10)
    canvas._handle_frontend_event(None, {"event": "touch_start", "touches": [{"x": a[0], "y": a[1]}]}, [])
    canvas._handle_frontend_event(None, {"event": "touch_move", "touches": [{"x": b[0], "y": b[1]}]}, [])
    canvas._handle_frontend_event(None, {"event": "touch_end", "touches": []}, [])
    assert w.history == (1, 0) and (w.label_map[10, 10:31] == 1).all()


def test_relabel_through_the_toolbar_keeps_the_selection(seg: BoxSegmenter) -> None:
    w = SegmentationWidget(_image(), LABELS, mode="instance", segmenter=seg)
    w.brush([(10, 10)], radius=3)  # instance 1, cat
    w.select_instance(1)
    w.toolbar.label_chips[2].click()  # pick the new label in the toolbar...
    assert w.selected_instance == 1 and "new 'bird' instance" in w.status
    w.toolbar.instances_row.children[-2].click()  # ...then press Relabel
    assert [i.label for i in w.instances] == ["bird"] and w.label_map[10, 10] == 3
    w.label = "dog"
    w.brush([(40, 40)], radius=3)  # another label chosen: a new instance
    assert [i.label for i in w.instances] == ["bird", "dog"] and w.selected_instance == 2
    w.close()


def test_observer_on_the_model_thread_can_call_back_without_deadlock(w: SegmentationWidget) -> None:
    seen: list[str] = []
    outcome: list[str] = []

    def observer(widget: SegmentationWidget) -> None:
        seen.append(threading.current_thread().name)
        if len(seen) == 1:  # first commit (the auto-segment, on the model thread): chain a click
            widget.corrective_click(40, 20, positive=True)
            try:
                widget.wait_idle(1)
                outcome.append("returned")
            except GtWidgetError as exc:
                outcome.append(str(exc))

    w.observe_changes(observer)
    w.auto_segment(EXTREME, wait=False)
    assert w.wait_idle(10)
    assert seen[:2] == ["gt-widget-model", "gt-widget-model"]
    assert (w.label_map == 1)[20, 40]  # the chained click ran inline
    assert len(outcome) == 1 and "wait for itself" in outcome[0]


def test_queued_requests_go_where_the_user_clicked_not_where_the_ui_is_when_they_finish() -> None:
    gate = threading.Event()
    w = SegmentationWidget(_image(), LABELS, mode="instance", segmenter=BoxSegmenter(gate=gate))
    for x, y in EXTREME:  # object 1, queued behind the embedding
        click_image(w, x, y)
    w.auto_segment([(50, 40), (50, 50), (45, 45), (60, 45)], wait=False)  # its missed part, also queued
    press(w, "i")  # the user starts a second instance before the model answered...
    press(w, "b")
    w.brush([(70, 5)], radius=2)  # ...and paints it
    gate.set()
    assert w.wait_idle(10)
    assert [i.color for i in w.instances] == [PALETTE[0], PALETTE[1]]
    imap = w.instance_map
    # the brush went to the instance the user added; both queued masks form one other instance
    assert imap[5, 70] == 1 and imap[20, 20] == 2 and imap[45, 50] == 2
    assert w.history == (4, 0)
    w.close()


def test_undoing_a_bad_click_keeps_the_mask_refinable(w: SegmentationWidget) -> None:
    box = _box((60, 80), 10, 34, 10, 30)
    w.auto_segment(EXTREME)
    w.corrective_click(20, 20, positive=False)  # made it worse
    w.undo()
    assert np.array_equal(w.label_map == 1, box)
    w.corrective_click(30, 25, positive=False)  # refines the auto-segmented mask, without the undone click
    assert np.array_equal(w.label_map == 1, box & ~_disc((60, 80), 30, 25, 3))
    assert w.editor.live_part() is not None and w.editor.live_part().clicks == [(30.0, 25.0, False)]  # type: ignore[union-attr]
    w.undo()
    w.undo()
    assert not w.label_map.any() and w.editor.live_part() is None
    w.redo()
    press(w, "n")  # the redone auto-segment's candidates can be cycled again
    assert np.array_equal(w.label_map == 1, _box((60, 80), 12, 32, 12, 28))


def test_points_stay_drawn_while_the_model_works(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipycanvas.canvas as ipc

    drawn: list[tuple[float, float]] = []
    orig = ipc.Canvas.fill_circle

    def spy(self: Any, x: float, y: float, r: float) -> None:
        drawn.append((round(x, 3), round(y, 3)))
        orig(self, x, y, r)

    monkeypatch.setattr(ipc.Canvas, "fill_circle", spy)
    gate = threading.Event()
    w = SegmentationWidget(_image(), LABELS, segmenter=BoxSegmenter(gate=gate))
    for x, y in EXTREME:
        click_image(w, x, y)
    drawn.clear()
    w.tool = "brush"  # any repaint of the interaction layer while the request waits
    expected = {tuple(round(v, 3) for v in w.image_to_canvas(x, y)) for x, y in EXTREME}
    assert expected <= set(drawn)
    gate.set()
    assert w.wait_idle(10)
    assert w.requests.pending == 0
    w.close()


# ------------------------------------------------------------------------------------------ issue 10 findings


def test_auto_segment_inside_a_labeled_object_is_its_own_undo_step(w: SegmentationWidget) -> None:
    """Finding 3: the second auto-segment changed nothing, recorded no step, and z deleted the first object."""
    w.auto_segment(EXTREME)
    w.auto_segment([(20, 14), (20, 20), (15, 17), (25, 17)])  # a patch inside it, same label
    assert w.history == (2, 0) and w.status == "nothing changed: those pixels are already 'cat'"
    w.undo()
    assert np.array_equal(w.label_map == 1, _box((60, 80), 10, 34, 10, 30))


def test_negative_click_explains_pixels_labeled_before_the_auto_segment(w: SegmentationWidget) -> None:
    """Finding 6: a negative click cannot remove pixels that had the label before; now it says why."""
    w.brush([(20, 20)], radius=4)  # cat, by hand
    w.auto_segment(EXTREME)
    w.corrective_click(20, 20, positive=False)
    assert w.label_map[20, 20] == 1
    assert "already 'cat' before this auto-segment" in w.status and "eraser" in w.status


def test_negative_click_beside_the_object_on_an_older_stroke_explains(w: SegmentationWidget) -> None:
    """Finding 6 as the browser test does it: the stroke lies outside the auto-segment's box."""
    w.brush([(50, 50)], radius=3)  # cat, by hand, beside the object (its box is x, y 10..30)
    w.auto_segment(EXTREME)
    w.corrective_click(50, 50, positive=False)
    assert w.label_map[50, 50] == 1
    assert "already 'cat' before this auto-segment" in w.status and "eraser" in w.status


def test_right_click_from_the_browser_scope_removes_from_the_last_mask(w: SegmentationWidget) -> None:
    w.auto_segment(EXTREME)
    cx, cy = w.image_to_canvas(20, 20)
    w.scope._handle(None, {"type": "pointer", "kind": "down", "x": cx, "y": cy, "button": 2, "shift": False})
    assert w.wait_idle(10)
    assert w.tool == "auto" and w.label_map[20, 20] == 0 and w.label_map[12, 12] == 1
    cx, cy = w.image_to_canvas(30, 25)
    w.scope._handle(None, {"type": "pointer", "kind": "down", "x": cx, "y": cy, "button": 0, "shift": True})
    assert w.wait_idle(10)
    assert w.label_map[25, 30] == 0 and w.history == (3, 0)


def test_keys_from_the_scope_reach_the_shortcuts_and_escape_twice_releases(w: SegmentationWidget) -> None:
    sent: list[dict[str, Any]] = []
    w.scope.send = sent.append  # type: ignore[method-assign]
    w.scope._handle(None, {"type": "key", "key": "b", "target": "widget"})
    assert w.tool == "brush"
    w.scope._handle(None, {"type": "key", "key": "Escape", "target": "widget"})
    assert not sent and "Escape again" in w.status
    w.scope._handle(None, {"type": "key", "key": "Escape", "target": "widget"})
    assert sent == [{"type": "release"}] and "notebook" in w.status
    w.toolbar.tool_buttons["fill"].click()  # a toolbar click gives the canvas the keys back
    assert w.tool == "fill" and sent[-1] == {"type": "focus"}


def test_instance_status_follows_relabel_select_delete(seg: BoxSegmenter) -> None:
    """Finding 7: the status line went stale after Relabel / select / Delete."""
    w = SegmentationWidget(_image(), LABELS, mode="instance", segmenter=seg)
    w.brush([(10, 10)], radius=3)
    w.label = "dog"
    w.brush([(40, 40)], radius=3)
    w.select_instance(1)
    assert w.status == "2 instance(s); instance 1 (cat) selected"
    w.relabel_instance(1, "bird")
    assert w.status == "instance 1 is now 'bird'"
    w.delete_instance(1)
    assert w.status == "instance 1 deleted; 1 instance(s); no instance selected"
    assert [c.description for c in w.toolbar.instance_chips.values()] == ["2 dog"]
    w.close()


def test_instance_ids_are_stable_across_delete_undo_and_add(seg: BoxSegmenter) -> None:
    """Finding 7: instances renumbered after a delete, so chips and messages pointed at another instance. Ids
    (chips, ``.gt-instance-<id>``, messages, the API) stay; only the written answer is compact."""
    w = SegmentationWidget(_image(), LABELS, mode="instance", segmenter=seg)
    for x in (10, 40, 70):
        press(w, "i")
        w.brush([(x, 10)], radius=3)
    assert w.instance_ids == [1, 2, 3]
    w.select_instance(1)
    press(w, "Delete")
    assert w.instance_ids == [2, 3] and list(w.toolbar.instance_chips) == [2, 3]
    assert [c.description for c in w.toolbar.instance_chips.values()] == ["2 cat", "3 cat"]
    assert "gt-instance-3" in w.toolbar.instance_chips[3]._dom_classes
    assert w.status.startswith("instance 1 deleted; 2 instance(s)")
    w.toolbar.instance_chips[3].click()
    assert w.selected_instance == 3 and w.status == "2 instance(s); instance 3 (cat) selected"
    assert "gt-label-selected" in w.toolbar.instance_chips[3]._dom_classes
    press(w, ",")  # previous instance: 2, not "position 1"
    assert w.selected_instance == 2 and "instance 2 (cat)" in w.status
    w.relabel_instance(3, "dog")
    assert w.status == "instance 3 is now 'dog'" and w.label_map[10, 70] == 2
    w.brush([(70, 40)], radius=3)  # paints the selected instance 2
    assert w.instance_map[40, 70] == 1  # written form: instance 2 is map value 1 (compact)
    assert w.to_answer()["instances"] == [{"color": PALETTE[1], "label": "cat"}, {"color": PALETTE[2], "label": "dog"}]
    k = w.add_instance("dog")
    assert k == 4 and w.instance_ids == [2, 3, 4], "a new instance never reuses a deleted id"
    w.undo()  # the add
    w.undo()  # the brush
    w.undo()  # the relabel
    w.undo()  # the delete: instance 1 is back with its own id, the others unchanged
    assert w.instance_ids == [1, 2, 3] and w.instance_map[10, 10] == 1
    w.redo()
    assert w.instance_ids == [2, 3]
    with pytest.raises(WidgetError, match=r"no instance 1: the instances are \[2, 3\]"):
        w.delete_instance(1)
    w.close()


def test_extreme_points_double_click_is_ignored_with_a_message(w: SegmentationWidget) -> None:
    """Finding 5: a double click placed two identical points; the object was segmented from 3."""
    click_image(w, *EXTREME[0])
    click_image(w, *EXTREME[0])
    assert "ignored" in w.status
    for x, y in EXTREME[1:]:
        click_image(w, x, y)
    assert w.wait_idle(10)
    assert np.array_equal(w.label_map == 1, _box((60, 80), 10, 34, 10, 30))


def test_closing_a_polygon_clears_its_status_and_outline(w: SegmentationWidget) -> None:
    """Finding 4: the outline, rubber band and 'polygon: N vertices' stayed after closing."""
    press(w, "p")
    for x, y in [(5, 5), (30, 5), (15, 25)]:
        click_image(w, x, y)
    assert w.status.startswith("polygon: 3 vertices")
    press(w, "Enter")
    assert w.status.startswith("polygon filled") and w.tools["polygon"].vertices == []  # type: ignore[attr-defined]
    assert w.history == (1, 0)


def test_o_cycles_fill_outline_hidden(w: SegmentationWidget) -> None:
    assert w.overlay_style == "fill+outline"
    press(w, "o")
    assert w.overlay_style == "outline"
    press(w, "o")
    assert w.overlay_style == "hidden"
    press(w, "o")
    assert w.overlay_style == "fill+outline"


def test_fill_tool_through_the_canvas(w: SegmentationWidget) -> None:
    w.polygon([(10, 10), (40, 10), (40, 40), (10, 40)])
    w.label = "dog"
    press(w, "g")
    click_image(w, 70, 50)  # the background around the square
    lm = w.label_map
    assert lm[50, 70] == 2 and lm[20, 20] == 1 and w.history == (2, 0)
