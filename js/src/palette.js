// Ground Truth's label colours, identical to gt_widget/palette.py (a pytest compares the two lists).
// BACKGROUND is #ffffff; label (or instance) i, 0-based, takes PALETTE[i]. Facts: reference §1.5.
// Choice (as the Python side): the observed 10 colours, then the rest of d3 category20, then
// deterministic golden-angle hues, 255 colours in all (index 0 of an 8-bit PNG is BACKGROUND).

/** @type {string} */
export const BACKGROUND_HEX = "#ffffff";
export const MAX_LABELS = 255;

const OBSERVED = [
  "#2ca02c", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#ff9896",
];
const CATEGORY20_REST = [
  "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5",
  "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];

/** Python's round(): halves go to the even neighbour. @param {number} v */
function roundHalfEven(v) {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** colorsys.hsv_to_rgb, transcribed. @param {number} h @param {number} s @param {number} v */
function hsvToRgb(h, s, v) {
  if (s === 0) return [v, v, v];
  let i = Math.trunc(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  i %= 6;
  return [
    [v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q],
  ][i];
}

/** @param {number[]} rgb @returns {string} */
export function rgbToHex(rgb) {
  return "#" + rgb.slice(0, 3).map((c) => c.toString(16).padStart(2, "0")).join("");
}

/** "#2ca02c" / "2ca02c" / "#2a2" -> [44, 160, 44]. @param {string} color @returns {[number, number, number]} */
export function hexToRgb(color) {
  let s = String(color).trim().replace(/^#/, "");
  if (s.length === 3) s = s.split("").map((c) => c + c).join("");
  if (!/^[0-9a-fA-F]{6}$/.test(s)) throw new Error(`not a hex colour: ${JSON.stringify(color)}; expected '#rrggbb'`);
  return [parseInt(s.slice(0, 2), 16), parseInt(s.slice(2, 4), 16), parseInt(s.slice(4, 6), 16)];
}

/** @param {number} count @param {Set<string>} taken */
function generated(count, taken) {
  const out = [];
  let hue = 0.11;
  while (out.length < count) {
    hue = (hue + 0.618033988749895) % 1.0;
    for (const [sat, val] of [[0.75, 0.85], [0.55, 0.65], [0.9, 0.5]]) {
      const hx = rgbToHex(hsvToRgb(hue, sat, val).map((c) => roundHalfEven(c * 255)));
      if (!taken.has(hx) && hx !== BACKGROUND_HEX) {
        taken.add(hx);
        out.push(hx);
        break;
      }
    }
  }
  return out;
}

/** @type {readonly string[]} */
export const PALETTE = Object.freeze([
  ...OBSERVED,
  ...CATEGORY20_REST,
  ...generated(MAX_LABELS - 20, new Set([...OBSERVED, ...CATEGORY20_REST])),
]);

/** Colour of the label (or instance) at 0-based `index`. @param {number} index */
export function labelColor(index) {
  if (!(index >= 0 && index < MAX_LABELS)) {
    throw new RangeError(`label index ${index} out of range: Ground Truth's 8-bit PNGs hold at most ${MAX_LABELS}`);
  }
  return PALETTE[index];
}
