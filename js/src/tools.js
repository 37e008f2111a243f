// The tools of the segmentation stand-ins: one registry (id, button text, key, hint) that the toolbar,
// the keyboard shortcuts and the help are generated from, and the mouse rules of auto-segment.
//
// Corrective clicks (like CVAT's and SAM's demo): straight after an auto-segment result, in the same tool,
// a LEFT click adds a missed part (positive click) and a RIGHT click (or Shift+click, for trackpads; Alt+click
// also works) removes a wrong one (negative click); each replaces the result with the segmenter's refinement.
// Enter (or Escape, or the Done button) finishes the object: the next 4 left clicks start a new one. (N is the
// widget's "next candidate" key, so it is not used here.) Choosing a label or a tool
// finishes it too.

/** @typedef {{id: string, text: string, key: string, hint: string}} Tool */

/** @type {Tool[]} */
export const TOOLS = [
  { id: "brush", text: "Brush", key: "B", hint: "Brush: drag to paint the selected label" },
  { id: "eraser", text: "Eraser", key: "E", hint: "Eraser: drag to clear any label" },
  { id: "polygon", text: "Polygon", key: "P", hint: "Polygon: click the corners; click the first corner, double-click or press Enter to fill" },
  { id: "fill", text: "Fill", key: "F", hint: "Fill: click a closed region to fill it with the selected label" },
  {
    id: "auto-segment",
    text: "Auto-segment",
    key: "A",
    hint: "Auto-segment: click the top-, bottom-, left- and right-most points of the object",
  },
];

/** What the status line says once an auto-segment result can be corrected. */
export const CORRECTIVE_HINT =
  "Left click adds a missed part, right click (or Shift+click) removes a wrong one; Enter: done, next object";

/** The help lines (mouse and keys), generated from the registry. */
export function helpLines() {
  return [
    ...TOOLS.map((t) => `${t.key}: ${t.hint}`),
    `After auto-segment: ${CORRECTIVE_HINT}`,
    "1-9: choose a label; Ctrl+Z / Ctrl+Shift+Z: undo / redo; + / -: zoom; Escape: cancel",
  ];
}

/** The tool a key selects (case-insensitive), or null. @param {string} key */
export function toolForKey(key) {
  const k = key.toLowerCase();
  return TOOLS.find((t) => t.key.toLowerCase() === k)?.id ?? null;
}

/**
 * The polarity of a click on an auto-segment result: true = positive (adds), false = negative (removes).
 * Right button, Shift or Alt: negative; a plain left click: positive; other buttons: null (ignored).
 * @param {{button: number, shiftKey?: boolean, altKey?: boolean, ctrlKey?: boolean}} e
 */
export function clickPolarity(e) {
  if (e.button === 2) return false;
  if (e.button !== 0) return null;
  if (e.ctrlKey) return false; // macOS: Ctrl+click is the right click
  return !(e.shiftKey || e.altKey);
}

/**
 * What a pointer press in the auto-segment tool does.
 * @param {{button: number, shiftKey?: boolean, altKey?: boolean, ctrlKey?: boolean}} e
 * @param {{hasResult: boolean, pointsPlaced: number}} state
 * @returns {{kind: "correct", positive: boolean} | {kind: "point"} | {kind: "ignore"} | {kind: "need-result"}}
 */
export function autoSegmentAction(e, state) {
  const polarity = clickPolarity(e);
  if (polarity === null) return { kind: "ignore" };
  if (state.hasResult && state.pointsPlaced === 0) return { kind: "correct", positive: polarity };
  if (!polarity) return state.pointsPlaced === 0 ? { kind: "need-result" } : { kind: "ignore" };
  return { kind: "point" };
}
