// The painting tools of the segmentation stand-ins (brush, eraser, fill, polygon): each turns pointer
// presses into one undoable Edit of the index map. They know nothing of the DOM: the element hands them a
// ToolContext. Coordinates are (x, y) image pixels, (0, 0) the centre of the top-left pixel.
import { clipBox, fillPolygon, floodFill, paintSegment, segmentBox } from "./raster.js";
import { Edit } from "./undo.js";

/** @typedef {import("./raster.js").IndexMap} IndexMap */
/** @typedef {import("./raster.js").Box} Box */

/**
 * What a tool may use: the map, the value to paint (0 with a message when nothing is selected), and the
 * element's commit (push one undo step and repaint) and repaint.
 * @typedef {{map: IndexMap, paintValue: () => number, commit: (edit: Edit, box: Box | null) => void,
 *   redraw: (box: Box) => void, message: (text: string, error?: boolean) => void}} ToolContext
 */

/** Brush (paints the selected value) or eraser (clears any value): one drag = one undo step. */
export class StrokeTool {
  /** @param {"brush" | "eraser"} kind */
  constructor(kind) {
    this.kind = kind;
    this.size = 12;
    /** @type {Edit | null} */
    this._edit = null;
    this._value = 0;
    /** @type {[number, number] | null} */
    this._last = null;
  }

  get active() {
    return this._edit !== null;
  }

  /** Start a stroke; false when there is nothing to paint with. @param {ToolContext} ctx @param {number} x @param {number} y */
  down(ctx, x, y) {
    const value = this.kind === "eraser" ? 0 : ctx.paintValue();
    if (this.kind === "brush" && !value) return false;
    this._edit = new Edit(ctx.map, this.kind);
    this._value = value;
    this._last = [x, y];
    this.move(ctx, x, y);
    return true;
  }

  /** Paint the segment from the last point to (x, y). @param {ToolContext} ctx @param {number} x @param {number} y */
  move(ctx, x, y) {
    if (!this._edit || !this._last) return;
    const r = this.size / 2;
    const [lx, ly] = this._last;
    const box = clipBox(ctx.map, segmentBox(lx, ly, x, y, r));
    this._edit.touch(box);
    paintSegment(ctx.map, lx, ly, x, y, r, this._value);
    this._last = [x, y];
    if (box) ctx.redraw(box);
  }

  /** End the stroke at (x, y) and commit it. @param {ToolContext} ctx @param {number} x @param {number} y */
  up(ctx, x, y) {
    if (!this._edit) return;
    this.move(ctx, x, y);
    const edit = this._edit;
    this._edit = null;
    this._last = null;
    ctx.commit(edit, null);
  }
}

/** Fill: the connected region of equal value around the pressed pixel takes the selected value. */
export class FillTool {
  /** @param {ToolContext} ctx @param {number} x @param {number} y */
  down(ctx, x, y) {
    const value = ctx.paintValue();
    if (!value) return false;
    const edit = new Edit(ctx.map, "fill");
    edit.touch({ x0: 0, y0: 0, x1: ctx.map.width - 1, y1: ctx.map.height - 1 });
    ctx.commit(edit, floodFill(ctx.map, x, y, value));
    return false;
  }
}

/** Polygon: presses add corners; a press near the first corner (or close()) fills it. */
export class PolygonTool {
  constructor() {
    /** @type {[number, number][]} */
    this.points = [];
  }

  /**
   * @param {ToolContext} ctx @param {number} x @param {number} y
   * @param {number} near how close (image pixels) to the first corner a press closes the polygon
   */
  down(ctx, x, y, near) {
    if (this.points.length >= 3) {
      const [fx, fy] = this.points[0];
      if (Math.hypot(x - fx, y - fy) <= near) {
        this.close(ctx);
        return false;
      }
    }
    this.points.push([x, y]);
    return false;
  }

  /** Fill the polygon with the selected value (one undo step). @param {ToolContext} ctx */
  close(ctx) {
    if (this.points.length < 3) {
      ctx.message("a polygon needs at least 3 corners", true);
      return;
    }
    const value = ctx.paintValue();
    if (!value) return;
    const pts = this.points;
    this.points = [];
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const edit = new Edit(ctx.map, "polygon");
    edit.touch(clipBox(ctx.map, { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) }));
    ctx.commit(edit, fillPolygon(ctx.map, pts, value));
  }

  cancel() {
    this.points = [];
  }
}
