"""Where a labeling session's images come from: a folder, a list, or an input manifest; local paths or ``s3://``.

One job: turn what the user passed into an ordered list of ``SourceItem`` (the ``source-ref`` plus the input
manifest line's other keys, which Ground Truth passes through to the output manifest, reference §3.1), and
give back a local file for each item. ``s3://`` objects are fetched with boto3 into a local cache (written
atomically: temp file in the same folder, then ``os.replace``). The S3 endpoint comes from the
``endpoint_url`` argument, else boto3's own configuration (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``
environment variables, profiles), so a local S3-compatible server works without code changes.

Choices: a folder lists its image files (by extension, not recursive) in sorted name order; relative
``source-ref`` paths in a local manifest are relative to the manifest's folder; local items keep the path
as given in a manifest, and become absolute paths for folders and lists (the output manifest then names a
file that exists).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gt_widget.errors import FormatError, GtWidgetError, ImageLoadError
from gt_widget.groundtruth.manifest import loads_manifest  # the one JSON Lines reader

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"})
"""File name endings a folder source picks up (case-insensitive)."""

MANIFEST_EXTENSIONS = frozenset({".manifest", ".jsonl", ".jsonlines", ".ndjson"})
"""File name endings read as an input manifest (JSON Lines with ``source-ref``)."""


class SourceError(GtWidgetError, ValueError):
    """The images of a session could not be listed (empty folder, bad manifest line, unreachable S3)."""


@dataclass
class SourceItem:
    """One image of a session: ``ref`` is where to read it (local path or ``s3://`` URI); ``source_ref`` is the
    input line's ``source-ref`` exactly as written (a relative path stays relative), which the output manifest
    carries through (reference §8); ``extra`` holds the line's other keys (passed through too)."""

    ref: str
    extra: dict[str, Any] = field(default_factory=dict)
    source_ref: str = ""

    def __post_init__(self) -> None:
        if not self.source_ref:
            self.source_ref = self.ref

    @property
    def name(self) -> str:
        """File name part of ``ref`` (for display and exports)."""
        return self.ref.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_s3(self) -> bool:
        """Whether ``ref`` is an ``s3://`` URI."""
        return self.ref.startswith("s3://")


SourceSpec = str | os.PathLike[str] | Sequence[str | os.PathLike[str] | Mapping[str, Any]]
"""What ``list_sources`` accepts: a folder, a manifest file (local or s3), one image, or a list of paths /
``s3://`` URIs / manifest-line dicts."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/part`` -> ("bucket", "key/part"); raises ``SourceError`` on anything else."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise SourceError(f"not an S3 URI: {uri!r}; expected s3://bucket/key")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client; ``endpoint_url`` None lets boto3 read ``AWS_ENDPOINT_URL_S3`` and its usual config."""
    import boto3

    kwargs: dict[str, Any] = {}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return boto3.client("s3", **kwargs)


def _s3_error_message(uri: str, exc: BaseException) -> str:
    return (
        f"cannot read {uri}: {exc}. Check the bucket and key, your AWS credentials and region, and the "
        "endpoint (AWS_ENDPOINT_URL_S3 or the session's s3_endpoint_url for an S3-compatible server)"
    )


def _is_manifest_name(name: str) -> bool:
    return Path(name).suffix.lower() in MANIFEST_EXTENSIONS


def parse_manifest(text: str, *, origin: str, base_dir: Path | None = None) -> list[SourceItem]:
    """Items of an input manifest (JSON Lines, ``\\n`` or ``\\r\\n``, blank lines skipped; reference §3.1).

    Each line needs ``source-ref`` (image segmentation works on images, so inline ``source`` text is rejected);
    ``base_dir`` resolves relative local paths.
    """
    items = [
        _item_from_mapping(obj, f"{origin} line {number}", base_dir)
        for number, obj in enumerate(loads_manifest(text, source=origin, check=False), start=1)
    ]
    if not items:
        raise SourceError(f"{origin} has no lines; add one JSON object with a 'source-ref' per image")
    return items


def _item_from_mapping(obj: Mapping[str, Any], where: str, base_dir: Path | None) -> SourceItem:
    ref = obj.get("source-ref")
    if not isinstance(ref, str) or not ref:
        hint = " (inline 'source' text cannot be segmented)" if "source" in obj else ""
        raise FormatError(f"{where} has no 'source-ref' image URI{hint}; keys found: {sorted(obj)}")
    written = ref
    if not ref.startswith("s3://") and "://" not in ref and base_dir is not None and not Path(ref).is_absolute():
        ref = str(base_dir / ref)
    extra = {k: v for k, v in obj.items() if k != "source-ref"}
    return SourceItem(ref=ref, extra=extra, source_ref=written)


def _folder_items(folder: Path) -> list[SourceItem]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise SourceError(
            f"folder {str(folder)!r} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "pass a folder of images, a list of paths, or an input manifest"
        )
    return [SourceItem(ref=str(p.resolve())) for p in files]


def _s3_prefix_items(uri: str, client: Any) -> list[SourceItem]:
    bucket, prefix = split_s3_uri(uri)
    keys: list[str] = []
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                key = str(entry["Key"])
                rest = key[len(prefix) :].lstrip("/")
                if "/" not in rest and Path(key).suffix.lower() in IMAGE_EXTENSIONS:
                    keys.append(key)
    except Exception as exc:
        raise SourceError(_s3_error_message(uri, exc)) from None
    if not keys:
        raise SourceError(f"no image files under {uri}; pass an s3:// prefix ending in '/' that holds images")
    return [SourceItem(ref=f"s3://{bucket}/{key}") for key in sorted(keys)]


def list_sources(source: SourceSpec, *, endpoint_url: str | None = None) -> list[SourceItem]:
    """The ordered images of ``source``: a folder, an input manifest (local or ``s3://``), an ``s3://`` prefix
    ending in ``/``, a single image, or a list of paths / URIs / manifest-line dicts."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith("s3://"):
            if text.endswith("/"):
                return _s3_prefix_items(text, s3_client(endpoint_url))
            if _is_manifest_name(text):
                data = _read_s3_bytes(text, s3_client(endpoint_url))
                return parse_manifest(data.decode("utf-8-sig"), origin=text)
            return [SourceItem(ref=text)]
        path = Path(text).expanduser()
        if path.is_dir():
            return _folder_items(path)
        if not path.exists():
            raise SourceError(
                f"{text!r} does not exist; pass a folder of images, an input manifest (.manifest/.jsonl), "
                "an image file or s3:// URI, or a list of them"
            )
        if _is_manifest_name(path.name):
            try:
                content = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise SourceError(f"cannot read manifest {text!r}: {exc}") from None
            return parse_manifest(content, origin=text, base_dir=path.resolve().parent)
        return [SourceItem(ref=str(path.resolve()))]
    if isinstance(source, (bytes, bytearray)):
        raise SourceError("pass a folder, a manifest path or a list of image paths, not bytes")
    items: list[SourceItem] = []
    for i, entry in enumerate(_as_iterable(source)):
        if isinstance(entry, Mapping):
            items.append(_item_from_mapping(entry, f"item {i} of the source list", None))
        elif isinstance(entry, (str, os.PathLike)):
            text = os.fspath(entry)
            items.append(SourceItem(ref=text if "://" in text else str(Path(text).expanduser().resolve())))
        else:
            raise SourceError(
                f"item {i} of the source list is a {type(entry).__name__}; use a path, an s3:// URI or a "
                "manifest-line dict with 'source-ref'"
            )
    if not items:
        raise SourceError("the source list is empty; give at least one image")
    return items


def _as_iterable(source: object) -> Iterable[Any]:
    if isinstance(source, Iterable):
        return source
    raise SourceError(
        f"cannot use a {type(source).__name__} as a session source; pass a folder, a manifest, or a list of images"
    )


def _read_s3_bytes(uri: str, client: Any) -> bytes:
    bucket, key = split_s3_uri(uri)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        return bytes(body.read())
    except Exception as exc:
        raise SourceError(_s3_error_message(uri, exc)) from None


class ImageCache:
    """Local files for ``SourceItem``s: local refs are returned as they are; ``s3://`` refs are downloaded once
    into ``cache_dir/<bucket>/<key>`` (atomically; a download that is already there is reused). Thread-safe:
    the session prefetches the next image in a background thread."""

    def __init__(self, cache_dir: str | os.PathLike[str], *, endpoint_url: str | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.endpoint_url = endpoint_url
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = s3_client(self.endpoint_url)
            return self._client

    def local_path(self, item: SourceItem) -> Path:
        """A local file holding ``item``'s bytes; raises ``ImageLoadError`` when it cannot be had."""
        if not item.is_s3:
            if "://" in item.ref:
                raise ImageLoadError(f"cannot read {item.ref!r}: only local paths and s3:// URIs are supported")
            return Path(item.ref)
        bucket, key = split_s3_uri(item.ref)
        if not key or key.endswith("/"):
            raise ImageLoadError(f"{item.ref!r} names a prefix, not an image object")
        target = self.cache_dir / bucket / Path(*key.split("/"))
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                self._s3().download_fileobj(bucket, key, fh)
            Path(tmp).replace(target)
        except Exception as exc:
            Path(tmp).unlink(missing_ok=True)
            raise ImageLoadError(_s3_error_message(item.ref, exc)) from None
        return target
