// Where the preview server listens. The server (gt_widget/preview/server.py) injects
// <meta name="gt-widget-segment-url"> and <meta name="gt-widget-submit-url">; without them (a page opened
// some other way) the same-origin defaults are used when the page came over http(s).

/** @param {string} name @param {string} fallback */
function endpoint(name, fallback) {
  const meta = document.querySelector(`meta[name="${name}"]`);
  const value = meta?.getAttribute("content");
  if (value) return new URL(value, location.href).href;
  return location.protocol.startsWith("http") ? new URL(fallback, location.href).href : null;
}

/** URL of the auto-segment endpoint, or null when the page has no preview server. */
export function segmentUrl() {
  return endpoint("gt-widget-segment-url", "/api/segment");
}

/** URL the crowd-form posts its answer to, or null when the page has no preview server. */
export function submitUrl() {
  return endpoint("gt-widget-submit-url", "/api/submit");
}
