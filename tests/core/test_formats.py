"""Ground Truth output formats: worker answers and consolidated PNGs round-trip exactly."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from gt_widget.errors import FormatError
from gt_widget.groundtruth import formats as f
from gt_widget.palette import PALETTE, label_colors


def _random_map(rng: np.random.Generator, n: int, shape: tuple[int, int] = (37, 53)) -> np.ndarray:
    return rng.integers(0, n + 1, size=shape).astype(np.uint8)


def test_palette_follows_ground_truth_order() -> None:
    assert list(label_colors(["a", "b", "c", "d", "e"]).values()) == [
        "#2ca02c",
        "#1f77b4",
        "#ff7f0e",
        "#d62728",
        "#9467bd",
    ]
    assert len(set(PALETTE)) == 255 and "#ffffff" not in PALETTE


def test_semantic_answer_round_trip_and_painted_only(rng: np.random.Generator) -> None:
    labels = ["cat", "dog", "bird"]
    lm = _random_map(rng, 2)  # "bird" never painted
    answer = f.semantic_answer(lm, labels)
    assert set(answer["labelMappings"]) == {"cat", "dog"}
    assert answer["inputImageProperties"] == {"height": 37, "width": 53}
    png = Image.open(io.BytesIO(base64.b64decode(answer["labeledImage"]["pngImageData"])))
    rgba = np.asarray(png.convert("RGBA"))
    assert tuple(rgba[lm == 1][0]) == (0x2C, 0xA0, 0x2C, 255)
    assert (rgba[lm == 0][:, 3] == 0).all()
    for shape in (f.worker_response(answer), answer, {"annotatedResult": answer}, [{"x": answer}]):
        back = f.read_answer(shape, labels)
        assert isinstance(back, f.SemanticResult)
        np.testing.assert_array_equal(back.label_map, lm)


def test_instance_answer_round_trip(rng: np.random.Generator) -> None:
    inst = [f.Instance("cat", PALETTE[0]), f.Instance("cat", PALETTE[1]), f.Instance("dog", PALETTE[2])]
    im = _random_map(rng, 3)
    back = f.read_answer(f.instance_answer(im, inst))
    assert isinstance(back, f.InstanceResult)
    np.testing.assert_array_equal(back.instance_map, im)
    assert [i.label for i in back.instances] == ["cat", "cat", "dog"]
    lm = back.label_map(["cat", "dog"])
    assert set(np.unique(lm[im == 3]).tolist()) == {2}


def test_consolidated_png_is_palette_indexed(rng: np.random.Generator) -> None:
    lm = _random_map(rng, 4)
    colors = list(label_colors(["a", "b", "c", "d"]).values())
    data = f.consolidated_png(lm, colors)
    img = Image.open(io.BytesIO(data))
    assert img.mode == "P"
    assert img.getpalette()[:6] == [255, 255, 255, 0x2C, 0xA0, 0x2C]
    np.testing.assert_array_equal(f.read_consolidated_png(data), lm)
    rgb_png = io.BytesIO()
    img.convert("RGB").save(rgb_png, format="PNG")
    cmap = f.internal_color_map(["a", "b", "c", "d"])
    np.testing.assert_array_equal(f.read_consolidated_png(rgb_png.getvalue(), cmap), lm)


def test_output_manifest_line_shape() -> None:
    line = f.output_manifest_line(
        "s3://b/img.jpg", "label-ref", "s3://b/out.png", ["cat"], job_name="my-job", extra={"id": 7}
    )
    meta = line["label-ref-metadata"]
    assert meta["internal-color-map"]["0"] == {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.0}
    assert meta["internal-color-map"]["1"]["hex-color"] == "#2ca02c"
    assert meta["job-name"] == "labeling-job/my-job" and meta["type"] == "groundtruth/semantic-segmentation"
    assert line["id"] == 7 and f.find_label_attribute(line) == "label-ref"
    with pytest.raises(FormatError, match="must end in '-ref'"):
        f.output_manifest_line("s3://b/i.jpg", "label", "s3://b/o.png", ["cat"], job_name="j")


def test_bad_payloads_get_clear_errors() -> None:
    with pytest.raises(FormatError, match="no segmentation answer"):
        f.read_answer({"foo": 1})
    with pytest.raises(FormatError, match="not valid JSON"):
        f.read_answer("{nope")
    with pytest.raises(FormatError, match="at most 255"):
        f.semantic_answer(np.zeros((2, 2), np.uint8), [str(i) for i in range(300)])
