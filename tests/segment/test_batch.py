"""Batch pre-labeling with the GrabCut segmenter on generated images: outputs, manifests, failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gt_widget.errors import FormatError
from gt_widget.groundtruth.formats import read_consolidated_png
from gt_widget.segment.batch import list_images, load_prompts, prelabel
from gt_widget.segment.grabcut import GrabCutSegmenter


def _write_scene(path: Path, rng: np.random.Generator, centre: tuple[int, int]) -> np.ndarray:
    """A red disc (radius 30) on a noisy green background; returns the disc's mask."""
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    obj = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= 30**2
    img = np.empty((h, w, 3), np.float64)
    img[...] = (50, 150, 60)
    img[obj] = (210, 40, 40)
    img += rng.normal(0, 10, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return obj


def _extreme(cx: int, cy: int) -> list[list[int]]:
    return [[cx, cy - 30], [cx, cy + 30], [cx - 30, cy], [cx + 30, cy]]


@pytest.fixture
def folder(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, dict[str, np.ndarray]]:
    src = tmp_path / "images"
    src.mkdir()
    masks = {
        "a.png": _write_scene(src / "a.png", rng, (60, 60)),
        "b.jpg": _write_scene(src / "b.jpg", rng, (100, 55)),
        "c.png": _write_scene(src / "c.png", rng, (80, 60)),
    }
    (src / "broken.png").write_bytes(b"not a png at all")
    (src / "notes.txt").write_text("ignored: not an image")
    return src, masks


def test_folder_prelabel_writes_ground_truth_outputs(
    tmp_path: Path, folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    src, masks = folder
    prompts = {
        "a.png": [{"label": "ball", "extreme_points": _extreme(60, 60)}],
        "b.jpg": [{"label": "ball", "box": [70, 25, 130, 85]}, {"label": "spot", "box": [68, 23, 132, 87]}],
        "broken.png": [{"label": "ball", "box": [1, 1, 9, 9]}],
    }
    errors: list[str] = []
    report = prelabel(
        src,
        prompts,
        tmp_path / "out",
        segmenter=GrabCutSegmenter(),
        progress=False,
        on_error=lambda key, msg: errors.append(key),
    )
    assert report.labels == ["ball", "spot"]
    assert [Path(r).name for r in report.written] == ["a.png", "b.jpg"]
    assert [Path(k).name for k, _ in report.failed] == ["broken.png"] == [Path(e).name for e in errors]
    assert "cannot read image" in report.failed[0][1]
    assert [Path(r).name for r in report.no_prompts] == ["c.png"]
    assert "1 failed" in report.summary()

    lines = [json.loads(x) for x in report.manifest.read_text().splitlines()]
    assert [Path(line["source-ref"]).name for line in lines] == ["a.png", "b.jpg"]
    meta = lines[1]["label-ref-metadata"]
    assert meta["human-annotated"] == "no" and meta["type"] == "groundtruth/semantic-segmentation"
    assert [meta["internal-color-map"][k]["class-name"] for k in ("0", "1", "2")] == ["BACKGROUND", "ball", "spot"]
    # the consolidated PNG and the label-map PNG hold the same map; the later object paints over the earlier
    consolidated = read_consolidated_png(Path(lines[1]["label-ref"]).read_bytes())
    plain = np.asarray(Image.open(report.job_dir / "masks" / "00001_b.png"))
    np.testing.assert_array_equal(consolidated, plain)
    spot, truth = consolidated == 2, masks["b.jpg"]
    assert (spot & truth).sum() / (spot | truth).sum() > 0.9
    assert (consolidated == 1).sum() < 0.05 * truth.sum()  # the second object, same disc, painted over the first
    a_map = np.asarray(Image.open(report.job_dir / "masks" / "00000_a.png"))
    assert ((a_map == 1) & masks["a.png"]).sum() / ((a_map == 1) | masks["a.png"]).sum() > 0.9
    report_json = json.loads((report.job_dir / "prelabel-report.json").read_text())
    assert report_json["segmenter"] == "grabcut" and len(report_json["failed"]) == 1
    assert not list(report.job_dir.rglob("*.tmp"))  # atomic writes leave no temp files


def test_manifest_source_with_relative_paths_and_pass_through_keys(
    tmp_path: Path, folder: tuple[Path, dict[str, np.ndarray]]
) -> None:
    src, _ = folder
    manifest = tmp_path / "input.manifest"
    manifest.write_text(
        json.dumps({"source-ref": "images/a.png", "batch": 7})
        + "\n\n"
        + json.dumps({"source-ref": str(src / "c.png")})
        + "\n"
        + json.dumps({"source-ref": "images/missing.png"})
        + "\n"
    )
    items = list_images(manifest)
    assert items[0].path == tmp_path / "images" / "a.png" and items[0].extra == {"batch": 7}
    prompts = {
        "images/a.png": [{"label": "ball", "extreme_points": _extreme(60, 60)}],
        "c.png": [{"label": "ball", "extreme_points": _extreme(80, 60)}],
        "missing.png": [{"label": "ball", "box": [0, 0, 5, 5]}],
    }
    report = prelabel(manifest, prompts, tmp_path / "out", segmenter=GrabCutSegmenter(), progress=False, job_name="j1")
    assert report.written == ["images/a.png", str(src / "c.png")]
    assert report.failed[0][0] == "images/missing.png" and "not found" in report.failed[0][1]
    first = json.loads(report.manifest.read_text().splitlines()[0])
    assert first["batch"] == 7 and first["source-ref"] == "images/a.png"
    assert first["label-ref-metadata"]["job-name"] == "labeling-job/j1"


def test_prompt_errors_fail_only_their_image(tmp_path: Path, folder: tuple[Path, dict[str, np.ndarray]]) -> None:
    src, _ = folder
    prompts = {
        "a.png": [{"label": "ball", "extreme_points": [[1, 1], [2, 2], [3, 3]]}],
        "b.jpg": [{"label": "ball", "box": [0, 0, 5000, 5]}],
        "c.png": [{"label": "other", "box": [50, 30, 110, 90]}],
    }
    report = prelabel(src, prompts, tmp_path / "o", segmenter=GrabCutSegmenter(), labels=["ball"], progress=False)
    assert report.written == []
    msgs = dict((Path(k).name, m) for k, m in report.failed)
    assert "exactly 4" in msgs["a.png"] and "outside" in msgs["b.jpg"] and "not among the labels" in msgs["c.png"]
    assert report.manifest.read_text() == ""


@pytest.mark.parametrize(
    ("prompts", "needle"),
    [
        ([1, 2], "must be a JSON object"),
        ({"a.png": {"label": "x"}}, "must be a list"),
        ({"a.png": [{"label": "x"}]}, "extreme_points"),
        ({"a.png": [{"box": [1, 2, 3, 4]}]}, "label"),
        ({"a.png": [{"label": "x", "box": [1, 2, 3, 4], "extreme_points": []}]}, "label"),
    ],
)
def test_malformed_prompts_say_what_to_fix(tmp_path: Path, prompts: object, needle: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(prompts))
    with pytest.raises(FormatError, match=needle):
        load_prompts(path)


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no images"):
        list_images(tmp_path / "empty")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source-ref": "a.png"}\n{oops\n')
    with pytest.raises(FormatError, match=r"bad\.jsonl line 2 is not valid JSON"):
        list_images(bad)
    with pytest.raises(FormatError, match="not found"):
        load_prompts(tmp_path / "none.json")
