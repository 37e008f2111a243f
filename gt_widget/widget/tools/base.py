"""The tool protocol: what one tool of the widget is (pointer handlers, key, cursor, hint, button).

A tool only *asks*: it calls the ``Host`` (the façade) to edit, segment or redraw; it never touches
ipywidgets. One module per tool; ``registry`` lists them, and the toolbar, the shortcut table and the help
are generated from that list. Coordinates: ``Pointer.x/y`` are image pixels (centres at integers),
``Pointer.cx/cy`` canvas pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from gt_widget.widget.editor import Editor
    from gt_widget.widget.render import Viewport


@dataclass(frozen=True)
class Pointer:
    """A pointer event: canvas position, image position, button (0 left, 2 right) and Shift."""

    cx: float
    cy: float
    x: float
    y: float
    button: int = 0
    shift: bool = False

    @property
    def negative(self) -> bool:
        """Right click or Shift+click: the "remove" gesture."""
        return self.button == 2 or self.shift


class Sketch(Protocol):
    """The interaction layer a tool draws its transient marks on (canvas pixels)."""

    def circle(self, cx: float, cy: float, r: float, fill: str | None = None, stroke: str | None = None) -> None:
        """A circle, filled and/or outlined."""

    def lines(self, points: Sequence[tuple[float, float]], color: str, dashed: bool = False) -> None:
        """A polyline."""

    def rect(self, x: float, y: float, w: float, h: float, fill: str | None = None, stroke: str | None = None) -> None:
        """A rectangle, filled and/or outlined."""


class Host(Protocol):
    """What tools may use: the façade (``SegmentationWidget``) implements it."""

    editor: Editor

    @property
    def view(self) -> Viewport:
        """The zoom/pan transform."""

    @property
    def brush_radius(self) -> int:
        """Brush / eraser radius in image pixels."""

    @property
    def mouse(self) -> tuple[float, float] | None:
        """Last pointer position on the canvas (None when outside)."""

    @property
    def busy(self) -> bool:
        """Whether interactive model work is queued or running."""

    def object_finished(self) -> None:
        """The object being corrected is done: say so; the next paint starts a new object (instance)."""

    def say(self, text: str) -> None:
        """Show ``text`` in the status line."""

    def draw_interaction(self) -> None:
        """Repaint the interaction layer (the tools' marks)."""

    def auto_segment(self, points: Sequence[Sequence[float]], wait: bool = True) -> object:
        """Segment the object with these 4 extreme points."""

    def preview_extreme(self, points: Sequence[Sequence[float]] | None) -> None:
        """Preview the mask of these 4 extreme points (the pointer is the 4th); None erases the preview."""

    def corrective_click(self, x: float, y: float, positive: bool = True, wait: bool = True) -> object:
        """Refine the last mask with a click."""

    def polygon(self, vertices: Sequence[Sequence[float]]) -> None:
        """Fill a polygon with the current label."""

    def fill(self, x: float, y: float) -> None:
        """Flood-fill the region at (x, y) with the current label."""

    def commit_stroke(self) -> None:
        """Commit the stroke in progress (one undo step)."""

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by canvas pixels."""


class Tool:
    """Base of every tool: class attributes describe its button, key and help; handlers do nothing."""

    name: ClassVar[str] = ""
    key: ClassVar[str] = ""
    icon: ClassVar[str] = ""
    """A Font Awesome 4 icon name (ipywidgets buttons render it)."""
    tooltip: ClassVar[str] = ""
    hint: ClassVar[str] = ""
    """The status line's instructions while the tool is active."""
    cursor: ClassVar[str] = "crosshair"
    needs_image: ClassVar[bool] = True
    """Pointer-down outside the image is refused with a message."""

    def down(self, host: Host, p: Pointer) -> None:
        """Pointer pressed."""

    def move(self, host: Host, p: Pointer) -> None:
        """Pointer moved (pressed or not)."""

    def up(self, host: Host, p: Pointer, out: bool = False) -> None:
        """Pointer released (``out``: it left the canvas)."""

    def enter(self, host: Host) -> bool:
        """Enter pressed; True when the tool used it."""
        return False

    def cancel(self, host: Host) -> bool:
        """Escape pressed: drop what is being placed; True when there was something."""
        return False

    def back(self, host: Host) -> bool:
        """Backspace: remove the last placed point; True when there was one."""
        return False

    def draw(self, host: Host, sketch: Sketch) -> None:
        """Draw the tool's transient marks."""

    def status_hint(self, host: Host) -> str:
        """The status line's instructions now (``hint`` unless the tool is in the middle of something)."""
        return self.hint

    def correcting(self, host: Host) -> bool:
        """Whether clicks now correct the last model answer (the auto tool right after an auto-segment)."""
        return False

    def finish(self, host: Host) -> bool:
        """Finish the object being worked on (Enter, Done, a label or instance choice); True if there was one."""
        return False

    def deactivate(self, host: Host) -> None:
        """Another tool was chosen: finish or drop what is in progress."""
        self.cancel(host)


class PlacingTool(Tool):
    """A tool that places points one click at a time (extreme points, polygon vertices): Escape drops them,
    Backspace removes the last one."""

    def __init__(self) -> None:
        self.placed: list[tuple[float, float]] = []

    def cancel(self, host: Host) -> bool:
        had = bool(self.placed)
        self.placed.clear()
        return had

    def back(self, host: Host) -> bool:
        if not self.placed:
            return False
        self.placed.pop()
        return True
