"""Issue 11's silent wrong results and raw tracebacks: each now has a rule, a warning or an ``error:`` line."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gt_widget.cli import main
from gt_widget.errors import GtWidgetWarning, ImageLoadError, PromptError
from gt_widget.imageio import image_size, load_image
from gt_widget.segment.base import validate_clicks, validate_extreme_points
from gt_widget.segment.grabcut import GrabCutSegmenter
from gt_widget.widget import SegmentationWidget
from gt_widget.widget.state import WidgetError
from gt_widget.widget.testing import BoxSegmenter

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "gt_widget" / "data"


# ------------------------------------------------------------------------------------------------ images


def test_float_image_in_unit_range_with_a_small_overshoot_stays_bright() -> None:
    img = np.full((4, 4, 3), 0.8, np.float32)
    img[0, 0, 0] = 1.02  # e.g. after bicubic resampling
    with pytest.warns(GtWidgetWarning, match="1 float pixel value"):
        out = load_image(img)
    assert out[1, 1].tolist() == [204, 204, 204]  # 0.8 * 255, not 0.8 read as 0..255 (black)
    assert out[0, 0, 0] == 255


def test_float_image_in_0_255_range_is_still_read_as_such() -> None:
    img = np.full((2, 2), 200.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(img)[0, 0].tolist() == [200, 200, 200]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(np.full((2, 2), 0.5))[0, 0].tolist() == [128, 128, 128]


def test_animated_gif_and_multipage_tiff_warn_and_use_the_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    tif = tmp_path / "pages.tif"
    frames[0].save(tif, save_all=True, append_images=frames[1:])
    for path in (gif, tif):
        with pytest.warns(GtWidgetWarning, match="2 frames.*first frame"):
            out = load_image(path)
        assert out.shape == (6, 8, 3) and out[0, 0, 0] > 200 and out[0, 0, 2] < 50
    one = tmp_path / "still.gif"
    frames[0].save(one)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(one)


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "s3://bucket/cat.png", "http://x/y.jpg"])
def test_url_is_named_as_a_url_not_mangled_into_not_found(url: str) -> None:
    for call in (load_image, image_size):
        with pytest.raises(ImageLoadError) as info:
            call(url)
        message = str(info.value)
        assert url in message and "URL" in message and "not found" not in message


# ------------------------------------------------------------------------------------------------ prompts


def test_click_polarity_must_be_a_bool() -> None:
    _xy, pos = validate_clicks([(1, 1, False), (2, 2, np.bool_(True)), (3, 3, 0), (4, 4, 1)], (10, 10))
    assert pos.tolist() == [False, True, False, True]
    for bad in ("false", "true", "no", None, 0.5, 2):
        with pytest.raises(PromptError, match="polarity must be True"):
            validate_clicks([(1, 1, bad)], (10, 10))


def test_identical_extreme_points_are_refused_and_collinear_ones_warn() -> None:
    with pytest.raises(PromptError, match="same point"):
        validate_extreme_points([(5, 5)] * 4, (20, 20))
    for line in ([(2, 5), (8, 5), (12, 5), (15, 5)], [(2, 2), (6, 6), (10, 10), (14, 14)]):
        with pytest.warns(GtWidgetWarning, match="one line"):
            validate_extreme_points(line, (20, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_extreme_points([(10, 2), (10, 18), (2, 10), (18, 10)], (20, 20))


@pytest.fixture(scope="module")
def mobilesam(weights_path: Path) -> object:
    from gt_widget.segment import load_segmenter

    seg = load_segmenter("mobilesam", weights=weights_path)
    seg.set_image(DATA / "coffee.png")
    return seg


def test_mobilesam_refuses_a_lone_negative_click(mobilesam: object) -> None:
    h, w = mobilesam.image_shape  # type: ignore[attr-defined]
    with pytest.raises(PromptError, match="only negative clicks"):
        mobilesam.predict(clicks=[(w // 2, h // 2, False)])  # type: ignore[attr-defined]
    pred = mobilesam.predict(clicks=[(w // 2, h // 2, True)])  # type: ignore[attr-defined]
    assert pred.mask.any()
    # with a mask to correct, a negative click is what it should be: a removal
    after = mobilesam.predict(clicks=[(w // 2, h // 2, True), (w // 2, h // 2 + 5, False)], previous=pred)  # type: ignore[attr-defined]
    assert after.mask.shape == pred.mask.shape


def test_grabcut_refuses_a_lone_negative_click() -> None:
    seg = GrabCutSegmenter()
    seg.set_image(np.zeros((30, 40, 3), np.uint8))
    with pytest.raises(PromptError, match="only negative clicks"):
        seg.predict(clicks=[(10, 10, False)])


# ------------------------------------------------------------------------------------------------ widget


def test_brush_radius_inf_and_nan_are_clear_errors() -> None:
    w = SegmentationWidget(np.zeros((20, 30, 3), np.uint8), ["cat"], segmenter=BoxSegmenter())
    for bad in (float("inf"), float("nan"), "big", 0.2):
        with pytest.raises(WidgetError, match="brush radius"):
            w.brush([(5, 5)], radius=bad)  # type: ignore[arg-type]
        with pytest.raises(WidgetError, match="brush radius"):
            w.brush_radius = bad  # type: ignore[assignment]
    assert not w.label_map.any()
    w.brush([(5, 5)], radius=1e9)  # huge but finite: the whole image
    assert w.label_map.all()


# ------------------------------------------------------------------------------------------------ CLIs


def _prompts(tmp_path: Path, table: dict[str, object]) -> Path:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(table))
    return path


def _gif_folder(tmp_path: Path) -> Path:
    src = tmp_path / "imgs"
    src.mkdir()
    yy, xx = np.mgrid[0:60, 0:80]
    disc = (xx - 40) ** 2 + (yy - 30) ** 2 <= 15**2
    img = np.where(disc[..., None], (230, 200, 20), (20, 40, 160)).astype(np.uint8)
    Image.fromarray(img).save(src / "disc.gif")
    return src


def test_segment_reads_gif_and_fails_on_prompt_keys_that_match_no_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _gif_folder(tmp_path)
    box = {"label": "sun", "box": [24, 14, 56, 46]}
    prompts = _prompts(tmp_path, {"disc.gif": [box], "dsic.gif": [box]})
    args = ["segment", str(src), "--prompts", str(prompts), "--out", str(tmp_path / "out")]
    code = main([*args, "--segmenter", "grabcut", "--quiet"])
    out = capsys.readouterr().out
    assert "pre-labeled 1 image(s)" in out  # the .gif was read, not skipped
    assert "'dsic.gif' matches no image" in out
    assert code == 1
    report = json.loads((tmp_path / "out" / "gt-widget-prelabel" / "prelabel-report.json").read_text())
    assert report["unmatched_prompts"] == ["dsic.gif"]


def test_segment_reports_a_multiframe_image_as_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    frames = [Image.new("RGB", (40, 30), c) for c in ((20, 40, 160), (200, 0, 0))]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    prompts = _prompts(tmp_path, {"anim.gif": [{"label": "x", "box": [5, 5, 20, 20]}]})
    code = main(
        [
            "segment",
            str(src),
            "--prompts",
            str(prompts),
            "--out",
            str(tmp_path / "o"),
            "--segmenter",
            "grabcut",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "warning" in out and "first frame" in out


def test_segment_refuses_url_source_refs_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "in.manifest"
    manifest.write_text(json.dumps({"source-ref": "https://example.com/a.png"}) + "\n")
    prompts = _prompts(tmp_path, {"https://example.com/a.png": [{"label": "x", "box": [1, 1, 5, 5]}]})
    code = main(["segment", str(manifest), "--prompts", str(prompts), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "'https://example.com/a.png' is a URL" in err


def test_disk_errors_in_the_cli_are_error_lines_not_tracebacks(tmp_path: Path) -> None:
    src = _gif_folder(tmp_path)
    prompts = _prompts(tmp_path, {"disc.gif": [{"label": "sun", "box": [24, 14, 56, 46]}]})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cmd = [sys.executable, "-m", "gt_widget.cli", "segment", str(src), "--prompts", str(prompts)]
    cmd += ["--out", str(blocker / "out"), "--segmenter", "grabcut", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: Not a directory:") and str(blocker) in proc.stderr


def test_segment_names_an_s3_source_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = _prompts(tmp_path, {})
    with pytest.raises(SystemExit) as info:
        main(["segment", "s3://bucket/images/", "--prompts", str(prompts), "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert "'s3://bucket/images/' is a URL" in capsys.readouterr().err


def test_widget_corrective_click_refuses_a_string_polarity() -> None:
    w = SegmentationWidget(np.zeros((20, 30, 3), np.uint8), ["cat"], segmenter=BoxSegmenter())
    w.auto_segment([(15, 2), (15, 17), (5, 10), (25, 10)])
    before = w.label_map.copy()
    with pytest.raises(PromptError, match="polarity must be True"):
        w.corrective_click(15, 10, positive="false")  # type: ignore[arg-type]
    assert np.array_equal(w.label_map, before)
