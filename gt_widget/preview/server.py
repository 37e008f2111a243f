"""The preview's HTTP server on 127.0.0.1: the page, the crowd-element stand-ins, images, auto-segment, submit.

Side that owns what: the BROWSER owns the annotation while the worker paints (js/src); the KERNEL owns the
image bytes, the segmenter and every submitted answer.

Access: every route lives under ``/<token>/`` (``secrets.token_urlsafe(32)``, new per server, as Jupyter's
token): ``url`` is ``http://127.0.0.1:PORT/<token>/``; any other path answers 403 whatever it names. The page
carries the token only in relative URLs (the metas below, image URLs, the stand-in script), so the JS's
fetches carry it; ``Referrer-Policy: no-referrer`` keeps it out of Referer headers.

Limits: request bodies are capped per route (``MAX_SEGMENT_BODY``, ``MAX_SUBMIT_BODY``; a larger announced body
gets 413 unread), a missing or bad Content-Length gets 411/400, a client that stalls for ``request_timeout``
seconds mid-request gets 408 (or is disconnected), error messages quote request values at most
``_QUOTE`` characters, and up to ``BACKLOG`` simultaneous connections queue (auto-segment requests are then
served one at a time) rather than being reset.

Routes (paths relative to ``/<token>``; all JSON bodies are UTF-8):
- ``GET /`` the rendered template, wrapped in a page; ``https://assets.crowd.aws/crowd-html-elements.js``
  is rewritten to ``/static/crowd-html-elements.js`` (our stand-ins, so nothing loads from the network);
- ``GET /static/<file>`` the stand-ins (``gt_widget/preview/static`` = ``js/src``);
- ``GET /images/<token>/<name>`` image bytes (see ``images.ImageStore``);
- ``POST /api/segment`` ``{"src": image URL, "points": [[x, y] * 4], "clicks": [[x, y, positive], ...]}``
  -> ``{"width", "height", "counts", "score", "segmenter", "set_image_s", "predict_s", "refine"}``: the first mask as
  row-major run lengths starting with a run of 0s (js/src/rle.js decodes it); (x, y) are pixels of the
  original image. A request with the previous request's points and its clicks plus more is a corrective
  click: the previous prediction is passed as ``previous`` (the segmenter's refinement state);
- ``POST /api/segment/refined`` ``{"refine": id}`` -> the refined mask (same fields), ``{"stale": true}`` or
  ``{"pending": true}`` (ask again); see ``gt_widget.preview.segmenting``;
- ``POST /api/submit`` the crowd-form's answer object (``{element name: answer, ...}``, reference §1.3),
  checked with ``gt_widget.groundtruth.formats.read_answer`` and handed to ``on_submit``;
- ``GET /api/submissions`` every answer received so far.
Errors answer ``{"error": message}`` with status 400 (bad request) or 500, and the page shows the message.
Requests whose Host is not this server (DNS rebinding) get 403; POSTs must be ``application/json`` (so other
origins cannot post without a CORS preflight, which is never granted).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gt_widget.errors import GtWidgetError
from gt_widget.preview.images import ImageStore, PreviewError
from gt_widget.preview.segmenting import SegmentService, mask_to_rle, rle_to_mask

__all__ = ["PreviewServer", "SegmentService", "mask_to_rle", "rle_to_mask", "wrap_page"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
CROWD_ELEMENTS_URL = "https://assets.crowd.aws/crowd-html-elements.js"
LOCAL_ELEMENTS_PATH = "/static/crowd-html-elements.js"
MAX_SEGMENT_BODY = 64 * 1024
"""Largest ``/api/segment`` body (an image URL, 4 points and a few hundred clicks fit many times over)."""
MAX_SUBMIT_BODY = 96 * 1024 * 1024
"""Largest ``/api/submit`` body: a 100 Mpx answer PNG (Ground Truth's quota) of ~70 MB in base64 fits."""
BACKLOG = 128
"""Connections the kernel queues before ``accept`` (http.server's default of 5 reset 35 of 50 requests)."""
MAX_THREADS = 64
"""Connections served at once (one thread each); a flood of idle connections cannot exhaust the process."""
REQUEST_TIMEOUT = 30.0
"""Seconds a client may stall mid-request (headers or body) before the server gives up on it."""
_QUOTE = 80


def quote_short(value: object) -> str:
    """``repr(value)`` cut to ``_QUOTE`` characters: error messages never echo a large request value."""
    text = repr(value)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 3] + "..."


def wrap_page(html: str, title: str = "Ground Truth template preview", base: str = "") -> str:
    """A full HTML page around a rendered template, with the stand-ins and the endpoints wired in.

    ``base``: the path prefix every route lives under (``/<token>``; "" for none)."""
    local_elements = base + LOCAL_ELEMENTS_PATH
    html = html.replace(CROWD_ELEMENTS_URL, local_elements)
    metas = (
        f'<meta name="gt-widget-segment-url" content="{base}/api/segment">\n'
        f'<meta name="gt-widget-submit-url" content="{base}/api/submit">\n'
        '<meta name="referrer" content="no-referrer">\n'
    )
    if re.search(r"<head[\s>]", html, re.IGNORECASE):
        return re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + "\n" + metas, html, count=1, flags=re.IGNORECASE)
    if not html.count(local_elements):
        # a template that forgot the crowd elements script would show nothing: Ground Truth adds none either,
        # but the preview loads it so the author sees the elements and a console warning explains
        html = f'<script src="{local_elements}"></script>\n' + html
    return (
        '<!doctype html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n{metas}"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<style>body { margin: 16px; font-family: system-ui, sans-serif; }</style>\n"
        f"</head>\n<body>\n{html}\n</body>\n</html>\n"
    )


Handler = Callable[[dict[str, Any]], Any]


class _RequestError(Exception):
    """A request the handler answers with ``status`` and closes (the body may be unread)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _HTTPServer(ThreadingHTTPServer):
    """At most ``MAX_THREADS`` connections are served at once; more wait in the kernel's backlog."""

    request_queue_size = BACKLOG
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_THREADS)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that stall or vanish are routine here: drop them without a traceback on stderr."""


class PreviewServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread, serving one rendered template under a token."""

    def __init__(
        self,
        images: ImageStore,
        segment: SegmentService,
        on_submit: Handler,
        list_submissions: Callable[[], list[dict[str, Any]]],
        port: int = 0,
        host: str = "127.0.0.1",
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise PreviewError(
                f"the preview serves presigned-like image URLs: it listens on 127.0.0.1 only, not {host}"
            )
        self.images = images
        self.segment_service = segment
        self.on_submit = on_submit
        self.list_submissions = list_submissions
        self.request_timeout = float(request_timeout)
        self.page = ""
        self.served_at: datetime | None = None
        self.token = secrets.token_urlsafe(32)
        self.base_path = f"/{self.token}"
        try:
            self._httpd = _HTTPServer((host, port), self._handler_class())
        except OSError as exc:
            raise PreviewError(f"cannot listen on {host}:{port} ({exc}); choose another --port or 0 for any") from None
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}{self.base_path}/"
        images.base_url = f"http://127.0.0.1:{self.port}{self.base_path}"
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
        self.segment_service.close()

    def route(self, path: str) -> str | None:
        """The path below ``/<token>`` (``/`` for the page), or None when the token is missing or wrong."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        head, sep, rest = path.lstrip("/").partition("/")
        if not hmac.compare_digest(head.encode(), self.token.encode()):
            return None
        return "/" + rest if sep else "/"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "gt-widget-preview"
            timeout = server.request_timeout  # socket timeout: a stalled client frees its thread

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the notebook is the UI
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("X-Content-Type-Options", "nosniff")
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status: int, value: Any) -> None:
                self._send(status, json.dumps(value).encode(), "application/json")

            def _route(self) -> str | None:
                # DNS-rebinding guard: only pages of this server (Host 127.0.0.1/localhost:PORT) may talk to it
                host = (self.headers.get("Host") or "").lower()
                if host not in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}"):
                    self.close_connection = True
                    self._json(403, {"error": f"this preview answers http://127.0.0.1:{server.port}/ only"})
                    return None
                path = server.route(self.path)
                if path is None:
                    self.close_connection = True
                    self._json(
                        403,
                        {
                            "error": "this preview needs its access token: open the full URL that "
                            "`gt-widget template preview` (or preview_template(...).url) printed, "
                            f"http://127.0.0.1:{server.port}/<token>/"
                        },
                    )
                return path

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                path = self._route()
                if path is None:
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
                            self._json(404, {"error": f"no such file {quote_short(name)}"})
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
                        self._json(404, {"error": f"nothing at {quote_short(path)}"})
                except GtWidgetError as exc:
                    self._json(404, {"error": str(exc)})

            def _read_json(self, limit: int) -> dict[str, Any]:
                # JSON only: a cross-origin page cannot send it without a CORS preflight, which we refuse
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    raise _RequestError(400, "send the request body as Content-Type: application/json")
                raw = self.headers.get("Content-Length")
                if raw is None:
                    raise _RequestError(411, "a Content-Length header is required")
                try:
                    length = int(raw)
                    if length < 0:
                        raise ValueError
                except ValueError:
                    raise _RequestError(400, f"bad Content-Length {quote_short(raw)}: a byte count") from None
                if length > limit:
                    raise _RequestError(
                        413, f"request body of {length} bytes is larger than this route's {_size(limit)} limit"
                    )
                try:
                    data = self.rfile.read(length)
                except TimeoutError:
                    raise _RequestError(
                        408, f"request timed out: the body did not arrive within {server.request_timeout:g} s"
                    ) from None
                if len(data) < length:
                    raise _RequestError(400, f"the body ended after {len(data)} of {length} bytes")
                try:
                    body = json.loads(data or b"null")
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise _RequestError(400, f"the request body is not JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise _RequestError(400, "the request body must be a JSON object")
                return body

            def _drain(self) -> None:
                # let the client read the error before the close: closing with unread input sends a reset
                # that can destroy the reply in flight; read (and drop) at most 8 MiB for at most 2 s
                try:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_WR)
                    self.connection.settimeout(0.5)
                    end = time.monotonic() + 2
                    left = 8 * 2**20
                    while left > 0 and time.monotonic() < end:
                        chunk = self.connection.recv(min(left, 65536))
                        if not chunk:
                            break
                        left -= len(chunk)
                except OSError:
                    pass

            def do_POST(self) -> None:
                path = self._route()
                if path is None:
                    return
                try:
                    if path == "/api/segment":
                        self._json(200, server.segment_service.segment(self._read_json(MAX_SEGMENT_BODY)))
                    elif path == "/api/segment/refined":
                        self._json(200, server.segment_service.refined(self._read_json(MAX_SEGMENT_BODY)))
                    elif path == "/api/submit":
                        self._json(200, server.on_submit(self._read_json(MAX_SUBMIT_BODY)))
                    else:
                        self.close_connection = True  # the body is unread
                        self._json(404, {"error": f"nothing at {quote_short(path)}"})
                except _RequestError as exc:
                    self.close_connection = True  # the body may be unread: this connection cannot carry another
                    self._json(exc.status, {"error": str(exc)})
                    self._drain()
                except (GtWidgetError, ValueError) as exc:
                    self._json(400, {"error": str(exc)})
                except Exception as exc:  # the page shows the message; the server keeps running
                    self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

        return _Handler


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n // 1024} KiB"
