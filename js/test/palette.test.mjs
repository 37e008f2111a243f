import assert from "node:assert/strict";
import { test } from "node:test";
import { PALETTE, hexToRgb, labelColor, rgbToHex } from "../src/palette.js";

test("Ground Truth's first colours and 255 distinct non-white entries", () => {
  assert.deepEqual(PALETTE.slice(0, 5), ["#2ca02c", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd"]);
  assert.equal(PALETTE.length, 255);
  assert.equal(new Set(PALETTE).size, 255);
  assert.ok(!PALETTE.includes("#ffffff"));
  assert.throws(() => labelColor(255), /at most 255/);
});

test("hex helpers", () => {
  assert.deepEqual(hexToRgb("#2ca02c"), [44, 160, 44]);
  assert.deepEqual(hexToRgb("2a2"), [0x22, 0xaa, 0x22]);
  assert.equal(rgbToHex([44, 160, 44]), "#2ca02c");
  assert.throws(() => hexToRgb("#12"), /#rrggbb/);
});
