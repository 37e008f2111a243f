"""One label rule set (``validate_label_names``) used by the widget, the session, ``segment`` and job creation.

A name accepted while labeling must never be refused when the job is built, and the other way round.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gt_widget.cli import main
from gt_widget.errors import GtWidgetError, LabelError
from gt_widget.groundtruth.bundle import build_bundle
from gt_widget.groundtruth.labels import validate_label_names
from gt_widget.widget import LabelingSession, SegmentationWidget
from gt_widget.widget.testing import BoxSegmenter

ROLE = "arn:aws:iam::123456789012:role/GroundTruth"
TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team"

BAD = [
    (["cat\ndog"], "line break"),
    (["cat\tdog"], "line break"),
    (["cat\u2028dog"], "line break"),
    (["BACKGROUND"], "index 0"),
    (["cat", "cat"], "duplicate"),
    ([], "empty"),
    (["  "], "blank"),
    (["x" * 257], "at most 256"),
    ([f"l{i}" for i in range(256)], "at most 255"),
    ("cat", "not one string"),
    (None, "list of strings"),
    ([3], "must be a string"),
]
GOOD = [["Background"], ["background", "cat"], ["cat 🐱", "Dog"], ["x" * 256], [f"l{i}" for i in range(255)]]


@pytest.mark.parametrize(("labels", "needle"), BAD)
def test_rule_set_refuses_with_a_message(labels: object, needle: str) -> None:
    with pytest.raises(LabelError, match=needle):
        validate_label_names(labels)


@pytest.mark.parametrize("labels", GOOD)
def test_rule_set_accepts_what_ground_truth_accepts(labels: list[str]) -> None:
    assert validate_label_names(labels) == labels


def _job(labels: list[str], tmp_path: Path) -> list[str]:
    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(img)
    bundle = build_bundle(
        labels=labels,
        mode="semantic",
        sources=[str(img)],
        s3_prefix="s3://bucket/gt",
        role_arn=ROLE,
        workteam_arn=TEAM,
        job_name="job",
        base_dir=tmp_path,
    )
    return bundle.problems


def _widget(labels: object) -> None:
    SegmentationWidget(np.zeros((8, 8, 3), np.uint8), labels, segmenter=BoxSegmenter())  # type: ignore[arg-type]


def _session(labels: object, tmp_path: Path) -> None:
    img = tmp_path / "s.png"
    Image.new("RGB", (8, 8)).save(img)
    LabelingSession([str(img)], labels, tmp_path / "out", segmenter=BoxSegmenter(), prefetch=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("labels", [b for b, _ in BAD if isinstance(b, list)])
def test_widget_session_and_job_refuse_the_same_labels(labels: list[object], tmp_path: Path) -> None:
    with pytest.raises(LabelError):
        _widget(labels)
    with pytest.raises(LabelError):
        _session(labels, tmp_path)
    try:
        problems = _job(labels, tmp_path)  # type: ignore[arg-type]
    except GtWidgetError:
        return
    assert any(p.startswith("labels") for p in problems), problems


@pytest.mark.parametrize("labels", GOOD[:3])
def test_widget_session_and_job_accept_the_same_labels(labels: list[str], tmp_path: Path) -> None:
    _widget(labels)
    _session(labels, tmp_path)
    assert not [p for p in _job(labels, tmp_path) if p.startswith("labels")]


def test_widget_without_labels_says_what_to_pass() -> None:
    with pytest.raises(LabelError, match=r"labels must be a list of strings like \['cat', 'dog'\]"):
        _widget(None)


def test_failed_session_leaves_nothing_that_blocks_the_retry(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="BACKGROUND"):
        _session(["BACKGROUND"], tmp_path)
    _session(["cat"], tmp_path)  # the retry with fixed labels works


def _prompts(tmp_path: Path, labels: list[str]) -> tuple[Path, Path]:
    src = tmp_path / "imgs"
    src.mkdir()
    Image.new("RGB", (40, 30), (20, 90, 200)).save(src / "a.png")
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"a.png": [{"label": labels[0], "box": [5, 5, 20, 20]}]}))
    return src, prompts


@pytest.mark.parametrize(
    ("labels", "needle"),
    [(["cat", "cat"], "duplicate"), ([f"l{i}" for i in range(300)], "at most 255"), (["BACKGROUND"], "index 0")],
)
def test_segment_cli_refuses_bad_labels_with_an_error_line(
    labels: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, prompts = _prompts(tmp_path, labels)
    args = ["segment", str(src), "--prompts", str(prompts), "--out", str(tmp_path / "out")]
    code = main([*args, "--segmenter", "grabcut", "--quiet", "--labels", *labels])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
