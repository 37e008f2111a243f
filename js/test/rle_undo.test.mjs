import assert from "node:assert/strict";
import { test } from "node:test";
import { createIndexMap, paintSegment, segmentBox, clipBox } from "../src/raster.js";
import { decodeRle, encodeRle } from "../src/rle.js";
import { Edit, UndoStack } from "../src/undo.js";

test("RLE: row-major runs starting with zeros", () => {
  const mask = decodeRle({ width: 3, height: 2, counts: [1, 2, 2, 1] });
  assert.deepEqual(Array.from(mask), [0, 1, 1, 0, 0, 1]);
  assert.deepEqual(decodeRle({ width: 2, height: 1, counts: [0, 2] }), Uint8Array.of(1, 1));
  const random = Uint8Array.from({ length: 997 }, (_, i) => ((i * i) % 7 < 3 ? 1 : 0));
  assert.deepEqual(decodeRle(encodeRle(random, 997, 1)), random);
});

test("RLE: wrong totals and bad runs are refused with a clear message", () => {
  assert.throws(() => decodeRle({ width: 3, height: 2, counts: [1, 2] }), /cover 3 pixels but the mask has 3x2 = 6/);
  assert.throws(() => decodeRle({ width: 3, height: 2, counts: [7] }), /more than/);
  assert.throws(() => decodeRle({ width: 1, height: 1, counts: [-1, 2] }), /integers >= 0/);
  assert.throws(() => decodeRle({ width: 1, height: 1, counts: "1" }), /array/);
});

/** paint through an Edit, as the element does */
function stroke(map, pts, r, v) {
  const e = new Edit(map, "brush");
  for (let i = 1; i < pts.length; i++) {
    const [a, b] = [pts[i - 1], pts[i]];
    e.touch(clipBox(map, segmentBox(a[0], a[1], b[0], b[1], r)));
    paintSegment(map, a[0], a[1], b[0], b[1], r, v);
  }
  return e;
}

test("undo restores the exact pixels of overlapping strokes; redo re-applies them", () => {
  const m = createIndexMap(30, 30);
  const u = new UndoStack();
  const s0 = m.data.slice();
  assert.ok(u.push(stroke(m, [[5, 5], [20, 20], [5, 25]], 3, 1)));
  const s1 = m.data.slice();
  assert.ok(u.push(stroke(m, [[0, 10], [29, 10], [10, 0]], 2, 2)));
  const s2 = m.data.slice();
  assert.deepEqual(u.undo(), { x0: 0, y0: 0, x1: 29, y1: 12 });
  assert.deepEqual(m.data, s1);
  u.undo();
  assert.deepEqual(m.data, s0);
  assert.equal(u.undo(), null);
  u.redo();
  assert.deepEqual(m.data, s1);
  u.redo();
  assert.deepEqual(m.data, s2);
  assert.equal(u.redo(), null);
});

test("a new edit clears redo; no-op edits are not recorded; the history is bounded", () => {
  const m = createIndexMap(10, 10);
  const u = new UndoStack({ maxEdits: 3 });
  u.push(stroke(m, [[1, 1], [1, 1]], 1, 1));
  u.undo();
  assert.ok(u.canRedo);
  u.push(stroke(m, [[5, 5], [5, 5]], 1, 2));
  assert.ok(!u.canRedo);
  assert.equal(u.push(stroke(m, [[5, 5], [5, 5]], 1, 2)), false, "painting the same value again changes nothing");
  for (let i = 0; i < 5; i++) u.push(stroke(m, [[i, 0], [i, 0]], 0.5, 3 + i));
  assert.equal(u.done.length, 3);
  const limited = new UndoStack({ maxBytes: 10 });
  limited.push(stroke(m, [[2, 2], [8, 8]], 2, 9));
  limited.push(stroke(m, [[2, 8], [8, 2]], 2, 8));
  assert.equal(limited.done.length, 1, "keeps at least the last edit");
});
