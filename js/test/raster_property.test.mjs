// Property tests: the fast rasterisers agree with brute force over random shapes (seeded, reproducible).
import assert from "node:assert/strict";
import { test } from "node:test";
import { createIndexMap, fillPolygon, paintSegment } from "../src/raster.js";

/** A small seeded generator (mulberry32), so failures reproduce. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** even-odd point-in-polygon by ray casting, with the same half-open rule on y */
function inside(px, py, pts) {
  let c = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if (yi <= py !== yj <= py) {
      const x = xi + ((py - yi) * (xj - xi)) / (yj - yi);
      if (px < x) c = !c;
    }
  }
  return c;
}

test("fillPolygon equals per-pixel ray casting on 200 random polygons", () => {
  const rand = rng(7);
  for (let k = 0; k < 200; k++) {
    const w = 8 + Math.floor(rand() * 40);
    const h = 8 + Math.floor(rand() * 40);
    const n = 3 + Math.floor(rand() * 7);
    const pts = Array.from({ length: n }, () => [rand() * (w + 10) - 5, rand() * (h + 10) - 5]);
    const m = createIndexMap(w, h);
    fillPolygon(m, pts, 1);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        assert.equal(m.data[y * w + x], inside(x, y, pts) ? 1 : 0, `polygon ${k} ${JSON.stringify(pts)} at (${x},${y})`);
      }
    }
  }
});

test("paintSegment equals per-pixel distance to the segment on 200 random strokes", () => {
  const rand = rng(11);
  for (let k = 0; k < 200; k++) {
    const w = 10 + Math.floor(rand() * 40);
    const h = 10 + Math.floor(rand() * 40);
    const [x0, y0, x1, y1] = [rand() * w, rand() * h, rand() * w, rand() * h];
    const r = 0.5 + rand() * 6;
    const m = createIndexMap(w, h);
    paintSegment(m, x0, y0, x1, y1, r, 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const dx = x1 - x0;
        const dy = y1 - y0;
        const len2 = dx * dx + dy * dy;
        const t = len2 ? Math.max(0, Math.min(1, ((x - x0) * dx + (y - y0) * dy) / len2)) : 0;
        const d = Math.hypot(x - (x0 + t * dx), y - (y0 + t * dy));
        assert.equal(m.data[y * w + x], d <= r ? 4 : 0, `stroke ${k} at (${x},${y}), distance ${d}, radius ${r}`);
      }
    }
  }
});
