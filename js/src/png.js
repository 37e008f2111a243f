// PNG encode/decode and base64, dependency-free (zlib through the platform's CompressionStream, which
// browsers and Node >= 18 have). The encoder writes 8-bit RGBA exactly as given (no colour management,
// no premultiplication, unlike canvas.toDataURL), so label colours survive bit for bit.

const SIGNATURE = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10);

/** @type {Uint32Array | null} */
let crcTable = null;

/** CRC-32 (PNG's chunk checksum). @param {Uint8Array} bytes @param {number} [crc] */
export function crc32(bytes, crc = 0) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** @param {Uint8Array} data @param {"deflate"} format @param {boolean} compress */
async function pipe(data, format, compress) {
  const stream = compress ? new CompressionStream(format) : new DecompressionStream(format);
  const out = new Response(new Blob([/** @type {BlobPart} */ (data)]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

/** @param {string} type @param {Uint8Array} payload */
function chunk(type, payload) {
  const out = new Uint8Array(12 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(payload, 8);
  view.setUint32(8 + payload.length, crc32(out.subarray(4, 8 + payload.length)));
  return out;
}

/**
 * PNG bytes of 8-bit RGBA pixels (row-major, width*height*4 bytes).
 * @param {Uint8Array | Uint8ClampedArray} rgba @param {number} width @param {number} height
 * @returns {Promise<Uint8Array>}
 */
export async function encodePng(rgba, width, height) {
  if (rgba.length !== width * height * 4) {
    throw new RangeError(`expected ${width * height * 4} RGBA bytes for ${width}x${height}, got ${rgba.length}`);
  }
  const stride = width * 4;
  const raw = new Uint8Array((stride + 1) * height); // filter type 0 (None) on every row
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type 6 (RGBA), deflate, no filter method, no interlace
  const parts = [SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", await pipe(raw, "deflate", true)), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** @param {number} a @param {number} b @param {number} c */
function paeth(a, b, c) {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Decode a PNG into 8-bit RGBA. Handles every non-interlaced PNG Ground Truth or PIL writes: grey, grey+alpha,
 * RGB, RGBA and palette, bit depths 1-16 (16-bit keeps the high byte), tRNS transparency.
 * @param {Uint8Array} bytes
 * @returns {Promise<{width: number, height: number, rgba: Uint8ClampedArray}>}
 */
export async function decodePng(bytes) {
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) throw new Error("not a PNG file (bad signature)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let width = 0, height = 0, depth = 0, type = 0, interlace = 0;
  /** @type {Uint8Array | null} */
  let palette = null;
  /** @type {Uint8Array | null} */
  let trns = null;
  /** @type {Uint8Array[]} */
  const idat = [];
  while (at + 8 <= bytes.length) {
    const len = view.getUint32(at);
    const name = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const body = bytes.subarray(at + 8, at + 8 + len);
    if (name === "IHDR") {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      depth = body[8];
      type = body[9];
      interlace = body[12];
    } else if (name === "PLTE") palette = body;
    else if (name === "tRNS") trns = body;
    else if (name === "IDAT") idat.push(body);
    else if (name === "IEND") break;
    at += 12 + len;
  }
  if (!width || !height) throw new Error("PNG has no IHDR chunk");
  if (interlace) throw new Error("interlaced PNGs are not supported: re-save the image without interlacing");
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[type];
  if (!channels) throw new Error(`PNG colour type ${type} is not valid`);
  const joined = new Uint8Array(idat.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of idat) {
    joined.set(p, o);
    o += p.length;
  }
  const raw = await pipe(joined, "deflate", false);
  const bpp = Math.max(1, (channels * depth) >> 3); // bytes per complete pixel, for filtering
  const stride = Math.ceil((width * channels * depth) / 8);
  if (raw.length < (stride + 1) * height) throw new Error("PNG image data is truncated");
  const lines = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = lines.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? lines.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp] : 0;
      const b = prev[i];
      const c = i >= bpp ? prev[i - bpp] : 0;
      const v = src[i];
      cur[i] = f === 0 ? v : f === 1 ? v + a : f === 2 ? v + b : f === 3 ? v + ((a + b) >> 1) : f === 4 ? v + paeth(a, b, c) : -1;
      if (f > 4) throw new Error(`PNG row ${y} has unknown filter type ${f}`);
    }
  }
  /** sample k of row y @param {number} y @param {number} k */
  const sample = (y, k) => {
    const row = y * stride;
    if (depth === 8) return lines[row + k];
    if (depth === 16) return lines[row + 2 * k];
    const bit = k * depth;
    return (lines[row + (bit >> 3)] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  const scale = depth < 8 && type !== 3 ? 255 / ((1 << depth) - 1) : 1;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = x * channels;
      const o4 = (y * width + x) * 4;
      let r, g, b, alpha = 255;
      if (type === 3) {
        const idx = sample(y, k);
        if (!palette || idx * 3 + 2 >= palette.length) throw new Error(`PNG palette has no entry ${idx}`);
        r = palette[idx * 3];
        g = palette[idx * 3 + 1];
        b = palette[idx * 3 + 2];
        if (trns && idx < trns.length) alpha = trns[idx];
      } else if (type === 0 || type === 4) {
        const raw0 = sample(y, k);
        r = g = b = Math.round(raw0 * scale);
        if (type === 4) alpha = sample(y, k + 1);
        else if (trns && ((trns[0] << 8) | trns[1]) === (depth === 16 ? (lines[y * stride + 2 * k] << 8) | lines[y * stride + 2 * k + 1] : raw0)) alpha = 0;
      } else {
        r = sample(y, k);
        g = sample(y, k + 1);
        b = sample(y, k + 2);
        if (type === 6) alpha = sample(y, k + 3);
        else if (trns && depth === 8 && trns[1] === r && trns[3] === g && trns[5] === b) alpha = 0;
      }
      rgba[o4] = r;
      rgba[o4 + 1] = g;
      rgba[o4 + 2] = b;
      rgba[o4 + 3] = alpha;
    }
  }
  return { width, height, rgba };
}

/** Standard base64 of bytes. @param {Uint8Array} bytes */
export function bytesToBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Bytes of base64 (a data: URL prefix is ignored). @param {string} text */
export function base64ToBytes(text) {
  const s = atob(text.replace(/^data:[^,]*,/, ""));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
