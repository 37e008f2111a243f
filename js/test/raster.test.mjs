import assert from "node:assert/strict";
import { test } from "node:test";
import {
  applyMask,
  createIndexMap,
  fillPolygon,
  floodFill,
  indexToRgba,
  paintSegment,
  replaceValue,
  rgbaToIndex,
} from "../src/raster.js";

/** @param {{width:number,height:number,data:Uint8Array}} m */
const rows = (m) => Array.from({ length: m.height }, (_, y) => Array.from(m.data.subarray(y * m.width, (y + 1) * m.width)).join(""));
const count = (m, v) => m.data.reduce((n, x) => n + (x === v ? 1 : 0), 0);

test("a brush dot paints exactly the pixels whose centres are within the radius", () => {
  const m = createIndexMap(7, 7);
  const box = paintSegment(m, 3, 3, 3, 3, 1.5, 2);
  assert.deepEqual(rows(m), ["0000000", "0000000", "0022200", "0022200", "0022200", "0000000", "0000000"]);
  assert.deepEqual(box, { x0: 2, y0: 2, x1: 4, y1: 4 });
  // radius 2: the 4-neighbours at distance 2 are in, the corners at sqrt(8) are not
  const n = createIndexMap(7, 7);
  paintSegment(n, 3, 3, 3, 3, 2, 1);
  assert.equal(count(n, 1), 13);
});

test("a brush stroke is a gap-free capsule with only the painted value (no antialiasing)", () => {
  const m = createIndexMap(40, 20);
  paintSegment(m, 2, 10, 37, 10, 2, 5);
  for (let x = 2; x <= 37; x++) for (const y of [8, 9, 10, 11, 12]) assert.equal(m.data[y * 40 + x], 5, `(${x},${y})`);
  assert.deepEqual(new Set(m.data), new Set([0, 5]));
  // a diagonal stroke of radius 0.5 still connects (every row between the ends is hit)
  const d = createIndexMap(20, 20);
  paintSegment(d, 0, 0, 19, 19, 0.5, 1);
  for (let i = 0; i < 20; i++) assert.equal(d.data[i * 20 + i], 1);
});

test("eraser (value 0) clears, and strokes are clipped at the image border", () => {
  const m = createIndexMap(10, 10);
  m.data.fill(3);
  const box = paintSegment(m, -5, -5, 0, 0, 1, 0);
  assert.deepEqual(box, { x0: 0, y0: 0, x1: 1, y1: 1 });
  assert.equal(m.data[0], 0);
  assert.equal(m.data[1], 0);
  assert.equal(m.data[11], 3); // (1,1) is sqrt(2) > 1 from (0,0)
  assert.equal(paintSegment(m, -20, -20, -10, -10, 2, 1), null);
});

test("polygon fill uses pixel centres and the even-odd rule", () => {
  const m = createIndexMap(10, 10);
  // square with corners on pixel edges: covers centres 2..6 in x and y
  fillPolygon(m, [[1.5, 1.5], [6.5, 1.5], [6.5, 6.5], [1.5, 6.5]], 1);
  assert.equal(count(m, 1), 25);
  assert.equal(m.data[2 * 10 + 2], 1);
  assert.equal(m.data[1 * 10 + 1], 0);
  assert.equal(m.data[6 * 10 + 6], 1);
  assert.equal(m.data[7 * 10 + 7], 0);
  // triangle: area 50 -> about 50 pixels
  const t = createIndexMap(20, 20);
  fillPolygon(t, [[0, 0], [10, 0], [0, 10]], 2);
  assert.ok(Math.abs(count(t, 2) - 55) <= 11, String(count(t, 2)));
  // self-intersecting "bow tie" with a hole by even-odd: a pentagram's centre stays empty
  const s = createIndexMap(41, 41);
  const star = [0, 2, 4, 1, 3].map((k) => {
    const a = -Math.PI / 2 + (k * 2 * Math.PI) / 5;
    return [20 + 19 * Math.cos(a), 20 + 19 * Math.sin(a)];
  });
  fillPolygon(s, star, 1);
  assert.equal(s.data[20 * 41 + 20], 0, "the centre of a pentagram is outside by even-odd");
  assert.equal(s.data[3 * 41 + 20], 1, "the top spike is inside");
  assert.equal(fillPolygon(s, [[0, 0], [5, 5]], 1), null);
});

test("flood fill fills the 4-connected region only", () => {
  const m = createIndexMap(6, 5);
  // a wall of 1s splits the map
  for (let y = 0; y < 5; y++) m.data[y * 6 + 3] = 1;
  const box = floodFill(m, 0, 0, 2);
  assert.deepEqual(box, { x0: 0, y0: 0, x1: 2, y1: 4 });
  assert.equal(count(m, 2), 15);
  assert.equal(m.data[5], 0);
  assert.equal(floodFill(m, 0, 0, 2), null, "same value: nothing to do");
  // diagonal gap does not leak (4-connectivity)
  const d = createIndexMap(3, 3);
  d.data.set([0, 1, 0, 1, 0, 0, 0, 0, 0]);
  floodFill(d, 0, 0, 9);
  assert.deepEqual(Array.from(d.data), [9, 1, 0, 1, 0, 0, 0, 0, 0]);
});

test("applyMask and replaceValue", () => {
  const m = createIndexMap(4, 2);
  const box = applyMask(m, Uint8Array.of(0, 1, 1, 0, 0, 0, 1, 0), 7);
  assert.deepEqual(Array.from(m.data), [0, 7, 7, 0, 0, 0, 7, 0]);
  assert.deepEqual(box, { x0: 1, y0: 0, x1: 2, y1: 1 });
  replaceValue(m, 7, 3);
  assert.deepEqual(Array.from(m.data), [0, 3, 3, 0, 0, 0, 3, 0]);
  assert.throws(() => applyMask(m, new Uint8Array(3), 1), /3 pixels/);
});

test("index map <-> RGBA: exact colours, unpainted transparent, round trip", () => {
  const m = createIndexMap(3, 1);
  m.data.set([0, 1, 2]);
  const rgba = indexToRgba(m, ["#2ca02c", "#1f77b4"]);
  assert.deepEqual(Array.from(rgba), [0, 0, 0, 0, 0x2c, 0xa0, 0x2c, 255, 0x1f, 0x77, 0xb4, 255]);
  const back = rgbaToIndex(rgba, 3, 1, ["#2ca02c", "#1f77b4"]);
  assert.deepEqual(Array.from(back.data), [0, 1, 2]);
  // unknown colours and transparent pixels read as 0; null colours are skipped
  const other = Uint8ClampedArray.of(1, 2, 3, 255, 0x2c, 0xa0, 0x2c, 0, 0x1f, 0x77, 0xb4, 255);
  assert.deepEqual(Array.from(rgbaToIndex(other, 3, 1, [null, "#1f77b4"]).data), [0, 0, 2]);
});
