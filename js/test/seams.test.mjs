// The seams of the segmentation stand-ins, without a browser: tools (registry, keys, corrective-click
// rules), view (fit zoom, pointer -> image pixels), label model, segment client (first then refined
// answer, over a real HTTP server on 127.0.0.1) and answer builder (decoded back to pixels).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import { buildAnswer } from "../src/answer.js";
import { LabelModel } from "../src/label-panel.js";
import { PALETTE } from "../src/palette.js";
import { base64ToBytes, decodePng } from "../src/png.js";
import { createIndexMap } from "../src/raster.js";
import { encodeRle } from "../src/rle.js";
import { segmentStaged } from "../src/segment-client.js";
import { CORRECTIVE_HINT, TOOLS, autoSegmentAction, clickPolarity, helpLines, toolForKey } from "../src/tools.js";
import { MAX_FIT_ZOOM, fitZoom, toImagePoint } from "../src/view.js";

test("tools: one registry gives unique keys, the key lookup and the help", () => {
  const keys = TOOLS.map((t) => t.key.toLowerCase());
  assert.equal(new Set(keys).size, keys.length);
  for (const t of TOOLS) assert.equal(toolForKey(t.key.toLowerCase()), t.id);
  assert.equal(toolForKey("q"), null);
  assert.equal(toolForKey("1"), null, "digits choose labels, never tools");
  const help = helpLines().join("\n");
  for (const t of TOOLS) assert.ok(help.includes(t.hint));
  assert.match(help, /right click \(or Shift\+click\) removes/);
  assert.match(CORRECTIVE_HINT, /Left click adds/);
});

test("tools: left click adds, right click / Shift / Alt / Ctrl+click remove, other buttons are ignored", () => {
  assert.equal(clickPolarity({ button: 0 }), true);
  assert.equal(clickPolarity({ button: 2 }), false);
  assert.equal(clickPolarity({ button: 0, shiftKey: true }), false);
  assert.equal(clickPolarity({ button: 0, altKey: true }), false);
  assert.equal(clickPolarity({ button: 0, ctrlKey: true }), false);
  assert.equal(clickPolarity({ button: 1 }), null);
});

test("tools: straight after a result clicks correct it; otherwise left clicks place extreme points", () => {
  const after = { hasResult: true, pointsPlaced: 0 };
  assert.deepEqual(autoSegmentAction({ button: 0 }, after), { kind: "correct", positive: true });
  assert.deepEqual(autoSegmentAction({ button: 2 }, after), { kind: "correct", positive: false });
  assert.deepEqual(autoSegmentAction({ button: 0, shiftKey: true }, after), { kind: "correct", positive: false });
  const fresh = { hasResult: false, pointsPlaced: 0 };
  assert.deepEqual(autoSegmentAction({ button: 0 }, fresh), { kind: "point" });
  assert.deepEqual(autoSegmentAction({ button: 2 }, fresh), { kind: "need-result" });
  assert.deepEqual(autoSegmentAction({ button: 0 }, { hasResult: false, pointsPlaced: 2 }), { kind: "point" });
  assert.deepEqual(autoSegmentAction({ button: 2 }, { hasResult: false, pointsPlaced: 2 }), { kind: "ignore" });
  assert.deepEqual(autoSegmentAction({ button: 1 }, after), { kind: "ignore" });
});

test("view: images fit the area both ways, small ones enlarged up to MAX_FIT_ZOOM", () => {
  assert.equal(fitZoom(100, 50, 800, 600), 8); // 8x by width and by height would be 12: capped at 8
  assert.equal(fitZoom(400, 300, 800, 600), 2);
  assert.equal(fitZoom(2000, 1000, 1000, 300), 0.3); // height binds
  assert.equal(fitZoom(10, 10, 0, 0), 1); // not laid out yet
  assert.equal(fitZoom(10, 10, 10_000, 10_000), MAX_FIT_ZOOM);
  // pointer -> image pixels: (0, 0) is the centre of the top-left pixel, at any zoom
  const rect = { left: 10, top: 20, width: 200, height: 100 };
  assert.deepEqual(toImagePoint(10 + 1, 20 + 1, rect, 100, 50), [0, 0]);
  assert.deepEqual(toImagePoint(210, 120, rect, 100, 50), [99.5, 49.5]);
});

test("label model: palette colours, renumbering on relabel, instances and what paints", () => {
  const sem = new LabelModel("semantic");
  assert.match(String(sem.paintValue()), /no labels/);
  assert.equal(sem.setLabels(["cat", "dog"]), null);
  assert.deepEqual(sem.valueColors(), [PALETTE[0], PALETTE[1]]);
  const lut = sem.setLabels(["dog", "cow"]);
  assert.ok(lut);
  assert.deepEqual([lut[1], lut[2]], [0, 1], "cat's pixels become unpainted, dog's move to value 1");
  assert.ok(sem.selectLabel(1));
  assert.equal(sem.paintValue(), 2);
  assert.equal(sem.selectLabel(5), false);

  const inst = new LabelModel("instance");
  inst.setLabels(["stone", "llama"]);
  assert.match(String(inst.paintValue()), /add instance/);
  assert.equal(inst.addInstance("llama"), 1);
  assert.equal(inst.addInstance("llama"), 2);
  assert.equal(inst.addInstance("stone"), 3);
  assert.equal(inst.paintValue(), 3);
  assert.equal(new Set(inst.valueColors()).size, 3);
  inst.selectLabel(1);
  assert.equal(inst.paintValue(), 2, "choosing a label selects its newest instance");
  assert.throws(() => inst.addInstance("cow"), /no label "cow"/);
});

test("answer: semantic lists painted labels; instance keeps every instance added, painted or not", async () => {
  const map = createIndexMap(4, 3);
  map.data[1] = 2;
  map.data[5] = 2;
  const sem = await buildAnswer({ mode: "semantic", map, labels: ["cat", "dog"], colors: ["#2ca02c", "#1f77b4"] });
  assert.deepEqual(sem.labelMappings, { dog: { color: "#1f77b4" } });
  assert.deepEqual(sem.inputImageProperties, { height: 3, width: 4 });
  const png = await decodePng(base64ToBytes(/** @type {any} */ (sem.labeledImage).pngImageData));
  assert.deepEqual(Array.from(png.rgba.slice(4, 8)), [0x1f, 0x77, 0xb4, 255]);
  assert.deepEqual(Array.from(png.rgba.slice(0, 4)), [0, 0, 0, 0], "unpainted pixels are transparent");
  const modified = await buildAnswer({ mode: "semantic", map, labels: ["cat", "dog"], colors: ["#2ca02c", "#1f77b4"], initialData: map.data.slice() });
  assert.equal(modified.initialValueModified, false);

  const instances = [
    { label: "llama", color: "#2ca02c" },
    { label: "llama", color: "#1f77b4" },
    { label: "stone", color: "#ff7f0e" },
  ];
  const inst = await buildAnswer({ mode: "instance", map, labels: ["llama", "stone"], colors: instances.map((x) => x.color), instances });
  assert.deepEqual(inst.instances, instances, "instance 1 and 3 were never painted and are still in the answer");
  assert.equal("labelMappings" in inst, false);
});

/** A stand-in for the preview server's two routes on 127.0.0.1 (same JSON as gt_widget/preview/segmenting.py). */
async function withServer(/** @type {(url: string, seen: any[]) => Promise<void>} */ body, { refine = true, stale = false } = {}) {
  /** @type {any[]} */
  const seen = [];
  const server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      const request = JSON.parse(data);
      seen.push([req.url, request]);
      const mask = new Uint8Array(6);
      let reply;
      if (req.url === "/tok/api/segment") {
        mask[0] = 1;
        reply = { width: 3, height: 2, counts: encodeRle(mask, 3, 2).counts, score: 0.5, segmenter: "x", refine: refine ? 7 : null };
      } else if (req.url === "/tok/api/segment/refined") {
        if (seen.filter((s) => s[0] === req.url).length === 1) reply = { pending: true };
        else if (stale) reply = { stale: true };
        else {
          mask.fill(1, 0, 4);
          reply = { width: 3, height: 2, counts: encodeRle(mask, 3, 2).counts, score: 0.9, segmenter: "x" };
        }
      } else {
        res.writeHead(403, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: "needs its token" }));
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(reply));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(undefined)));
  const port = /** @type {any} */ (server.address()).port;
  try {
    await body(`http://127.0.0.1:${port}/tok/api/segment`, seen);
  } finally {
    server.close();
  }
}

test("segment client: the first answer, then (after a pending poll) the refined one, on the token's URLs", async () => {
  await withServer(async (url, seen) => {
    const got = [];
    for await (const a of segmentStaged(url, { src: "s", points: [[0, 0]], clicks: [] })) got.push(a);
    assert.deepEqual(got.map((a) => [a.stage, a.final, Array.from(a.mask)]), [
      ["first", false, [1, 0, 0, 0, 0, 0]],
      ["refined", true, [1, 1, 1, 1, 0, 0]],
    ]);
    assert.deepEqual(seen.map((s) => s[0]), ["/tok/api/segment", "/tok/api/segment/refined", "/tok/api/segment/refined"]);
    assert.deepEqual(seen[1][1], { refine: 7 });
  });
});

test("segment client: a final first answer ends it; a stale refinement ends quietly; errors say why", async () => {
  await withServer(async (url) => {
    const got = [];
    for await (const a of segmentStaged(url, { src: "s", points: [], clicks: [] })) got.push([a.stage, a.final]);
    assert.deepEqual(got, [["first", true]]);
  }, { refine: false });
  await withServer(async (url) => {
    const got = [];
    for await (const a of segmentStaged(url, { src: "s", points: [], clicks: [] })) got.push(a.stage);
    assert.deepEqual(got, ["first"]);
  }, { stale: true });
  await withServer(async (url) => {
    await assert.rejects(async () => {
      for await (const _ of segmentStaged(url.replace("/tok/", "/bad/"), { src: "s", points: [], clicks: [] }));
    }, /needs its token/);
  });
  await assert.rejects(async () => {
    for await (const _ of segmentStaged("http://127.0.0.1:9/x/api/segment", { src: "s", points: [], clicks: [] }));
  }, /does not answer/);
});

test("initial-value: semantic colours, instance list, and clear errors", async () => {
  const { parseInitialValue } = await import("../src/initial-value.js");
  assert.equal(parseInitialValue(null, "semantic"), null);
  assert.equal(parseInitialValue("  ", "instance"), null);
  assert.deepEqual(parseInitialValue('{"labelMappings": {"Cat": {"color": "#2CA02C"}}, "src": "u"}', "semantic"), {
    mode: "semantic",
    colors: { Cat: "#2ca02c" },
    src: "u",
  });
  assert.deepEqual(parseInitialValue('{"instances": [{"label": "Cat", "color": "#1F77B4"}]}', "instance"), {
    mode: "instance",
    instances: [{ label: "Cat", color: "#1f77b4" }],
    src: "",
  });
  assert.throws(() => parseInitialValue('{"labelMappings": ', "semantic"), /not valid JSON.*to_json \| escape/);
  assert.throws(() => parseInitialValue("3", "semantic"), /must be a JSON object/);
});

test("paint tools: a stroke, a fill and a polygon are one undo step each; nothing selected paints nothing", async () => {
  const { FillTool, PolygonTool, StrokeTool } = await import("../src/paint-tools.js");
  const { UndoStack } = await import("../src/undo.js");
  const map = createIndexMap(20, 10);
  const undo = new UndoStack();
  /** @type {string[]} */
  const messages = [];
  let value = 2;
  const ctx = {
    map,
    paintValue: () => value,
    commit: (/** @type {any} */ edit) => undo.push(edit),
    redraw: () => {},
    message: (/** @type {string} */ t) => messages.push(t),
  };
  const brush = new StrokeTool("brush");
  brush.size = 3;
  assert.equal(brush.down(ctx, 2, 2), true);
  brush.move(ctx, 8, 2);
  brush.up(ctx, 8, 2);
  assert.equal(map.data[2 * 20 + 5], 2);
  assert.equal(map.data[5 * 20 + 5], 0);
  assert.equal(undo.done.length, 1);

  new FillTool().down(ctx, 15, 8); // the unpainted region around (15, 8): everything but the stroke
  assert.equal(map.data[8 * 20 + 15], 2);
  assert.equal(undo.done.length, 2);
  undo.undo();
  assert.equal(map.data[8 * 20 + 15], 0);

  const poly = new PolygonTool();
  value = 1;
  poly.down(ctx, 10, 4, 1);
  poly.down(ctx, 14, 4, 1);
  poly.close(ctx);
  assert.match(messages.at(-1) ?? "", /at least 3 corners/);
  poly.down(ctx, 14, 8, 1);
  poly.down(ctx, 10.2, 4.2, 1); // near the first corner: closes
  assert.equal(poly.points.length, 0);
  assert.equal(map.data[6 * 20 + 13], 1);
  assert.equal(undo.done.length, 2);

  value = 0; // nothing selected: the brush refuses, the eraser still works
  assert.equal(brush.down(ctx, 1, 1), false);
  const eraser = new StrokeTool("eraser");
  eraser.size = 3;
  assert.equal(eraser.down(ctx, 5, 2), true);
  eraser.up(ctx, 5, 2);
  assert.equal(map.data[2 * 20 + 5], 0);
});
