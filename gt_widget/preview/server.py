"""The preview's HTTP server on 127.0.0.1: the page, the crowd-element stand-ins, images, auto-segment, submit.

Side that owns what: the BROWSER owns the annotation while the worker paints (js/src); the KERNEL owns the
image bytes, the segmenter and every submitted answer.

Routes (all JSON bodies are UTF-8):
- ``GET /`` the rendered template, wrapped in a page; ``https://assets.crowd.aws/crowd-html-elements.js``
  is rewritten to ``/static/crowd-html-elements.js`` (our stand-ins, so nothing loads from the network);
- ``GET /static/<file>`` the stand-ins (``gt_widget/preview/static`` = ``js/src``);
- ``GET /images/<token>/<name>`` image bytes (see ``images.ImageStore``);
- ``POST /api/segment`` ``{"src": image URL, "points": [[x, y] * 4], "clicks": [[x, y, positive], ...]}``
  -> ``{"width", "height", "counts", "score", "segmenter", "set_image_s", "predict_s"}``: the mask as
  row-major run lengths starting with a run of 0s (js/src/rle.js decodes it); (x, y) are pixels of the
  original image. A request with the previous request's points and its clicks plus more is a corrective
  click: the previous prediction is passed as ``previous`` (the segmenter's refinement state);
- ``POST /api/submit`` the crowd-form's answer object (``{element name: answer, ...}``, reference §1.3),
  checked with ``gt_widget.groundtruth.formats.read_answer`` and handed to ``on_submit``;
- ``GET /api/submissions`` every answer received so far.
Errors answer ``{"error": message}`` with status 400 (bad request) or 500, and the page shows the message.
Requests whose Host is not this server (DNS rebinding) get 403; POSTs must be ``application/json`` (so other
origins cannot post without a CORS preflight, which is never granted).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from gt_widget.errors import GtWidgetError
from gt_widget.preview.images import ImageStore, PreviewError
from gt_widget.segment.base import Prediction, Segmenter

STATIC_DIR = Path(__file__).resolve().parent / "static"
CROWD_ELEMENTS_URL = "https://assets.crowd.aws/crowd-html-elements.js"
LOCAL_ELEMENTS_PATH = "/static/crowd-html-elements.js"
MAX_BODY_BYTES = 512 * 1024 * 1024
"""Largest request body accepted (a 100 Mpx answer PNG in base64 fits)."""


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """Row-major run lengths of a bool (H, W) mask, alternating, starting with a (maybe empty) run of 0s."""
    flat = np.asarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return [0]
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    return [0, *runs] if flat[0] else runs


def rle_to_mask(counts: list[int], height: int, width: int) -> np.ndarray:
    """Inverse of ``mask_to_rle``: bool (H, W)."""
    if sum(counts) != height * width:
        raise ValueError(f"runs cover {sum(counts)} pixels, the mask has {height}x{width}")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(height, width)


def wrap_page(html: str, title: str = "Ground Truth template preview") -> str:
    """A full HTML page around a rendered template, with the stand-ins and the endpoints wired in."""
    html = html.replace(CROWD_ELEMENTS_URL, LOCAL_ELEMENTS_PATH)
    metas = (
        '<meta name="gt-widget-segment-url" content="/api/segment">\n'
        '<meta name="gt-widget-submit-url" content="/api/submit">\n'
    )
    if re.search(r"<head[\s>]", html, re.IGNORECASE):
        return re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + "\n" + metas, html, count=1, flags=re.IGNORECASE)
    if not html.count(LOCAL_ELEMENTS_PATH):
        # a template that forgot the crowd elements script would show nothing: Ground Truth adds none either,
        # but the preview loads it so the author sees the elements and a console warning explains
        html = f'<script src="{LOCAL_ELEMENTS_PATH}"></script>\n' + html
    return (
        '<!doctype html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n{metas}"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<style>body { margin: 16px; font-family: system-ui, sans-serif; }</style>\n"
        f"</head>\n<body>\n{html}\n</body>\n</html>\n"
    )


class SegmentService:
    """The kernel-side segmenter behind ``/api/segment`` (loaded on first use; one request at a time)."""

    def __init__(self, images: ImageStore, segmenter: Segmenter | str | None = None) -> None:
        self._images = images
        self._spec = segmenter
        self._segmenter: Segmenter | None = segmenter if not isinstance(segmenter, (str, type(None))) else None
        self._current: str | None = None
        # the last request and its prediction: a follow-up with the same points and more clicks refines it
        self._last: tuple[str, Any, list[Any], Prediction] | None = None
        self._lock = threading.Lock()

    @property
    def segmenter(self) -> Segmenter:
        """The segmenter, loading it on first use (MobileSAM, else GrabCut; see ``load_segmenter``)."""
        if self._segmenter is None:
            from gt_widget.segment import load_segmenter

            self._segmenter = load_segmenter(self._spec if isinstance(self._spec, str) else None)
        return self._segmenter

    @property
    def last_prediction(self) -> Prediction | None:
        """The prediction behind the last ``/api/segment`` answer (None before the first)."""
        return self._last[3] if self._last is not None else None

    def segment(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one ``/api/segment`` request (see the module docstring)."""
        src = request.get("src")
        points = request.get("points")
        clicks = request.get("clicks") or []
        if not isinstance(src, str) or not isinstance(points, list):
            raise PreviewError('auto-segment request needs {"src": image URL, "points": [[x, y], ...4]}')
        token = self._images.token_of_url(src)
        image = self._images.image(token)
        with self._lock:
            seg = self.segmenter
            t0 = time.perf_counter()
            if self._current != token:
                self._current = None
                seg.set_image(image)
                self._current = token
            t1 = time.perf_counter()
            previous = None
            if self._last is not None:
                last_token, last_points, last_clicks, last_pred = self._last
                if last_token == token and last_points == points and clicks[: len(last_clicks)] == last_clicks:
                    previous = last_pred if clicks else None
            pred = seg.predict(extreme_points=points, clicks=[tuple(c) for c in clicks], previous=previous)
            t2 = time.perf_counter()
            self._last = (token, points, list(clicks), pred)
        mask = np.asarray(pred.mask, dtype=bool)
        h, w = image.shape[:2]
        if mask.shape != (h, w):
            raise PreviewError(f"the segmenter returned a {mask.shape} mask for a {h}x{w} image")
        return {
            "width": w,
            "height": h,
            "counts": mask_to_rle(mask),
            "score": float(pred.score),
            "segmenter": getattr(seg, "name", type(seg).__name__),
            "set_image_s": round(t1 - t0, 4),
            "predict_s": round(t2 - t1, 4),
        }


Handler = Callable[[dict[str, Any]], Any]


class PreviewServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread, serving one rendered template."""

    def __init__(
        self,
        images: ImageStore,
        segment: SegmentService,
        on_submit: Handler,
        list_submissions: Callable[[], list[dict[str, Any]]],
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise PreviewError(
                f"the preview serves presigned-like image URLs: it listens on 127.0.0.1 only, not {host}"
            )
        self.images = images
        self.segment_service = segment
        self.on_submit = on_submit
        self.list_submissions = list_submissions
        self.page = ""
        self.served_at: datetime | None = None
        try:
            self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        except OSError as exc:
            raise PreviewError(f"cannot listen on {host}:{port} ({exc}); choose another --port or 0 for any") from None
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        images.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"gt-preview-{self.port}", daemon=True)

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "gt-widget-preview"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the notebook is the UI
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status: int, value: Any) -> None:
                self._send(status, json.dumps(value).encode(), "application/json")

            def _trusted(self) -> bool:
                # DNS-rebinding guard: only pages of this server (Host 127.0.0.1/localhost:PORT) may talk to it
                host = (self.headers.get("Host") or "").lower()
                if host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}"):
                    return True
                self._json(403, {"error": f"this preview answers http://127.0.0.1:{server.port}/ only"})
                return False

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if not self._trusted():
                    return
                try:
                    if path in ("/", "/index.html"):
                        if server.served_at is None:
                            server.served_at = datetime.now(timezone.utc)
                        self._send(200, server.page.encode(), "text/html; charset=utf-8")
                    elif path.startswith("/static/"):
                        name = path[len("/static/") :]
                        file = STATIC_DIR / name
                        if not re.fullmatch(r"[A-Za-z0-9_.-]+\.js", name) or not file.is_file():
                            self._json(404, {"error": f"no such file {name!r}"})
                        else:
                            self._send(200, file.read_bytes(), "text/javascript; charset=utf-8")
                    elif path.startswith("/images/"):
                        data, ctype = server.images.fetch(server.images.token_of_url(path))
                        self._send(200, data, ctype)
                    elif path == "/api/submissions":
                        self._json(200, server.list_submissions())
                    elif path == "/favicon.ico":
                        self._send(204, b"", "image/x-icon")
                    else:
                        self._json(404, {"error": f"nothing at {path}"})
                except GtWidgetError as exc:
                    self._json(404, {"error": str(exc)})

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                if not self._trusted():
                    return
                try:
                    # JSON only: a cross-origin page cannot send it without a CORS preflight, which we refuse
                    if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                        raise PreviewError("send the request body as Content-Type: application/json")
                    length = int(self.headers.get("Content-Length") or 0)
                    if length > MAX_BODY_BYTES:
                        raise PreviewError(f"request body of {length} bytes is too large")
                    body = json.loads(self.rfile.read(length) or b"null")
                    if not isinstance(body, dict):
                        raise PreviewError("the request body must be a JSON object")
                    if path == "/api/segment":
                        self._json(200, server.segment_service.segment(body))
                    elif path == "/api/submit":
                        self._json(200, server.on_submit(body))
                    else:
                        self._json(404, {"error": f"nothing at {path}"})
                except (GtWidgetError, json.JSONDecodeError, ValueError) as exc:
                    self._json(400, {"error": str(exc)})
                except Exception as exc:  # the page shows the message; the server keeps running
                    self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

        return _Handler
