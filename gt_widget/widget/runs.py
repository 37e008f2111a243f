"""Overlay pictures as palette runs: drawn by the page synchronously, without an image decode.

ipycanvas 0.14 draws every ``putImageData`` picture by loading its bytes into an ``<img>`` through a Blob URL:
the browser's resource loader and image decoder add ~10 ms per picture on an idle machine and 25-30 ms under
load (``benchmarks/README.md``, "4th click -> overlay drawn"), more than everything else between the kernel
and the screen. A palette picture (uint8 (h, w) indices through a (256, 4) RGBA palette: the overlay and the
live preview) is instead sent as its runs along rows, in the same ipycanvas ``putImageData`` command (so it
keeps ipycanvas' batching and ordering), behind a valid 1x1 transparent PNG:

    TINY_PNG | MAGIC | uint32 LE: w, h, n | palette (256 x RGBA) | n x uint32 LE run lengths | n x uint8 values

``PAGE_JS`` (run by the widget's key scope, ``scope.py``) patches ipycanvas' Canvas model in the page: a
payload with ``MAGIC`` right after the PNG's IEND is expanded into ImageData (a few thousand ``fill`` calls)
and drawn with ``drawImage`` from a scratch canvas (source-over, as the decoded PNG was); anything else goes
to ipycanvas' own decode. The kernel sends runs only after the page said the patch is in (``ready``); a page
that somehow lacks it draws the 1x1 transparent PNG, i.e. nothing, never a stalled command queue.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

MAGIC = b"GTRUNS1\x00"
"""Marks a runs payload after the PNG's IEND chunk."""


def _tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (1, 1), (0, 0, 0, 0)).save(out, "PNG")
    return out.getvalue()


TINY_PNG = _tiny_png()
"""A valid 1x1 fully transparent PNG: what a page without ``PAGE_JS`` would draw."""


def encode(index: np.ndarray, palette: np.ndarray) -> bytes:
    """Runs payload of uint8 (h, w) ``index`` through ``palette`` ((256, 4) RGBA), row-major runs."""
    flat = np.ascontiguousarray(index, np.uint8).ravel()
    h, w = index.shape
    if not flat.size:
        starts = np.zeros(0, np.int64)
    else:
        starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    lengths = np.diff(np.append(starts, flat.size)).astype("<u4")
    values = flat[starts]
    header = np.array([w, h, len(starts)], "<u4")
    pal = np.ascontiguousarray(palette, np.uint8).reshape(256, 4)
    return b"".join((TINY_PNG, MAGIC, header.tobytes(), pal.tobytes(), lengths.tobytes(), values.tobytes()))


def decode(payload: bytes) -> np.ndarray:
    """RGBA (h, w, 4) uint8 of a runs payload: what ``PAGE_JS`` puts into its ImageData (the reference)."""
    at = payload.index(MAGIC, len(TINY_PNG) - 1) + len(MAGIC)
    w, h, n = np.frombuffer(payload, "<u4", 3, at)
    pal = np.frombuffer(payload, np.uint8, 1024, at + 12).reshape(256, 4)
    lengths = np.frombuffer(payload, "<u4", int(n), at + 12 + 1024)
    values = np.frombuffer(payload, np.uint8, int(n), at + 12 + 1024 + 4 * int(n))
    return pal[np.repeat(values, lengths)].reshape(int(h), int(w), 4)


PAGE_JS = r"""
// Palette runs for ipycanvas' putImageData (gt_widget/widget/runs.py): patched once per page on the
// prototype of ipycanvas' Canvas model; anything that is not a runs payload goes to ipycanvas' own decode.
const GT_MAGIC = [71, 84, 82, 85, 78, 83, 49, 0];  // "GTRUNS1\0"
function gtRunsAt(u8) {
  // offset just past the PNG's IEND chunk when a runs payload follows it, else -1
  let p = 8;
  while (p + 12 <= u8.length) {
    const len = ((u8[p] << 24) | (u8[p + 1] << 16) | (u8[p + 2] << 8) | u8[p + 3]) >>> 0;
    const iend = u8[p + 4] === 73 && u8[p + 5] === 69 && u8[p + 6] === 78 && u8[p + 7] === 68;
    p += 12 + len;
    if (iend) break;
  }
  if (p + GT_MAGIC.length > u8.length) return -1;
  for (let i = 0; i < GT_MAGIC.length; i++) if (u8[p + i] !== GT_MAGIC[i]) return -1;
  return p + GT_MAGIC.length;
}
let gtScratch = null;
function gtDrawRuns(canvasModel, u8, at, x, y) {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const w = dv.getUint32(at, true), h = dv.getUint32(at + 4, true), n = dv.getUint32(at + 8, true);
  if (!w || !h) return;
  const pal = new Uint32Array(256);
  for (let i = 0; i < 256; i++) pal[i] = dv.getUint32(at + 12 + 4 * i, true);  // RGBA bytes, as ImageData
  const image = new ImageData(w, h);
  const px = new Uint32Array(image.data.buffer);
  const lengths = at + 12 + 1024, values = lengths + 4 * n;
  for (let i = 0, pos = 0; i < n; i++) {
    const len = dv.getUint32(lengths + 4 * i, true), c = pal[u8[values + i]];
    if (c) px.fill(c, pos, pos + len);
    pos += len;
  }
  gtScratch = gtScratch || document.createElement("canvas");
  if (gtScratch.width < w) gtScratch.width = w;
  if (gtScratch.height < h) gtScratch.height = h;
  const sctx = gtScratch.getContext("2d");
  sctx.clearRect(0, 0, w, h);
  sctx.putImageData(image, 0, 0);
  canvasModel.ctx.drawImage(gtScratch, 0, 0, w, h, x, y, w, h);  // source-over, as the decoded PNG was
}
async function gtPatchCanvas(model) {
  // true once ipycanvas' Canvas model of this page draws runs payloads
  const ref = model.get("canvas_ref");
  const wm = model.widget_manager;
  if (!ref || !wm) return false;
  let canvasModel;
  try { canvasModel = await wm.get_model(ref); } catch (e) { return false; }
  const proto = canvasModel && Object.getPrototypeOf(canvasModel);
  if (!proto || typeof proto.putImageData !== "function" || !canvasModel.ctx) return false;
  if (proto.__gtRuns) return true;
  const original = proto.putImageData;
  proto.putImageData = async function (args, buffers) {
    const b = buffers && buffers[0];
    if (b && b.byteLength !== undefined) {
      const u8 = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      const at = gtRunsAt(u8);
      if (at >= 0) return gtDrawRuns(this, u8, at, args[0], args[1]);
    }
    return original.call(this, args, buffers);
  };
  proto.__gtRuns = true;
  return true;
}
"""
"""Page side (a prefix of the key scope's ESM): ``gtPatchCanvas(model)`` with the scope's model."""
