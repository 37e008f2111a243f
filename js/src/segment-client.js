// The auto-segment client: talks to the preview server's /api/segment and /api/segment/refined
// (gt_widget/preview/segmenting.py). The server answers the fast first mask at once and, when a refined one
// is coming, an id the client long-polls for; a newer request makes the older refinement stale.
import { decodeRle } from "./rle.js";

/** @typedef {{width: number, height: number, mask: Uint8Array, score: number, segmenter: string, stage: "first" | "refined", final: boolean}} SegmentAnswer */

/** @param {Response} res */
async function readJson(res) {
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `auto-segment failed: HTTP ${res.status}`);
  return body;
}

/**
 * @param {typeof fetch} fetchImpl @param {string} url @param {unknown} body
 */
async function post(fetchImpl, url, body) {
  let res;
  try {
    res = await fetchImpl(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    throw new Error("the preview server does not answer: it was stopped (or closed after --once); restart `gt-widget template preview`");
  }
  return readJson(res);
}

/**
 * Ask for a mask; yields the first answer, then (when the segmenter refines) the refined one. Stops quietly
 * when the refinement was superseded by a newer request.
 * @param {string} url the /api/segment URL (it carries the preview's token)
 * @param {{src: string, points: number[][], clicks: [number, number, boolean][]}} request
 * @param {typeof fetch} [fetchImpl]
 * @returns {AsyncGenerator<SegmentAnswer>}
 */
export async function* segmentStaged(url, request, fetchImpl = fetch) {
  const first = await post(fetchImpl, url, request);
  const refineId = first.refine ?? null;
  yield toAnswer(first, "first", refineId === null);
  if (refineId === null) return;
  const refinedUrl = url.replace(/\/api\/segment(\?|$)/, "/api/segment/refined$1");
  for (;;) {
    const body = await post(fetchImpl, refinedUrl, { refine: refineId });
    if (body.pending) continue;
    if (body.stale) return;
    yield toAnswer(body, "refined", true);
    return;
  }
}

/** @param {any} body @param {"first" | "refined"} stage @param {boolean} final @returns {SegmentAnswer} */
function toAnswer(body, stage, final) {
  return {
    width: body.width,
    height: body.height,
    mask: decodeRle(body),
    score: Number(body.score ?? 0),
    segmenter: String(body.segmenter ?? ""),
    stage,
    final,
  };
}
