// Run-length encoding of binary masks, as the preview server's /api/segment returns them.
// Format (our choice, documented in gt_widget/preview/server.py too): {"width", "height", "counts"}, counts are
// alternating run lengths over the ROW-MAJOR pixel order (y, then x), starting with a run of 0s (possibly
// of length 0). Unlike COCO's RLE, which is column-major, this matches ImageData and the index map.

/**
 * Mask bytes (0/1, row-major) of an RLE.
 * @param {{width: number, height: number, counts: readonly number[]}} rle
 * @returns {Uint8Array}
 */
export function decodeRle(rle) {
  const { width, height, counts } = rle;
  if (!Array.isArray(counts)) throw new TypeError("RLE counts must be an array of run lengths");
  const total = width * height;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`RLE run ${i} is ${n}; runs must be integers >= 0`);
    if (at + n > total) throw new RangeError(`RLE runs cover more than the ${width}x${height} = ${total} pixels`);
    if (i % 2 === 1) out.fill(1, at, at + n);
    at += n;
  }
  if (at !== total) throw new RangeError(`RLE runs cover ${at} pixels but the mask has ${width}x${height} = ${total}`);
  return out;
}

/**
 * RLE of a mask (any non-zero byte is "set").
 * @param {Uint8Array} mask @param {number} width @param {number} height
 * @returns {{width: number, height: number, counts: number[]}}
 */
export function encodeRle(mask, width, height) {
  if (mask.length !== width * height) throw new RangeError(`mask has ${mask.length} pixels, expected ${width * height}`);
  const counts = [];
  let current = 0;
  let run = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i] ? 1 : 0;
    if (v === current) run++;
    else {
      counts.push(run);
      current = v;
      run = 1;
    }
  }
  counts.push(run);
  return { width, height, counts };
}
