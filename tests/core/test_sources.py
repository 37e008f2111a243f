"""Session sources: folders, lists, input manifests (local and s3:// through a real moto S3 server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gt_widget.errors import FormatError, ImageLoadError
from gt_widget.imageio import load_image
from gt_widget.sources import ImageCache, SourceError, SourceItem, list_sources, s3_client


def _img(path: Path, color: tuple[int, int, int] = (10, 20, 30), size: tuple[int, int] = (8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def test_folder_lists_images_sorted(tmp_path: Path) -> None:
    _img(tmp_path / "b.png")
    _img(tmp_path / "a.JPG")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    _img(tmp_path / "sub" / "c.png")
    items = list_sources(tmp_path)
    assert [Path(i.ref).name for i in items] == ["a.JPG", "b.png"]
    assert all(Path(i.ref).is_absolute() for i in items)


def test_local_manifest_relative_paths_and_extra_keys(tmp_path: Path) -> None:
    _img(tmp_path / "imgs" / "one.png")
    lines = [
        {"source-ref": "imgs/one.png", "batch": 3, "meta": {"k": "v"}},
        {"source-ref": "s3://bucket/two.jpg"},
    ]
    manifest = tmp_path / "input.manifest"
    manifest.write_text("\r\n".join(json.dumps(x) for x in lines) + "\r\n\r\n")
    items = list_sources(manifest)
    assert items[0].ref == str(tmp_path / "imgs" / "one.png")
    assert items[0].extra == {"batch": 3, "meta": {"k": "v"}}
    assert items[1] == SourceItem("s3://bucket/two.jpg", {})


def test_list_of_paths_uris_and_dicts(tmp_path: Path) -> None:
    p = _img(tmp_path / "x.png")
    items = list_sources([p, "s3://b/k.png", {"source-ref": "s3://b/j.png", "id": 7}])
    assert [i.ref for i in items] == [str(p), "s3://b/k.png", "s3://b/j.png"]
    assert items[2].extra == {"id": 7}


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        ('{"source-ref": "a.png"}\nnot json\n', FormatError, "line 2 is not valid JSON"),
        ('{"source": "some text"}\n', FormatError, "inline 'source' text"),
        ("[1, 2]\n", FormatError, "not an object"),
        ("\n\n", SourceError, "has no lines"),
    ],
)
def test_bad_manifests(tmp_path: Path, content: str, error: type[Exception], match: str) -> None:
    manifest = tmp_path / "in.jsonl"
    manifest.write_text(content)
    with pytest.raises(error, match=match):
        list_sources(manifest)


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="holds no image files"):
        list_sources(tmp_path)
    with pytest.raises(SourceError, match="does not exist"):
        list_sources(tmp_path / "missing")
    with pytest.raises(SourceError, match="source list is empty"):
        list_sources([])
    with pytest.raises(SourceError, match="item 0"):
        list_sources([3.5])  # type: ignore[list-item]


def test_s3_manifest_and_prefix_through_moto(s3_endpoint: str, tmp_path: Path) -> None:
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="gt-in")
    colors = {"a.png": (200, 0, 0), "b.png": (0, 200, 0)}
    for name, color in colors.items():
        local = _img(tmp_path / "up" / name, color)
        client.upload_file(str(local), "gt-in", f"images/{name}")
    client.put_object(Bucket="gt-in", Key="images/readme.txt", Body=b"not an image")
    manifest = "\n".join(json.dumps({"source-ref": f"s3://gt-in/images/{n}", "n": i}) for i, n in enumerate(colors))
    client.put_object(Bucket="gt-in", Key="input.manifest", Body=manifest.encode())

    items = list_sources("s3://gt-in/input.manifest", endpoint_url=s3_endpoint)
    assert [(i.ref, i.extra) for i in items] == [
        ("s3://gt-in/images/a.png", {"n": 0}),
        ("s3://gt-in/images/b.png", {"n": 1}),
    ]
    assert [i.ref for i in list_sources("s3://gt-in/images/", endpoint_url=s3_endpoint)] == [
        "s3://gt-in/images/a.png",
        "s3://gt-in/images/b.png",
    ]

    cache = ImageCache(tmp_path / "cache", endpoint_url=s3_endpoint)
    local = cache.local_path(items[1])
    assert local == tmp_path / "cache" / "gt-in" / "images" / "b.png"
    assert tuple(load_image(local)[0, 0]) == (0, 200, 0)
    assert not list(local.parent.glob(".part-*"))
    # second call reuses the download
    mtime = local.stat().st_mtime_ns
    assert cache.local_path(items[1]).stat().st_mtime_ns == mtime

    with pytest.raises(ImageLoadError, match=re.escape("cannot read s3://gt-in/images/missing.png")):
        cache.local_path(SourceItem("s3://gt-in/images/missing.png"))
    with pytest.raises(SourceError, match=re.escape("cannot read s3://nobucket/input.manifest")):
        list_sources("s3://nobucket/input.manifest", endpoint_url=s3_endpoint)


def test_s3_endpoint_from_environment(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    client = s3_client()
    client.create_bucket(Bucket="gt-env")
    client.put_object(Bucket="gt-env", Key="m.jsonl", Body=b'{"source-ref": "s3://gt-env/x.png"}\n')
    buf = _img(tmp_path / "x.png", (1, 2, 3))
    client.upload_file(str(buf), "gt-env", "x.png")
    (item,) = list_sources("s3://gt-env/m.jsonl")
    arr = load_image(ImageCache(tmp_path / "c").local_path(item))
    assert arr.shape == (6, 8, 3) and np.all(arr == (1, 2, 3))
