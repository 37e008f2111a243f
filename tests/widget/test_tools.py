"""Each tool against a small fake host (no ipywidgets): what it asks the host / editor to do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from gt_widget.segment.base import Prediction
from gt_widget.widget import keys
from gt_widget.widget.editor import Editor, ModelRequest
from gt_widget.widget.render import Viewport
from gt_widget.widget.tools import TOOL_CLASSES, TOOLS, Pointer, make_tools
from gt_widget.widget.tools.auto import CORRECTING_HINT, AutoTool
from gt_widget.widget.tools.fill import FillTool
from gt_widget.widget.tools.polygon import PolygonTool


class FakeHost:
    """Implements ``tools.base.Host`` by recording calls; edits go to a real Editor."""

    def __init__(self) -> None:
        self.editor = Editor(["cat", "dog"])
        self.editor.load(self.editor.new_state((40, 50), None, []))
        self.view = Viewport.for_image(50, 40, 500, 400)  # 10 canvas px per image px
        self.brush_radius = 2
        self.mouse: tuple[float, float] | None = None
        self.said: list[str] = []
        self.calls: list[tuple[str, Any]] = []
        self.busy = False
        self.model = True
        """Whether ``auto_segment`` answers at once with the extreme points' box (else: stays busy)."""

    def object_finished(self) -> None:
        self.calls.append(("finished", None))
        self.editor.finish_object()

    def say(self, text: str) -> None:
        self.said.append(text)

    def draw_interaction(self) -> None:
        self.calls.append(("draw", None))

    def auto_segment(self, points: Sequence[Sequence[float]], wait: bool = True) -> object:
        self.calls.append(("auto", list(points)))
        if not self.model:
            self.busy = True
            return None
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        mask = np.zeros(self.editor.state.shape, bool)
        mask[round(min(ys)) : round(max(ys)) + 1, round(min(xs)) : round(max(xs)) + 1] = True
        ext = [(float(x), float(y)) for x, y in points]
        self.editor.apply_prediction(Prediction(mask, 0.9), ModelRequest(self.editor.capture_target(), ext, []))
        return None

    def corrective_click(self, x: float, y: float, positive: bool = True, wait: bool = True) -> object:
        self.calls.append(("click", (x, y, positive)))
        return None

    def preview_extreme(self, points: Sequence[Sequence[float]] | None) -> None:
        self.calls.append(("preview", None if points is None else list(points)))

    def polygon(self, vertices: Sequence[Sequence[float]]) -> None:
        self.calls.append(("polygon", list(vertices)))
        self.editor.polygon([(float(x), float(y)) for x, y in vertices])

    def fill(self, x: float, y: float) -> None:
        self.calls.append(("fill", (x, y)))
        self.editor.fill(x, y)

    def commit_stroke(self) -> None:
        self.editor.finish_stroke()

    def pan(self, dx: float, dy: float) -> None:
        self.calls.append(("pan", (dx, dy)))


def at(host: FakeHost, x: float, y: float, button: int = 0, shift: bool = False) -> Pointer:
    cx, cy = host.view.to_canvas(x, y)
    return Pointer(cx, cy, x, y, button, shift)


class Recorder:
    def __init__(self) -> None:
        self.shapes: list[tuple[str, tuple[Any, ...]]] = []

    def circle(self, cx: float, cy: float, r: float, fill: str | None = None, stroke: str | None = None) -> None:
        self.shapes.append(("circle", (cx, cy)))

    def lines(self, points: Sequence[tuple[float, float]], color: str, dashed: bool = False) -> None:
        self.shapes.append(("lines", tuple(points)))

    def rect(self, x: float, y: float, w: float, h: float, fill: str | None = None, stroke: str | None = None) -> None:
        self.shapes.append(("rect", (x, y, w, h)))


def test_registry_drives_keys_and_help() -> None:
    assert TOOLS == ("auto", "click", "brush", "eraser", "polygon", "fill", "proposal", "pan")
    for cls in TOOL_CLASSES:
        assert keys.lookup(cls.key) == (f"tool:{cls.name}", cls.key)
        assert cls.icon and cls.tooltip and cls.hint
    assert keys.lookup("g") == ("tool:fill", "g")
    assert "Fill" in keys.help_html()
    assert set(make_tools()) == set(TOOLS)


def test_fill_tool_fills_the_clicked_region_with_the_current_label() -> None:
    host = FakeHost()
    host.editor.state.map[:, 25] = 2  # a dog wall splits the image
    host.editor.label = "cat"
    FillTool().down(host, at(host, 10, 10))
    m = host.editor.state.map
    assert (m[:, :25] == 1).all() and (m[:, 25] == 2).all() and not m[:, 26:].any()
    assert len(host.editor.state.undo_stack) == 1


def test_extreme_points_are_guarded_against_double_clicks_and_shown() -> None:
    host = FakeHost()
    tool = AutoTool()
    tool.down(host, at(host, 20, 5))
    tool.down(host, at(host, 20.2, 5.1))  # a double click: 2 canvas px away
    assert len(tool.points) == 1 and "ignored" in host.said[-1]
    tool.down(host, at(host, 20, 30))
    sketch = Recorder()
    tool.draw(host, sketch)
    assert [k for k, _ in sketch.shapes] == ["rect", "circle", "circle"]  # the implied box after 2 points
    tool.down(host, at(host, 8, 18))
    tool.down(host, at(host, 35, 18))
    assert host.calls[-1][0] == "auto" and len(host.calls[-1][1]) == 4 and tool.points == []


OBJECT = [(20.0, 5.0), (20.0, 30.0), (8.0, 18.0), (35.0, 18.0)]


def segmented(host: FakeHost) -> AutoTool:
    """An auto tool that has just auto-segmented ``OBJECT``."""
    tool = AutoTool()
    for x, y in OBJECT:
        tool.down(host, at(host, x, y))
    assert host.calls[-1] == ("auto", OBJECT)
    host.calls.clear()
    return tool


def test_after_auto_segment_left_click_adds_right_and_shift_click_remove() -> None:
    """Corrective clicks like CVAT / SAM's demo: no mode switch straight after an auto-segment."""
    host = FakeHost()
    tool = segmented(host)
    assert tool.correcting(host) and tool.status_hint(host) == CORRECTING_HINT
    tool.down(host, at(host, 40, 20))
    tool.down(host, at(host, 10, 10, button=2))
    tool.down(host, at(host, 12, 10, shift=True))
    assert host.calls == [("click", (40, 20, True)), ("click", (10, 10, False)), ("click", (12, 10, False))]
    assert tool.points == []


def test_clicks_while_the_answer_is_on_its_way_correct_it() -> None:
    host = FakeHost()
    host.model = False
    tool = segmented(host)
    assert host.busy and tool.correcting(host)
    tool.down(host, at(host, 40, 20))
    assert host.calls == [("click", (40, 20, True))]
    host.busy = False  # the model found nothing: no live mask, so the next click is an extreme point again
    tool.down(host, at(host, 41, 21))
    assert tool.points == [(41, 21)]


@pytest.mark.parametrize("how", ["enter", "finish", "deactivate"])
def test_finishing_the_object_makes_left_clicks_extreme_points_again(how: str) -> None:
    host = FakeHost()
    tool = segmented(host)
    assert {"enter": tool.enter, "finish": tool.finish, "deactivate": tool.deactivate}[how](host) in (True, None)
    assert ("finished", None) in host.calls and not tool.correcting(host)
    assert tool.status_hint(host) == AutoTool.hint
    host.calls.clear()
    tool.down(host, at(host, 40, 20))
    assert tool.points == [(40, 20)] and not [c for c in host.calls if c[0] == "click"]
    assert tool.finish(host) is False  # nothing left to finish


def test_right_click_without_an_object_explains_instead_of_placing_a_point() -> None:
    host = FakeHost()
    tool = AutoTool()
    tool.down(host, at(host, 10, 10, button=2))
    assert tool.points == [] and not host.calls and "auto-segment an object first" in host.said[-1]
    tool.down(host, at(host, 10, 10))
    tool.down(host, at(host, 30, 30, shift=True))
    assert tool.points == [(10, 10)] and "finish placing the 4 extreme points" in host.said[-1]


def test_another_edit_or_undo_past_the_object_ends_the_corrections() -> None:
    host = FakeHost()
    tool = segmented(host)
    host.editor.brush([(45.0, 35.0)], 1.0)  # any other edit: the mask is no longer live
    assert not tool.correcting(host)
    host.editor.undo()  # back to the object: its mask is live again, still the same object
    assert tool.correcting(host)
    host.editor.undo()  # undoing the auto-segment itself: nothing to correct
    assert not tool.correcting(host)
    tool.down(host, at(host, 40, 20))
    assert tool.points == [(40, 20)]


def test_instance_mode_finishing_starts_a_new_instance_next() -> None:
    host = FakeHost()
    host.editor = Editor(["cat", "dog"], mode="instance")
    host.editor.load(host.editor.new_state((40, 50), None, []))
    tool = segmented(host)
    assert host.editor.state.ids == [1] and host.editor.state.selected == 1
    tool.enter(host)
    assert host.editor.state.selected == 0
    for x, y in [(45.0, 31.0), (45.0, 38.0), (41.0, 35.0), (49.0, 35.0)]:
        tool.down(host, at(host, x, y))
    assert host.editor.state.ids == [1, 2], "the next object is a new instance"


def test_click_tool_left_adds_right_removes_x_flips() -> None:
    host = FakeHost()
    tool = make_tools()["click"]
    tool.down(host, at(host, 5, 5))
    tool.down(host, at(host, 6, 5, button=2))
    tool.positive = False  # type: ignore[attr-defined]
    tool.down(host, at(host, 7, 5))
    assert [c[1][2] for c in host.calls] == [True, False, False]


def test_polygon_close_forgets_its_outline() -> None:
    """Finding 4: a closed polygon left its outline and rubber band on screen."""
    host = FakeHost()
    tool = PolygonTool()
    for x, y in [(5, 5), (30, 5), (15, 25)]:
        tool.down(host, at(host, x, y))
    host.mouse = host.view.to_canvas(20, 20)
    sketch = Recorder()
    tool.draw(host, sketch)
    assert sketch.shapes
    assert tool.enter(host)
    assert tool.vertices == [] and host.editor.state.map[10, 15] == 1
    sketch = Recorder()
    tool.draw(host, sketch)
    assert sketch.shapes == []  # nothing left to draw


def test_brush_and_eraser_stroke_is_one_step() -> None:
    host = FakeHost()
    tools = make_tools()
    tools["brush"].down(host, at(host, 5, 5))
    tools["brush"].move(host, at(host, 15, 5))
    tools["brush"].up(host, at(host, 15, 5))
    assert (host.editor.state.map[5, 5:16] == 1).all() and len(host.editor.state.undo_stack) == 1
    tools["eraser"].down(host, at(host, 10, 5))
    tools["eraser"].up(host, at(host, 10, 5))
    assert host.editor.state.map[5, 10] == 0 and len(host.editor.state.undo_stack) == 2


def test_pan_tool_moves_by_canvas_pixels() -> None:
    host = FakeHost()
    tool = make_tools()["pan"]
    tool.down(host, Pointer(100, 100, 0, 0))
    tool.move(host, Pointer(110, 95, 0, 0))
    tool.up(host, Pointer(110, 95, 0, 0))
    assert host.calls == [("pan", (10, -5))]


@pytest.mark.parametrize("name", list(TOOLS))
def test_every_tool_survives_cancel_back_enter_without_state(name: str) -> None:
    host = FakeHost()
    tool = make_tools()[name]
    assert tool.cancel(host) is False and tool.back(host) is False and tool.enter(host) is False
    tool.draw(host, Recorder())
    assert not np.any(host.editor.state.map)


def test_auto_tool_previews_the_pointer_as_the_4th_point_only_after_3() -> None:
    host, tool = FakeHost(), make_tools()["auto"]
    for i, (x, y) in enumerate([(20, 5), (20, 30), (5, 18)]):
        tool.move(host, at(host, x, y + 1))
        assert not [c for c in host.calls if c[0] == "preview"], f"no preview with {i} points"
        tool.down(host, at(host, x, y))
    tool.move(host, at(host, 40, 18))
    assert host.calls[-1] == ("preview", [(20, 5), (20, 30), (5, 18), (40, 18)])
    tool.up(host, at(host, 60, 18), out=True)
    assert host.calls[-1] == ("preview", None)
