"""Issue 12's job-flow details: worker instructions for workers, Markdown URLs with parentheses, the
``template render --input`` forms, ``s3://`` kept intact in errors, and the job's offline preview."""

from __future__ import annotations

import html
import json
import re
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from gt_widget.cli import main
from gt_widget.groundtruth.bundle import build_bundle
from gt_widget.groundtruth.instructions import (
    WORKER_SUBMIT,
    ExampleImage,
    markdown_images,
    markdown_to_html,
    worker_text,
)
from gt_widget.groundtruth.notebook import read_notebook

REPO = Path(__file__).resolve().parents[2]

WIDGET_FULL = """## Full instructions

1. Pick the label (keys 1-9) and the *Auto-segment* tool (key `a`).
2. Click the four extreme points of one object. The mask appears in the label's colour.
3. Or use corrective clicks (`c`; hold shift for a negative click).
4. Clean up edges with the brush (`b`) and eraser (`e`); `z` undoes, `y` redoes.
5. Shadows on the table do not belong to the object.
6. Move to the next image with *Next*; your work is saved automatically."""


def test_worker_text_drops_widget_advice_and_keeps_the_labeling_rules() -> None:
    out = worker_text(WIDGET_FULL)
    assert out is not None
    for widget_only in ("keys 1-9", "key `a`", "`c`", "shift", "`b`", "`z`", "Next", "saved automatically"):
        assert widget_only not in out, widget_only
    assert "1. Pick the label and the *Auto-segment* tool." in out
    assert "4. Clean up edges with the brush and eraser." in out
    assert "2. Click the four extreme points of one object. The mask appears in the label's colour." in out
    assert "5. Shadows on the table do not belong to the object." in out
    assert f"6. {WORKER_SUBMIT}" in out
    assert worker_text("Paint every cat (the whole body).") == "Paint every cat (the whole body)."
    assert worker_text(None) is None


def test_job_from_the_real_quickstart_has_worker_instructions() -> None:
    quickstart = REPO / "notebooks" / "quickstart.ipynb"
    if not quickstart.exists():
        pytest.skip("notebooks/quickstart.ipynb is not in this checkout")
    spec = read_notebook(quickstart)
    text = (spec.short_instructions or "") + (spec.full_instructions or "")
    assert "extreme points" in text  # the labeling rules are kept
    for widget_only in ("keys 1-9", "(key `a`)", "saved automatically", "with *Next*"):
        assert widget_only not in text, widget_only


def test_markdown_urls_with_parentheses_are_whole() -> None:
    out = markdown_to_html("See [the cup](https://en.wikipedia.org/wiki/Cup_(vessel)) (a page).")
    assert 'href="https://en.wikipedia.org/wiki/Cup_(vessel)"' in out
    assert out.endswith("</a> (a page).</p>")
    assert markdown_images("![a cup](s3://b/cups/cup_(1).png)")[0].src == "s3://b/cups/cup_(1).png"


def _template(tmp_path: Path) -> Path:
    path = tmp_path / "t.liquid.html"
    path.write_text("<p>{{ task.input.taskObject }}|{{ task.input.labels | to_json }}</p>", encoding="utf-8")
    return path


def test_template_render_input_takes_inline_json_and_a_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = _template(tmp_path)
    inline = '{"taskObject": "a & b", "labels": ["cat"]}'
    assert main(["template", "render", str(template), "--input", inline]) == 0
    assert html.unescape(capsys.readouterr().out.strip()) == '<p>a & b|["cat"]</p>'
    task = tmp_path / "task.json"
    task.write_text(inline, encoding="utf-8")
    assert main(["template", "render", str(template), "--input", str(task)]) == 0
    assert html.unescape(capsys.readouterr().out.strip()) == '<p>a & b|["cat"]</p>'
    assert main(["template", "render", str(template), "--input", '{"taskObject": ']) == 2
    assert "inline JSON but is not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["job", "validate", "s3://bucket/gt/request.json"],
        ["template", "render", "s3://bucket/gt/template.liquid.html", "--input", "{}"],
        ["job", "render", "s3://bucket/gt/job"],
    ],
)
def test_s3_uris_stay_intact_in_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    uri = next(a for a in argv if a.startswith("s3://"))
    assert f"'{uri}' is a URL" in err and "s3:/b" not in err.replace("s3://", "")


def test_s3_input_uri_is_named_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "render", str(_template(tmp_path)), "--input", "s3://bucket/task.json"]) == 2
    assert "'s3://bucket/task.json' is a URL" in capsys.readouterr().err


def test_job_preview_serves_the_rendered_task_with_local_images(tmp_path: Path) -> None:
    img = tmp_path / "cat.png"
    Image.new("RGB", (40, 30), (200, 100, 50)).save(img)
    good = tmp_path / "good.png"
    Image.new("RGB", (20, 20), (0, 200, 0)).save(good)
    bundle = build_bundle(
        labels=["cat"],
        mode="semantic",
        sources=[str(img)],
        s3_prefix="s3://bucket/gt",
        role_arn="arn:aws:iam::123456789012:role/GroundTruth",
        workteam_arn="arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
        job_name="cats",
        good_examples=[ExampleImage(str(good), "tight")],
        base_dir=tmp_path,
    )
    template, task = bundle.preview_source()
    assert task["taskObject"] == str(img.resolve()) and "s3://bucket" not in template
    preview = bundle.preview(segmenter="grabcut")
    try:
        with urllib.request.urlopen(preview.url, timeout=10) as resp:
            page = resp.read().decode("utf-8")
        assert "crowd-semantic-segmentation" in page and "<iframe" in preview._repr_html_()
        assert json.dumps(["cat"]) in html.unescape(preview.html)
        served = re.findall(r'src="(http://127\.0\.0\.1:[^"]+)"', html.unescape(preview.html))
        assert len(served) == 2  # the image to label and the good example, from the local files
        for url, path in zip(served, (img, good), strict=True):
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.read() == path.read_bytes()
    finally:
        preview.stop()
