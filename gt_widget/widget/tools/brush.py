"""Brush and eraser: drag to paint the current label (overwriting others) or to erase."""

from __future__ import annotations

from gt_widget.widget.tools.base import Host, Pointer, Sketch, Tool


class BrushTool(Tool):
    """One drag (pointer down to up) = one undo step."""

    name = "brush"
    key = "b"
    icon = "paint-brush"
    tooltip = "Brush: drag to paint ([ and ] size) (b)"
    hint = "Brush: drag to paint (overwrites other labels); [ and ] change the size."
    cursor = "none"
    needs_image = False
    erase = False

    def down(self, host: Host, p: Pointer) -> None:
        host.editor.begin_stroke(p.x, p.y, float(host.brush_radius), erase=self.erase)

    def move(self, host: Host, p: Pointer) -> None:
        if host.editor.stroking:
            host.editor.stroke_to(p.x, p.y)
        host.draw_interaction()

    def up(self, host: Host, p: Pointer, out: bool = False) -> None:
        if host.editor.stroking:
            if not out:
                host.editor.stroke_to(p.x, p.y)
            host.commit_stroke()
        if out:
            host.draw_interaction()

    def deactivate(self, host: Host) -> None:
        if host.editor.stroking:
            host.commit_stroke()

    def draw(self, host: Host, sketch: Sketch) -> None:
        mouse = host.mouse
        if mouse is None:
            return
        color = "white" if self.erase else host.editor.paint_color()
        sketch.circle(mouse[0], mouse[1], max(1.0, host.brush_radius * host.view.scale), stroke=color)


class EraserTool(BrushTool):
    """Drag to set pixels back to BACKGROUND."""

    name = "eraser"
    key = "e"
    icon = "eraser"
    tooltip = "Eraser: drag to erase (e)"
    hint = "Eraser: drag to erase."
    erase = True
