"""Issue 11's preview-server findings, each reproduced over real sockets on 127.0.0.1 and bounded in time:
the access token on every route, the decompression bomb, body limits (never echoed), slow and lying clients,
template resource limits, 50 simultaneous auto-segment requests, and the ``job render --presign`` warning."""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from gt_widget.groundtruth.formats import semantic_answer
from gt_widget.preview import PreviewError, preview_template


def _request(url: str, body: Any = None, timeout: float = 30) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _recv_all(s: socket.socket, limit: int = 65536) -> str:
    """Everything the server sends before closing (bounded by the socket's timeout)."""
    out = b""
    while len(out) < limit:
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


@pytest.fixture
def llama_task(grabcut_dir: Path) -> dict[str, Any]:
    return {"taskObject": str(grabcut_dir / "images" / "llama.png"), "labels": ["llama"]}


class SlowSegmenter:
    """A deterministic Segmenter that takes ``delay`` seconds per predict (a box mask of the points)."""

    name = "slow"

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.shape: tuple[int, int] | None = None
        self.calls = 0
        self._lock = threading.Lock()
        self.overlap = 0

    def set_image(self, image: Any) -> None:
        self.shape = tuple(np.asarray(image).shape[:2])  # type: ignore[assignment]

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self.shape

    def predict(self, extreme_points: Any = None, clicks: Any = (), previous: Any = None, box: Any = None) -> Any:
        from gt_widget.segment.base import Prediction

        if not self._lock.acquire(blocking=False):
            self.overlap += 1  # the segmenter is not thread-safe: the service must serialise calls
            self._lock.acquire()
        try:
            time.sleep(self.delay)
            assert self.shape is not None
            mask = np.zeros(self.shape, bool)
            xs = [int(p[0]) for p in extreme_points]
            ys = [int(p[1]) for p in extreme_points]
            mask[min(ys) : max(ys) + 1, min(xs) : max(xs) + 1] = True
            self.calls += 1
            return Prediction(mask=mask, score=0.5)
        finally:
            self._lock.release()


# ------------------------------------------------------------------------------------------- the token


def test_every_route_needs_the_token(llama_task: dict[str, Any]) -> None:
    with (
        preview_template("builtin:semantic", llama_task, segmenter=SlowSegmenter()) as p,  # type: ignore[arg-type]
        preview_template("builtin:semantic", llama_task, segmenter=SlowSegmenter()) as other,  # type: ignore[arg-type]
    ):
        token = urlsplit(p.url).path.strip("/")
        assert len(token) >= 32, f"the URL {p.url} carries no unguessable token"
        assert token != urlsplit(other.url).path.strip("/"), "each preview has its own token"
        origin = _origin(p.url)
        src = p.images.url_for(llama_task["taskObject"])
        assert src.startswith(p.url), "image URLs carry the token too"
        pts = [[200, 50], [210, 300], [100, 200], [400, 180]]
        lm = np.zeros((371, 513), np.uint8)
        good = {"crowd-semantic-segmentation": semantic_answer(lm, ["llama"])}

        # with the token: everything works
        assert _request(p.url)[0] == 200
        assert _request(p.url + "static/index.js")[0] == 200
        assert _request(src)[0] == 200
        assert _request(p.url + "api/segment", {"src": src, "points": pts})[0] == 200
        assert _request(p.url + "api/submissions")[0] == 200

        # without it, or with another preview's, or a guessed one: every route is refused
        wrong = _origin(p.url) + urlsplit(other.url).path.strip("/") + "/"
        for base in (origin, wrong, origin + "x" * len(token) + "/"):
            for path in ("", "index.html", "static/index.js", "static/crowd-html-elements.js", "api/submissions"):
                status, body = _request(base + path)
                assert status == 403, (base + path, status)
                assert token.encode() not in body
            image_path = urlsplit(src).path.split("/", 2)[2]  # images/<id>/llama.png
            assert _request(base + image_path)[0] == 403
            assert _request(base + "api/segment", {"src": src, "points": pts})[0] == 403
            status, body = _request(base + "api/submit", {})  # the reported attack: {} replaced the answer
            assert status == 403 and b"token" in body
        assert p.submissions == []
        assert _request(p.url + "api/submit", good)[0] == 200 and len(p.submissions) == 1

        # the page tells its scripts the token-carrying endpoints (the JS fetches them as given)
        html = _request(p.url)[1].decode()
        assert f'content="/{token}/api/segment"' in html and f'content="/{token}/api/submit"' in html
        assert f'src="/{token}/static/crowd-html-elements.js"' in html
        assert "no-referrer" in html


# ------------------------------------------------------------------------------------- bomb and bodies


def _bomb_png(width: int, height: int) -> bytes:
    """A valid grayscale PNG of zeros: a few hundred KB that decode to width*height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_per_call(llama_task: dict[str, Any], grabcut_dir: Path) -> None:
    bomb = _bomb_png(20_000, 11_000)  # 220 Mpx: ~220 KB on the wire, 220 MB (880 MB as RGBA) decoded
    assert len(bomb) < 300_000
    answer = {
        "crowd-semantic-segmentation": {
            "inputImageProperties": {"height": 11_000, "width": 20_000},
            "labelMappings": {"llama": {"color": "#2ca02c"}},
            "labeledImage": {"pngImageData": base64.b64encode(bomb).decode()},
        }
    }
    limit = Image.MAX_IMAGE_PIXELS
    stop = threading.Event()
    seen: list[int | None] = []

    def load_images() -> None:  # what made the bomb decode: another thread loading images meanwhile
        from gt_widget.imageio import load_image

        while not stop.is_set():
            load_image(grabcut_dir / "images" / "llama.png")
            seen.append(Image.MAX_IMAGE_PIXELS)

    loader = threading.Thread(target=load_images)
    loader.start()
    try:
        with preview_template("builtin:semantic", llama_task, segmenter="grabcut") as p:
            for _ in range(3):
                t0 = time.perf_counter()
                status, body = _request(p.url + "api/submit", answer)
                assert status == 400, body[:300]
                message = json.loads(body)["error"]
                assert "20000x11000" in message and "Mpx" in message, message
                assert time.perf_counter() - t0 < 5, "the bomb was decoded before it was refused"
            # the same answer PNG at the image's size is fine (the bound is per call, from the task image)
            status, _ = _request(
                p.url + "api/submit",
                {"crowd-semantic-segmentation": semantic_answer(np.zeros((371, 513), np.uint8), ["llama"])},
            )
            assert status == 200
    finally:
        stop.set()
        loader.join(timeout=30)
    assert seen and set(seen) == {limit}, "PIL's process-wide decompression-bomb limit was changed"
    assert limit == Image.MAX_IMAGE_PIXELS


def test_a_huge_body_is_refused_unread_and_never_echoed(llama_task: dict[str, Any]) -> None:
    from gt_widget.preview.server import MAX_SEGMENT_BODY, MAX_SUBMIT_BODY

    with preview_template("builtin:semantic", llama_task, segmenter=SlowSegmenter()) as p:  # type: ignore[arg-type]
        host, port = urlsplit(p.url).hostname, urlsplit(p.url).port
        path = urlsplit(p.url).path
        # a 300 MB body is announced; the server answers 413 at once, without reading (or echoing) it
        with socket.create_connection((host, port), timeout=10) as s:
            head = (
                f"POST {path}api/submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {300 * 2**20}\r\n\r\n"
            )
            s.sendall(head.encode() + b'{"crowd-semantic-segmentation": "' + b"A" * 65536)
            reply = _recv_all(s)
        assert reply.startswith("HTTP/1.1 413"), reply[:200]
        assert "A" * 100 not in reply and len(reply) < 2000
        assert f"{MAX_SUBMIT_BODY // 2**20} MiB" in reply
        assert MAX_SEGMENT_BODY <= 2**20 < MAX_SUBMIT_BODY <= 128 * 2**20

        # a big field inside an accepted body is never echoed back in the error
        long_src = "http://127.0.0.1/" + "x" * 500_000
        status, body = _request(p.url + "api/segment", {"src": long_src, "points": [[1, 1]] * 4})
        assert status in (400, 413) and len(body) < 2000 and b"x" * 200 not in body
        status, body = _request(p.url + "api/submit", {"x" * 300_000: {"labeledImage": 1}})
        assert status == 400 and len(body) < 2000

        # a bad Content-Length gets a clear 400
        for value in ("-5", "abc"):
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(
                    f"POST {path}api/submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {value}\r\n\r\n".encode()
                )
                reply = _recv_all(s)
            assert reply.startswith("HTTP/1.1 400") and "Content-Length" in reply, reply[:200]


def test_a_lying_or_slow_client_times_out(llama_task: dict[str, Any]) -> None:
    with preview_template("builtin:semantic", llama_task, segmenter=SlowSegmenter(), request_timeout=1.0) as p:  # type: ignore[arg-type]
        host, port = urlsplit(p.url).hostname, urlsplit(p.url).port
        path = urlsplit(p.url).path
        sockets = []
        t0 = time.perf_counter()
        # 1) announces 100 bytes and sends 10; 2) sends half a request line; 3) connects and says nothing
        lying = socket.create_connection((host, port), timeout=10)
        lying.sendall(
            f"POST {path}api/submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n{}".encode()
        )
        slow = socket.create_connection((host, port), timeout=10)
        slow.sendall(b"GET / HT")
        silent = socket.create_connection((host, port), timeout=10)
        sockets = [lying, slow, silent]
        # meanwhile the server answers others at once
        assert _request(p.url, timeout=5)[0] == 200
        try:
            reply = _recv_all(lying)
            assert reply.startswith("HTTP/1.1 408") and "timed out" in reply, reply[:200]
            for s in (slow, silent):
                assert "HTTP/1.1 200" not in _recv_all(s)  # closed by the server (maybe after a 408)
        finally:
            for s in sockets:
                s.close()
        assert time.perf_counter() - t0 < 8, "a stalled client held a server thread past the timeout"


# ------------------------------------------------------------------------------------------ templates


@pytest.mark.parametrize(
    ("template", "what"),
    [
        ("{% for i in (1..100000000) %}{% endfor %}<crowd-form></crowd-form>", "loop"),
        (
            "{% assign s = 'x' | append: '0123456789abcdef' %}{% for i in (1..12) %}{% assign s = s | append: s %}"
            "{% endfor %}{% for i in (1..800) %}{{ s }}{% endfor %}",
            "output",
        ),
    ],
)
def test_templates_render_within_limits(llama_task: dict[str, Any], template: str, what: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(PreviewError, match=f"template exceeds the preview's {what} limit"):
        preview_template(template, llama_task, segmenter="grabcut")
    assert time.perf_counter() - t0 < 20


def test_deep_includes_are_refused(llama_task: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "loop.html").write_text("{% include 'loop.html' %}")
    t0 = time.perf_counter()
    with pytest.raises(Exception, match=r"(?i)depth|nest|include|render") as err:
        preview_template(tmp_path / "loop.html", llama_task, segmenter="grabcut")
    assert "Traceback" not in str(err.value)
    assert time.perf_counter() - t0 < 20


# -------------------------------------------------------------------------------------------- queueing


def test_fifty_simultaneous_auto_segments_queue(llama_task: dict[str, Any]) -> None:
    seg = SlowSegmenter(delay=0.02)
    with preview_template("builtin:semantic", llama_task, segmenter=seg) as p:  # type: ignore[arg-type]
        src = p.images.url_for(llama_task["taskObject"])
        n = 50
        barrier = threading.Barrier(n)
        results: list[Any] = [None] * n

        def one(i: int) -> None:
            pts = [[200, 50 + i], [210, 300], [100, 200], [400, 180]]
            barrier.wait()
            try:
                results[i] = _request(p.url + "api/segment", {"src": src, "points": pts}, timeout=60)[0]
            except OSError as exc:  # a reset or refused connection
                results[i] = repr(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=90)
        failed = [r for r in results if r != 200]
        assert failed == [], f"{len(failed)} of {n} failed: {failed[:5]}"
        assert seg.calls == n and seg.overlap == 0


# --------------------------------------------------------------------------------- job render --presign


def test_job_render_presign_warns_about_the_session_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``job render --presign`` writes presigned URLs like ``template render`` does: it warns the same way.
    (A small edit in gt_widget/groundtruth/cli.py; tested here with the preview's other findings.)"""
    from gt_widget import cli
    from gt_widget.groundtruth import bundle, templates

    html = '<img src="https://b.s3.amazonaws.com/a.jpg?X-Amz-Security-Token=FwoG&amp;X-Amz-Signature=ab">'

    class FakeBundle:
        def render(self, presign: Any = None) -> str:
            assert presign is not None
            return html

    monkeypatch.setattr(bundle.JobBundle, "read", classmethod(lambda cls, folder: FakeBundle()))
    monkeypatch.setattr(templates, "boto3_presigner", lambda *a, **k: lambda uri, exp: uri)
    assert cli.main(["job", "render", str(tmp_path), "--presign"]) == 0
    out = capsys.readouterr()
    assert html in out.out
    assert "session token" in out.err


# ------------------------------------------------------------------------------ two-stage auto-segment


def test_segment_answers_first_then_refined_and_newer_requests_make_it_stale(llama_task: dict[str, Any]) -> None:
    """Over HTTP: ``/api/segment`` answers the first mask with a ``refine`` id; ``/api/segment/refined`` waits
    for the refined mask; a newer request makes an older refinement stale; a corrective click after the refined
    answer refines the refined prediction; a segmenter without stages answers ``refine: null``."""
    from gt_widget.preview.server import rle_to_mask
    from tests.preview.helpers import TwoStageSegmenter

    seg = TwoStageSegmenter(delay=0.5, inset=10)
    with preview_template("builtin:semantic", llama_task, segmenter=seg) as p:  # type: ignore[arg-type]
        src = p.images.url_for(llama_task["taskObject"])
        pts = [[250, 60], [250, 300], [100, 180], [400, 180]]
        t0 = time.perf_counter()
        status, raw = _request(p.url + "api/segment", {"src": src, "points": pts})
        first = json.loads(raw)
        t_first = time.perf_counter() - t0
        assert status == 200 and isinstance(first["refine"], int)
        assert rle_to_mask(first["counts"], 371, 513).sum() == 221 * 281
        status, raw = _request(p.url + "api/segment/refined", {"refine": first["refine"]})
        refined = json.loads(raw)
        t_refined = time.perf_counter() - t0
        assert status == 200 and rle_to_mask(refined["counts"], 371, 513).sum() == 241 * 301
        assert t_first < 0.4 < t_refined and refined["refine_s"] >= 0.5
        assert p.last_prediction is not None and p.last_prediction.mask.sum() == 241 * 301

        # a request while a refinement is pending makes it stale (the page keeps its newer answer)
        status, raw = _request(p.url + "api/segment", {"src": src, "points": [[200, 60], *pts[1:]]})
        old = json.loads(raw)["refine"]
        _request(p.url + "api/segment", {"src": src, "points": pts})
        assert json.loads(_request(p.url + "api/segment/refined", {"refine": old})[1]) == {"stale": True}
        assert json.loads(_request(p.url + "api/segment/refined", {"refine": 10_000})[1]) == {"stale": True}
        status, raw = _request(p.url + "api/segment/refined", {"refine": "x"})
        assert status == 400 and "refine" in json.loads(raw)["error"]

    with preview_template("builtin:semantic", llama_task, segmenter=SlowSegmenter()) as p:  # type: ignore[arg-type]
        src = p.images.url_for(llama_task["taskObject"])
        status, raw = _request(
            p.url + "api/segment", {"src": src, "points": [[250, 60], [250, 300], [100, 180], [400, 180]]}
        )
        assert status == 200 and json.loads(raw)["refine"] is None


def test_malformed_prompts_get_a_short_400(llama_task: dict[str, Any]) -> None:
    with preview_template("builtin:semantic", llama_task, segmenter=SlowSegmenter()) as p:  # type: ignore[arg-type]
        src = p.images.url_for(llama_task["taskObject"])
        pts = [[200, 50], [210, 300], [100, 200], [400, 180]]
        for body, expected in [
            ({"src": src, "points": pts, "clicks": [1, 2]}, "click 0 must be [x, y, true|false]"),
            ({"src": src, "points": pts, "clicks": [[1, 2, "false"]]}, "click 0 must be [x, y, true|false]"),
            ({"src": src, "points": [["a" * 5000, "b"]] * 4}, "exactly 4 extreme points"),
            ({"src": src, "points": [[1, 2]] * 3}, "exactly 4 extreme points"),
            ({"src": src, "points": pts, "clicks": "abc"}, '"clicks"'),
        ]:
            status, raw = _request(p.url + "api/segment", body)
            assert status == 400 and expected in json.loads(raw)["error"], raw[:300]
            assert len(raw) < 400 and b"aaaaaaaaaa" not in raw


def test_a_flood_of_idle_connections_is_outlived(llama_task: dict[str, Any]) -> None:
    """200 connections that say nothing take at most MAX_THREADS threads, each for request_timeout; a real
    request that arrives behind them is still answered."""
    import gt_widget.preview.server as server

    with preview_template("builtin:semantic", llama_task, segmenter=SlowSegmenter(), request_timeout=1.0) as p:  # type: ignore[arg-type]
        host, port = urlsplit(p.url).hostname, urlsplit(p.url).port
        idle = [socket.create_connection((host, port), timeout=10) for _ in range(200)]
        try:
            t0 = time.perf_counter()
            assert _request(p.url, timeout=20)[0] == 200
            assert time.perf_counter() - t0 < 15
            assert threading.active_count() < server.MAX_THREADS + 40
        finally:
            for s in idle:
                s.close()


def test_a_switch_of_image_waits_for_the_running_refinement(llama_task: dict[str, Any], grabcut_dir: Path) -> None:
    """A template with two images: the segmenter never switches images while a refinement of the other runs."""
    from tests.preview.helpers import TwoStageSegmenter

    seg = TwoStageSegmenter(delay=1.0, inset=10)
    sheep = str(grabcut_dir / "images" / "sheep.jpg")
    source = '<img src="{{ task.input.taskObject | grant_read_access }}"><img src="{{ task.input.other | grant_read_access }}">'
    with preview_template(source, {**llama_task, "other": sheep}, segmenter=seg) as p:  # type: ignore[arg-type]
        a = p.images.url_for(llama_task["taskObject"])
        b = p.images.url_for(sheep)
        pts = [[250, 60], [250, 300], [100, 180], [400, 180]]
        assert json.loads(_request(p.url + "api/segment", {"src": a, "points": pts})[1])["refine"] is not None
        assert seg.refine_started.wait(10)
        status, _ = _request(p.url + "api/segment", {"src": b, "points": [[50, 10], [50, 100], [10, 50], [100, 50]]})
        assert status == 200
    events = [c[0] for c in seg.calls]
    assert events[:6] == ["set_image", "first", "refine-start", "refined", "set_image", "first"], events
