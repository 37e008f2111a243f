// Undo/redo of index-map edits, stored as patches (the old and new pixels of the boxes an edit touched), so
// memory grows with what was painted, not with the image size times the history length.
import { readBox, unionBox, writeBox } from "./raster.js";

/** @typedef {import("./raster.js").IndexMap} IndexMap */
/** @typedef {import("./raster.js").Box} Box */

/** One edit in progress: call `touch(box)` BEFORE writing pixels inside `box`. */
export class Edit {
  /** @param {IndexMap} map @param {string} name */
  constructor(map, name) {
    this.map = map;
    this.name = name;
    /** @type {{box: Box, before: Uint8Array, after: Uint8Array | null}[]} */
    this.patches = [];
    /** @type {Box | null} */
    this.box = null;
  }

  /** Save the pixels of `box` (already clipped) before they change. @param {Box | null} box */
  touch(box) {
    if (!box) return;
    this.patches.push({ box, before: readBox(this.map, box), after: null });
    this.box = unionBox(this.box, box);
  }

  /** Record the final pixels (for redo); true when anything changed. */
  finish() {
    let changed = false;
    for (const p of this.patches) {
      p.after = readBox(this.map, p.box);
      if (!changed) changed = p.after.some((v, i) => v !== p.before[i]);
    }
    return changed;
  }

  /** Restore the pixels from before the edit. */
  revert() {
    for (let i = this.patches.length - 1; i >= 0; i--) writeBox(this.map, this.patches[i].box, this.patches[i].before);
  }

  /** Put back the pixels from after the edit. */
  reapply() {
    for (const p of this.patches) writeBox(this.map, p.box, /** @type {Uint8Array} */ (p.after));
  }

  get bytes() {
    return this.patches.reduce((n, p) => n + p.before.length * 2, 0);
  }
}

/** A bounded undo/redo history of Edits. */
export class UndoStack {
  /** @param {{maxEdits?: number, maxBytes?: number}} [limits] */
  constructor({ maxEdits = 200, maxBytes = 256 * 1024 * 1024 } = {}) {
    this.maxEdits = maxEdits;
    this.maxBytes = maxBytes;
    /** @type {Edit[]} */
    this.done = [];
    /** @type {Edit[]} */
    this.undone = [];
  }

  /** Keep a finished edit (ignored when it changed nothing); clears the redo list. @param {Edit} edit */
  push(edit) {
    if (!edit.finish()) return false;
    this.done.push(edit);
    this.undone = [];
    let bytes = this.done.reduce((n, e) => n + e.bytes, 0);
    while (this.done.length > this.maxEdits || (bytes > this.maxBytes && this.done.length > 1)) {
      bytes -= /** @type {Edit} */ (this.done.shift()).bytes;
    }
    return true;
  }

  /** Undo the last edit; returns the box to redraw, or null when there is nothing to undo. */
  undo() {
    const e = this.done.pop();
    if (!e) return null;
    e.revert();
    this.undone.push(e);
    return e.box;
  }

  /** Redo the last undone edit; returns the box to redraw, or null. */
  redo() {
    const e = this.undone.pop();
    if (!e) return null;
    e.reapply();
    this.done.push(e);
    return e.box;
  }

  get canUndo() {
    return this.done.length > 0;
  }

  get canRedo() {
    return this.undone.length > 0;
  }

  clear() {
    this.done = [];
    this.undone = [];
  }
}
