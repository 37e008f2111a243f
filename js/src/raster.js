// Painting on an index map, without antialiasing, so the submitted PNG holds exact label colours.
// Conventions: an IndexMap is {width, height, data: Uint8Array(width*height)} row-major; value 0 = unpainted
// (BACKGROUND), k = label k (semantic) or instance k (instance mode). Coordinates are (x, y) pixels of the
// original image with (0, 0) the CENTRE of the top-left pixel: pixel (i, j) is painted when its centre lies
// inside the shape. Every operation returns the box it may have changed ({x0, y0, x1, y1}, inclusive) or null.

/** @typedef {{width: number, height: number, data: Uint8Array}} IndexMap */
/** @typedef {{x0: number, y0: number, x1: number, y1: number}} Box */

/** A zeroed map. @param {number} width @param {number} height @returns {IndexMap} */
export function createIndexMap(width, height) {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`image size must be positive integers, got ${width}x${height}`);
  }
  return { width, height, data: new Uint8Array(width * height) };
}

/** Clip a box to the map; null when empty. @param {IndexMap} map @param {Box} b @returns {Box | null} */
export function clipBox(map, b) {
  const x0 = Math.max(0, Math.ceil(b.x0));
  const y0 = Math.max(0, Math.ceil(b.y0));
  const x1 = Math.min(map.width - 1, Math.floor(b.x1));
  const y1 = Math.min(map.height - 1, Math.floor(b.y1));
  return x0 > x1 || y0 > y1 ? null : { x0, y0, x1, y1 };
}

/** Smallest box holding both (either may be null). @param {Box | null} a @param {Box | null} b */
export function unionBox(a, b) {
  if (!a) return b;
  if (!b) return a;
  return { x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) };
}

/**
 * Box a brush segment may touch (before clipping).
 * @param {number} x0 @param {number} y0 @param {number} x1 @param {number} y1 @param {number} radius
 * @returns {Box}
 */
export function segmentBox(x0, y0, x1, y1, radius) {
  return { x0: Math.min(x0, x1) - radius, y0: Math.min(y0, y1) - radius, x1: Math.max(x0, x1) + radius, y1: Math.max(y0, y1) + radius };
}

/**
 * Paint a brush stroke segment: every pixel whose centre is within `radius` of the segment (x0,y0)-(x1,y1)
 * (a capsule; a dot when both ends coincide). Consecutive segments of a stroke share ends, so no gaps.
 * @param {IndexMap} map @param {number} x0 @param {number} y0 @param {number} x1 @param {number} y1
 * @param {number} radius @param {number} value 0 erases
 * @returns {Box | null}
 */
export function paintSegment(map, x0, y0, x1, y1, radius, value) {
  const box = clipBox(map, segmentBox(x0, y0, x1, y1, radius));
  if (!box) return null;
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len2 = dx * dx + dy * dy;
  const r2 = radius * radius;
  const { width, data } = map;
  for (let y = box.y0; y <= box.y1; y++) {
    for (let x = box.x0; x <= box.x1; x++) {
      let t = len2 > 0 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = x - (x0 + t * dx);
      const ey = y - (y0 + t * dy);
      if (ex * ex + ey * ey <= r2) data[y * width + x] = value;
    }
  }
  return box;
}

/**
 * Fill a polygon (even-odd rule, pixel centres): vertices are (x, y) pairs; at least 3 are needed.
 * @param {IndexMap} map @param {ReadonlyArray<readonly [number, number]>} points @param {number} value
 * @returns {Box | null}
 */
export function fillPolygon(map, points, value) {
  if (points.length < 3) return null;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const box = clipBox(map, { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) });
  if (!box) return null;
  const n = points.length;
  const { width, data } = map;
  /** @type {number[]} */
  const crossings = [];
  for (let y = box.y0; y <= box.y1; y++) {
    crossings.length = 0;
    for (let i = 0; i < n; i++) {
      const [ax, ay] = points[i];
      const [bx, by] = points[(i + 1) % n];
      // half-open rule: an edge counts when y is in [min(ay,by), max(ay,by)) so shared vertices count once
      if ((ay <= y && by > y) || (by <= y && ay > y)) crossings.push(ax + ((y - ay) * (bx - ax)) / (by - ay));
    }
    crossings.sort((a, b) => a - b);
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      const from = Math.max(box.x0, Math.ceil(crossings[k]));
      const to = Math.min(box.x1, Math.ceil(crossings[k + 1]) - 1); // centre x < right crossing
      for (let x = from; x <= to; x++) data[y * width + x] = value;
    }
  }
  return box;
}

/**
 * Flood fill (4-connected) the region of equal value that holds pixel (x, y) with `value`.
 * @param {IndexMap} map @param {number} x @param {number} y @param {number} value
 * @returns {Box | null}
 */
export function floodFill(map, x, y, value) {
  const { width, height, data } = map;
  x = Math.round(x);
  y = Math.round(y);
  if (x < 0 || y < 0 || x >= width || y >= height) return null;
  const target = data[y * width + x];
  if (target === value) return null;
  let box = { x0: x, y0: y, x1: x, y1: y };
  const stack = [y * width + x];
  data[y * width + x] = value;
  while (stack.length) {
    const p = /** @type {number} */ (stack.pop());
    const px = p % width;
    const py = (p - px) / width;
    if (px < box.x0) box.x0 = px;
    if (px > box.x1) box.x1 = px;
    if (py < box.y0) box.y0 = py;
    if (py > box.y1) box.y1 = py;
    if (px > 0 && data[p - 1] === target) { data[p - 1] = value; stack.push(p - 1); }
    if (px < width - 1 && data[p + 1] === target) { data[p + 1] = value; stack.push(p + 1); }
    if (py > 0 && data[p - width] === target) { data[p - width] = value; stack.push(p - width); }
    if (py < height - 1 && data[p + width] === target) { data[p + width] = value; stack.push(p + width); }
  }
  return box;
}

/**
 * Paint `value` wherever `mask` (0/1 bytes, same size as the map) is set.
 * @param {IndexMap} map @param {Uint8Array} mask @param {number} value
 * @returns {Box | null}
 */
export function applyMask(map, mask, value) {
  if (mask.length !== map.data.length) {
    throw new RangeError(`mask has ${mask.length} pixels but the image has ${map.data.length}`);
  }
  const { width, data } = map;
  /** @type {Box | null} */
  let box = null;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    data[i] = value;
    const x = i % width;
    const y = (i - x) / width;
    if (!box) box = { x0: x, y0: y, x1: x, y1: y };
    else {
      if (x < box.x0) box.x0 = x;
      if (x > box.x1) box.x1 = x;
      if (y > box.y1) box.y1 = y;
    }
  }
  return box;
}

/** Copy of a map's box. @param {IndexMap} map @param {Box} b @returns {Uint8Array} */
export function readBox(map, b) {
  const w = b.x1 - b.x0 + 1;
  const out = new Uint8Array(w * (b.y1 - b.y0 + 1));
  for (let y = b.y0; y <= b.y1; y++) out.set(map.data.subarray(y * map.width + b.x0, y * map.width + b.x1 + 1), (y - b.y0) * w);
  return out;
}

/** Write back what readBox returned. @param {IndexMap} map @param {Box} b @param {Uint8Array} pixels */
export function writeBox(map, b, pixels) {
  const w = b.x1 - b.x0 + 1;
  for (let y = b.y0; y <= b.y1; y++) map.data.set(pixels.subarray((y - b.y0) * w, (y - b.y0 + 1) * w), y * map.width + b.x0);
}

/**
 * Set every pixel with value `from` to `to` (e.g. delete an instance).
 * @param {IndexMap} map @param {number} from @param {number} to
 * @returns {Box | null}
 */
export function replaceValue(map, from, to) {
  const mask = new Uint8Array(map.data.length);
  for (let i = 0; i < mask.length; i++) mask[i] = map.data[i] === from ? 1 : 0;
  return applyMask(map, mask, to);
}

/**
 * RGBA pixels of an index map: index k > 0 gets colours[k - 1] (opaque); 0 and undefined indices are
 * transparent (our choice for unpainted pixels, as gt_widget.groundtruth.formats; reference §1.6).
 * @param {IndexMap} map @param {readonly string[]} colours "#rrggbb"
 * @param {Box | null} [box] only this box (into a full-size buffer `into`)
 * @param {Uint8ClampedArray} [into]
 */
export function indexToRgba(map, colours, box = null, into = undefined) {
  const lut = new Uint8Array(256 * 4);
  colours.forEach((c, i) => {
    const s = c.replace(/^#/, "");
    lut.set([parseInt(s.slice(0, 2), 16), parseInt(s.slice(2, 4), 16), parseInt(s.slice(4, 6), 16), 255], (i + 1) * 4);
  });
  const out = into ?? new Uint8ClampedArray(map.data.length * 4);
  const b = box ?? { x0: 0, y0: 0, x1: map.width - 1, y1: map.height - 1 };
  for (let y = b.y0; y <= b.y1; y++) {
    for (let x = b.x0; x <= b.x1; x++) {
      const i = y * map.width + x;
      const k = map.data[i] * 4;
      out[i * 4] = lut[k];
      out[i * 4 + 1] = lut[k + 1];
      out[i * 4 + 2] = lut[k + 2];
      out[i * 4 + 3] = lut[k + 3];
    }
  }
  return out;
}

/**
 * Index map of RGBA pixels: an opaque-enough pixel (alpha > 0) whose RGB equals colours[k] gets k + 1; others 0
 * (mirrors gt_widget.groundtruth.formats.colors_to_indices).
 * A null colour is skipped (its value is never produced).
 * @param {Uint8Array | Uint8ClampedArray} rgba @param {number} width @param {number} height
 * @param {readonly (string | null)[]} colours
 * @returns {IndexMap}
 */
export function rgbaToIndex(rgba, width, height, colours) {
  const map = createIndexMap(width, height);
  /** @type {Map<number, number>} */
  const keys = new Map();
  colours.forEach((c, i) => {
    if (!c) return;
    const s = c.replace(/^#/, "");
    const key = parseInt(s.slice(0, 6), 16);
    if (!keys.has(key)) keys.set(key, i + 1);
  });
  for (let i = 0; i < map.data.length; i++) {
    if (rgba[i * 4 + 3] === 0) continue;
    const key = (rgba[i * 4] << 16) | (rgba[i * 4 + 1] << 8) | rgba[i * 4 + 2];
    const k = keys.get(key);
    if (k !== undefined) map.data[i] = k;
  }
  return map;
}
