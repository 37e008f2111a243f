// The `initial-value` attribute of the segmentation stand-ins (reference §1.4): the prior labels of an
// adjustment task. Semantic: {"labelMappings": {label: {"color"}}, "src": PNG URL}; instance:
// {"instances": [{"color", "label"}], "src": PNG URL}. The PNG's pixels are matched to colours exactly.
import { decodePng } from "./png.js";
import { rgbaToIndex } from "./raster.js";

/**
 * @typedef {{mode: "semantic", colors: Record<string, string>, src: string}
 *   | {mode: "instance", instances: {label: string, color: string}[], src: string}} InitialValue
 */

/**
 * Parse the attribute; null when absent or blank. Throws an Error saying how to fix a bad value.
 * @param {string | null} raw @param {"semantic" | "instance"} mode @returns {InitialValue | null}
 */
export function parseInitialValue(raw, mode) {
  if (!raw || !raw.trim()) return null;
  let value;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new Error(`initial-value is not valid JSON (${/** @type {Error} */ (err).message}); write it with | to_json | escape`);
  }
  if (!value || typeof value !== "object") throw new Error("initial-value must be a JSON object with src and labelMappings (or instances)");
  const src = value.src ? String(value.src) : "";
  if (mode === "semantic") {
    const mappings = value.labelMappings ?? {};
    const colors = Object.fromEntries(Object.entries(mappings).map(([k, v]) => [k, String(/** @type {any} */ (v).color).toLowerCase()]));
    return { mode, colors, src };
  }
  const list = Array.isArray(value.instances) ? value.instances : [];
  const instances = list.map((/** @type {any} */ x) => ({ label: String(x.label), color: String(x.color).toLowerCase() }));
  return { mode, instances, src };
}

/**
 * Fetch the prior PNG and turn it into an index map (value k = colours[k - 1]; other colours unpainted).
 * @param {string} src @param {number} width @param {number} height @param {(string | null)[]} colors
 */
export async function loadInitialMap(src, width, height, colors) {
  const res = await fetch(src);
  if (!res.ok) throw new Error(`could not load initial-value src ${src}: HTTP ${res.status}`);
  const png = await decodePng(new Uint8Array(await res.arrayBuffer()));
  if (png.width !== width || png.height !== height) {
    throw new Error(`initial-value image is ${png.width}x${png.height} but the task image is ${width}x${height}`);
  }
  return rgbaToIndex(png.rgba, png.width, png.height, colors);
}
