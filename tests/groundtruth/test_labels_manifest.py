"""Label category config and input manifests: Ground Truth's documented format and limits, and round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gt_widget.errors import FormatError, ValidationError
from gt_widget.groundtruth.labels import label_config, parse_label_config, read_label_config, write_label_config
from gt_widget.groundtruth.manifest import (
    MAX_ATTRIBUTE_CHARS,
    dumps_manifest,
    loads_manifest,
    manifest_problems,
    read_manifest,
    write_manifest,
)


def test_label_config_document(tmp_path: Path) -> None:
    path = write_label_config(tmp_path / "labels.json", ["cat", "dög"])
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc == {"document-version": "2018-11-28", "labels": [{"label": "cat"}, {"label": "dög"}]}
    assert read_label_config(path) == ["cat", "dög"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def test_label_config_instructions() -> None:
    doc = label_config(["a"], short_instruction="<p>s</p>", full_instruction="<p>f</p>")
    assert doc["instructions"] == {"shortInstruction": "<p>s</p>", "fullInstruction": "<p>f</p>"}


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ([], "empty"),
        (["cat", "cat"], "twice"),
        (["x" * 257], "at most 256"),
        (["  "], "blank"),
        (["a\nb"], "control character"),
        (["BACKGROUND"], "reserved"),
        ([3], "must be a string"),
        ([f"l{i}" for i in range(256)], "at most 255"),
    ],
)
def test_bad_labels_are_refused_with_the_rule(labels: list[Any], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        label_config(labels)
    assert any(needle in p and p.startswith("labels") for p in info.value.problems), info.value.problems


def test_label_names_of_256_characters_are_fine() -> None:
    assert label_config(["x" * 256])["labels"][0]["label"] == "x" * 256


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{", "not valid JSON"),
        ('{"document-version": "2020-03-01", "labels": []}', "2018-11-28"),
        ('{"document-version": "2018-11-28"}', "'labels' list"),
        ('{"document-version": "2018-11-28", "labels": ["cat"]}', "each entry"),
        ('{"document-version": "2018-11-28", "labels": [{"label": "a"}, {"label": "a"}]}', "twice"),
    ],
)
def test_bad_label_config_files(text: str, needle: str) -> None:
    with pytest.raises(FormatError, match=needle):
        parse_label_config(text)


# ----------------------------------------------------------------------------------------------- manifest


def test_manifest_round_trip_and_crlf(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path / "in.manifest", ["s3://b/a.jpg", {"source-ref": "s3://b/é.jpg", "meta": {"k": [1]}}]
    )
    text = path.read_text(encoding="utf-8")
    assert text == '{"source-ref": "s3://b/a.jpg"}\n{"source-ref": "s3://b/é.jpg", "meta": {"k": [1]}}\n'
    assert read_manifest(path) == [{"source-ref": "s3://b/a.jpg"}, {"source-ref": "s3://b/é.jpg", "meta": {"k": [1]}}]
    assert loads_manifest(text.replace("\n", "\r\n")) == read_manifest(path)


def test_manifest_limits() -> None:
    big = {"source-ref": "s3://b/a.jpg", "note": "x" * MAX_ATTRIBUTE_CHARS}
    problems = manifest_problems([big])
    assert any("attribute 'note'" in p and "20000" in p for p in problems)
    line = {"source-ref": "s3://b/a.jpg", **{f"k{i}": "y" * 15_000 for i in range(7)}}
    assert any("100000 per line" in p for p in manifest_problems([line]))
    assert any("'$bad'" in p for p in manifest_problems([{"source-ref": "s3://b/a", "$bad": 1}]))
    assert any("neither" in p for p in manifest_problems([{"other": 1}]))
    assert any("s3://bucket/key" in p for p in manifest_problems([{"source-ref": "/local/a.jpg"}]))
    assert any("no lines" in p for p in manifest_problems([]))


def test_manifest_item_quota_depends_on_the_task() -> None:
    lines = [{"source-ref": f"s3://b/{i}.jpg"} for i in range(20_001)]
    assert any("at most 20000" in p for p in manifest_problems(lines, mode="semantic"))
    assert not manifest_problems(lines, mode="instance")


def test_manifest_problems_name_the_line() -> None:
    with pytest.raises(ValidationError) as info:
        dumps_manifest([{"source-ref": "s3://b/a.jpg"}, {"source-ref": 7}])
    assert info.value.problems == ["manifest line 2: 'source-ref' must be a non-empty string, got 7"]
    with pytest.raises(FormatError, match="line 2 is not valid JSON"):
        loads_manifest('{"source-ref": "s3://b/a"}\n{oops\n')
    with pytest.raises(FormatError, match="line 1 is a JSON list"):
        loads_manifest("[1]\n")


_keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda k: not k.startswith("$") and k != "source-ref"
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
_lines = st.builds(
    lambda ref, extra: {"source-ref": ref, **extra},
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40).map(
        lambda s: "s3://bucket/" + s
    ),
    st.dictionaries(_keys, _json_values, max_size=4),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_lines, min_size=1, max_size=6), st.booleans())
def test_manifest_writer_reader_round_trip(tmp_path: Path, lines: list[dict[str, Any]], crlf: bool) -> None:
    path = write_manifest(tmp_path / "m.manifest", lines)
    text = path.read_bytes().decode("utf-8")
    assert text.count("\n") == len(lines)  # one physical line per item, even with newlines in values
    if crlf:
        text = text.replace("\n", "\r\n")
    back = loads_manifest(text, require_s3=True)
    assert back == lines
    assert [list(x) for x in back] == [list(x) for x in lines]  # key order kept
