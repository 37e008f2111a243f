import assert from "node:assert/strict";
import { test } from "node:test";
import { base64ToBytes, bytesToBase64, crc32, decodePng, encodePng } from "../src/png.js";

test("crc32 matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

test("encode then decode gives the same RGBA bytes", async () => {
  const w = 37, h = 11;
  const rgba = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 7919) % 256;
  const png = await encodePng(rgba, w, h);
  assert.deepEqual(Array.from(png.subarray(0, 8)), [137, 80, 78, 71, 13, 10, 26, 10]);
  const back = await decodePng(png);
  assert.equal(back.width, w);
  assert.equal(back.height, h);
  assert.deepEqual(Array.from(back.rgba), Array.from(rgba));
  await assert.rejects(encodePng(rgba, w, h + 1), /RGBA bytes/);
});

test("every chunk carries a valid CRC", async () => {
  const png = await encodePng(new Uint8ClampedArray(4 * 4 * 4), 4, 4);
  const view = new DataView(png.buffer, png.byteOffset);
  let at = 8;
  const names = [];
  while (at < png.length) {
    const len = view.getUint32(at);
    names.push(String.fromCharCode(...png.subarray(at + 4, at + 8)));
    assert.equal(view.getUint32(at + 8 + len), crc32(png.subarray(at + 4, at + 8 + len)));
    at += 12 + len;
  }
  assert.deepEqual(names, ["IHDR", "IDAT", "IEND"]);
});

test("decodes PNGs written by PIL: palette (consolidated format), grey, RGB with filters", async () => {
  // 3x2 palette PNG (PIL packs it at 2 bits per pixel), palette white/#2ca02c/#1f77b4, tRNS: index 0
  // transparent, pixels [[0,1,2],[2,1,0]]
  const pal = base64ToBytes(
    "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACAgMAAADgGo6JAAAACVBMVEX///8soCwfd7Qv9J/pAAAAAXRSTlMAQObYZgAAAAxJREFUeJxjkGCYAAAA3ACpbOfAIwAAAABJRU5ErkJggg==",
  );
  const p = await decodePng(pal);
  assert.equal(p.width, 3);
  const px = (i) => Array.from(p.rgba.subarray(i * 4, i * 4 + 4));
  assert.deepEqual(px(0), [255, 255, 255, 0]);
  assert.deepEqual(px(1), [0x2c, 0xa0, 0x2c, 255]);
  assert.deepEqual(px(2), [0x1f, 0x77, 0xb4, 255]);
  assert.deepEqual(px(3), [0x1f, 0x77, 0xb4, 255]);
  assert.deepEqual(px(5), [255, 255, 255, 0]);
  // 1-bit greyscale 8x1: 10110000
  const g = await decodePng(base64ToBytes("iVBORw0KGgoAAAANSUhEUgAAAAgAAAABAQAAAADLe9LuAAAACklEQVR4nGPYAAAAsgCxVQroKgAAAABJRU5ErkJggg=="));
  assert.deepEqual(Array.from({ length: 8 }, (_, i) => g.rgba[i * 4]), [255, 0, 255, 255, 0, 0, 0, 0]);
  // 5x4 RGB, PIL optimize=True (adaptive row filters): values are (i * 13) % 256
  const rgb = await decodePng(
    base64ToBytes("iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAKklEQVR42mNk4JVSRwIshw8fVldXV1d/BQEshw8ffvUKIQjhv3r1CioIACG6H75nRt30AAAAAElFTkSuQmCC"),
  );
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(Array.from(rgb.rgba.subarray(i * 4, i * 4 + 4)), [(i * 39) % 256, (i * 39 + 13) % 256, (i * 39 + 26) % 256, 255]);
  }
  await assert.rejects(decodePng(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), /not a PNG/);
});

test("base64 round trip over large buffers", () => {
  const bytes = new Uint8Array(100_000).map((_, i) => (i * 31) % 256);
  const text = bytesToBase64(bytes);
  assert.equal(text, Buffer.from(bytes).toString("base64"));
  assert.deepEqual(base64ToBytes("data:image/png;base64," + text), bytes);
});
