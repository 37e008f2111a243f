// Geometry and drawing of the segmentation stand-ins' canvases (no state of its own).
// Coordinates: (x, y) pixels of the original image, (0, 0) the centre of the top-left pixel; the canvases
// have the image's size and are scaled by CSS (zoom = CSS pixels per image pixel).

export const MAX_ZOOM = 16;
export const MIN_ZOOM = 0.05;
/** Small images are enlarged at most this much to fit the work area. */
export const MAX_FIT_ZOOM = 8;

/**
 * The zoom that fits a width x height image in an area (both dimensions), enlarging small images up to
 * MAX_FIT_ZOOM times. An area dimension of 0 (not laid out yet) does not constrain.
 * @param {number} width @param {number} height @param {number} areaWidth @param {number} areaHeight
 */
export function fitZoom(width, height, areaWidth, areaHeight) {
  if (!(areaWidth > 0) && !(areaHeight > 0)) return 1;
  const zw = areaWidth > 0 ? areaWidth / width : Infinity;
  const zh = areaHeight > 0 ? areaHeight / height : Infinity;
  const z = Math.min(zw, zh, MAX_FIT_ZOOM);
  return clampZoom(z);
}

/** @param {number} z */
export function clampZoom(z) {
  return Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, z));
}

/**
 * Image pixel coordinates of a client point over a canvas of `canvasWidth` x `canvasHeight` pixels shown in `rect`.
 * @param {number} clientX @param {number} clientY @param {{left: number, top: number, width: number, height: number}} rect
 * @param {number} canvasWidth @param {number} canvasHeight
 * @returns {[number, number]}
 */
export function toImagePoint(clientX, clientY, rect, canvasWidth, canvasHeight) {
  return [((clientX - rect.left) * canvasWidth) / rect.width - 0.5, ((clientY - rect.top) * canvasHeight) / rect.height - 0.5];
}

/**
 * @typedef {{zoom: number, tool: string, brushSize: number, hover: [number, number] | null,
 *   polygon: [number, number][], extreme: [number, number][], clicks: [number, number, boolean][]}} UiState
 */

/**
 * Draw the pointer feedback: polygon in progress, brush outline, corrective clicks (green +, red -) and
 * extreme points placed so far.
 * @param {CanvasRenderingContext2D} ctx @param {number} width @param {number} height @param {UiState} s
 */
export function drawUi(ctx, width, height, s) {
  ctx.clearRect(0, 0, width, height);
  const scale = 1 / s.zoom;
  ctx.lineWidth = 2 * scale;
  if (s.polygon.length) {
    ctx.strokeStyle = "#ff00ff";
    ctx.beginPath();
    s.polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x + 0.5, y + 0.5) : ctx.moveTo(x + 0.5, y + 0.5)));
    ctx.stroke();
    for (const [x, y] of s.polygon) ctx.strokeRect(x + 0.5 - 3 * scale, y + 0.5 - 3 * scale, 6 * scale, 6 * scale);
  }
  if (s.hover && (s.tool === "brush" || s.tool === "eraser")) {
    ctx.strokeStyle = s.tool === "eraser" ? "#ffffff" : "#000000";
    ctx.lineWidth = scale;
    ctx.beginPath();
    ctx.arc(s.hover[0] + 0.5, s.hover[1] + 0.5, s.brushSize / 2, 0, Math.PI * 2);
    ctx.stroke();
  }
  if (s.tool === "auto-segment") {
    for (const [x, y, positive] of s.clicks) {
      ctx.fillStyle = positive ? "#00c000" : "#e00000";
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = scale;
      ctx.beginPath();
      ctx.arc(x + 0.5, y + 0.5, 5 * scale, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
    }
  }
  for (const [x, y] of s.extreme) {
    ctx.fillStyle = "#ff00ff";
    ctx.beginPath();
    ctx.arc(x + 0.5, y + 0.5, 5 * scale, 0, Math.PI * 2);
    ctx.fill();
  }
}
