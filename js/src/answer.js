// What a segmentation element submits under its `name` (reference §1.3), built from the index map.
// Semantic: labeledImage, labelMappings (painted labels only), inputImageProperties (+ initialValueModified
// when the task started from an initial-value). Instance: labeledImage, instances (EVERY instance the worker
// added, painted or not, in creation order, as gt_widget.groundtruth.formats.instance_answer writes them: the
// instance list is the worker's answer, the PNG its pixels), inputImageProperties. Unpainted pixels are
// transparent.
import { bytesToBase64, encodePng } from "./png.js";
import { indexToRgba } from "./raster.js";

/** @typedef {import("./raster.js").IndexMap} IndexMap */

/**
 * @param {{mode: "semantic" | "instance", map: IndexMap, labels: string[], colors: string[],
 *   instances?: {label: string, color: string}[], initialData?: Uint8Array | null}} a
 * @returns {Promise<Record<string, unknown>>}
 */
export async function buildAnswer({ mode, map, labels, colors, instances = [], initialData = null }) {
  const png = await encodePng(indexToRgba(map, colors), map.width, map.height);
  const inputImageProperties = { height: map.height, width: map.width };
  const labeledImage = { pngImageData: bytesToBase64(png) };
  if (mode === "instance") {
    return { inputImageProperties, instances: instances.map((x) => ({ color: x.color, label: x.label })), labeledImage };
  }
  const counts = new Uint32Array(256);
  for (let i = 0; i < map.data.length; i++) counts[map.data[i]]++;
  /** @type {Record<string, {color: string}>} */
  const labelMappings = {};
  labels.forEach((n, i) => {
    if (counts[i + 1] > 0) labelMappings[n] = { color: colors[i] };
  });
  /** @type {Record<string, unknown>} */
  const answer = { inputImageProperties, labelMappings, labeledImage };
  if (initialData) answer.initialValueModified = !map.data.every((v, i) => v === initialData[i]);
  return answer;
}
