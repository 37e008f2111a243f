"""Images of a preview, served from 127.0.0.1: ``grant_read_access`` for a machine without a labeling job.

Side: the kernel owns the bytes (local files, or real S3 objects fetched once with boto3) and hands the
browser ``http://127.0.0.1:PORT/images/<token>/<name>`` URLs; the auto-segment endpoint decodes the same
bytes (``gt_widget.imageio.load_image``: RGB uint8 (H, W, 3), EXIF orientation applied as browsers do), so
the kernel's pixels are the pixels the worker clicked on.

Locations accepted: ``s3://bucket/key``, S3 https URLs (path or virtual-hosted style), ``file://`` URLs and
local paths (absolute, or relative to ``base_dirs``).
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import numpy as np

from gt_widget.errors import GtWidgetError, ImageLoadError

MAX_IMAGE_BYTES = 40 * 1024 * 1024
"""Ground Truth's image file size quota (reference §3.1); larger objects are refused."""


class PreviewError(GtWidgetError, ValueError):
    """A preview cannot serve what the template or the browser asked for."""


@dataclass
class _Entry:
    location: str
    name: str
    path: Path | None  # local file, or None for S3
    data: bytes | None = None  # S3 bytes once fetched
    content_type: str = "application/octet-stream"


def _is_s3(location: str) -> bool:
    from gt_widget.groundtruth.instructions import is_s3_location

    return is_s3_location(location)


class ImageStore:
    """Maps image locations to local URLs and serves their bytes (thread-safe)."""

    def __init__(self, base_dirs: Sequence[str | Path] = (), s3_client: Any = None) -> None:
        self.base_url = ""  # set by the server once it has a port: "http://127.0.0.1:PORT"
        self.base_dirs = [Path(d) for d in base_dirs] or [Path.cwd()]
        self._s3 = s3_client
        self._entries: dict[str, _Entry] = {}
        self._decoded: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------- registering

    def is_local(self, location: str) -> bool:
        """True for a ``file://`` URL or a path naming an existing file."""
        try:
            return self._local_path(location) is not None
        except OSError:
            return False

    def _local_path(self, location: str) -> Path | None:
        text = location.strip()
        if text.startswith("file://"):
            p = Path(unquote(urlsplit(text).path))
            return p if p.is_file() else None
        if "://" in text or text.startswith(("data:", "blob:")):
            return None
        p = Path(text).expanduser()
        if p.is_absolute():
            return p if p.is_file() else None
        for d in self.base_dirs:
            if (d / p).is_file():
                return (d / p).resolve()
        return None

    def url_for(self, location: str) -> str:
        """The local URL that serves ``location`` (registered on first use)."""
        loc = location.strip()
        token = hashlib.sha256(loc.encode()).hexdigest()[:20]
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                path = self._local_path(loc)
                if path is None and not _is_s3(loc):
                    raise PreviewError(
                        f"cannot serve image {loc!r}: it is neither an existing local file nor an S3 location "
                        "(s3://bucket/key); fix the task input's path"
                    )
                name = (path.name if path else loc.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]) or "image"
                ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
                entry = _Entry(loc, name, path, content_type=ctype)
                self._entries[token] = entry
        return f"{self.base_url}/images/{token}/{quote(entry.name)}"

    def presign(self, uri: str, expires_in: int = 3600) -> str:
        """A ``Presigner`` (``grant_read_access``) that returns local URLs; ``expires_in`` is ignored."""
        return self.url_for(uri)

    # ----------------------------------------------------------------------------------------- serving

    def token_of_url(self, url: str) -> str:
        """The id of a URL made by ``url_for``: absolute, or its path with or without the server's prefix."""
        path = urlsplit(url).path
        prefix = urlsplit(self.base_url).path
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix) :]
        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "images" or parts[2] not in self._entries:
            shown = url if len(url) <= 80 else url[:77] + "..."
            raise PreviewError(
                f"{shown!r} is not an image this preview serves; auto-segment works on the task image "
                "(src through grant_read_access)"
            )
        return parts[2]

    def fetch(self, token: str) -> tuple[bytes, str]:
        """(bytes, content type) of a registered image."""
        entry = self._entries.get(token)
        if entry is None:
            raise PreviewError(f"no image {token!r} in this preview")
        if entry.path is not None:
            try:
                size = entry.path.stat().st_size
                if size > MAX_IMAGE_BYTES:
                    raise PreviewError(
                        f"{entry.path} is {size / 2**20:.1f} MiB; Ground Truth accepts images up to 40 MiB"
                    )
                return entry.path.read_bytes(), entry.content_type
            except OSError as exc:
                raise PreviewError(f"cannot read image {str(entry.path)!r}: {exc}") from None
        if entry.data is None:
            entry.data, ctype = self._fetch_s3(entry.location)
            if ctype and ctype != "binary/octet-stream":
                entry.content_type = ctype
        return entry.data, entry.content_type

    def _fetch_s3(self, location: str) -> tuple[bytes, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        from gt_widget.groundtruth.templates import parse_s3_location, s3_client

        bucket, key = parse_s3_location(location)
        with self._lock:
            if self._s3 is None:
                self._s3 = s3_client()
        try:
            obj = self._s3.get_object(Bucket=bucket, Key=key)
            if int(obj.get("ContentLength") or 0) > MAX_IMAGE_BYTES:
                raise PreviewError(f"{location} is larger than Ground Truth's 40 MiB image quota")
            return obj["Body"].read(), str(obj.get("ContentType") or "")
        except (BotoCoreError, ClientError) as exc:
            raise PreviewError(
                f"cannot read {location} from S3 ({exc}); check the URI and your AWS credentials "
                "(aws configure, AWS_PROFILE or the AWS_* environment variables)"
            ) from None

    def image(self, token: str) -> np.ndarray:
        """RGB uint8 (H, W, 3) pixels of a registered image, decoded once."""
        with self._lock:
            cached = self._decoded.get(token)
        if cached is not None:
            return cached
        from PIL import Image, UnidentifiedImageError

        from gt_widget.imageio import load_image

        data, _ = self.fetch(token)
        try:
            pixels = load_image(Image.open(io.BytesIO(data)))
        except (OSError, UnidentifiedImageError) as exc:
            raise ImageLoadError(f"cannot decode image {self._entries[token].location!r}: {exc}") from None
        with self._lock:
            self._decoded[token] = pixels
        return pixels
