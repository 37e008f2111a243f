"""``gt-widget evaluate`` on a GrabCut-50 subset written as a job folder gives the benchmark's figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import bench_quality, protocol
from gt_widget import evaluate
from gt_widget.cli import main
from gt_widget.errors import FormatError
from gt_widget.segment.prelabel_output import MachineLabel, write_job
from gt_widget.widget.export import rle_encode

IDS = ["llama", "elefant", "flower"]


def test_protocol_core_is_one_code_path() -> None:
    for name in ("extreme_points", "iou", "next_click", "click_trace", "jitter", "sample_seed", "ClickTrace"):
        assert getattr(protocol, name) is getattr(evaluate, name)
    assert protocol.MAX_CLICKS == evaluate.MAX_CLICKS == 20


@pytest.fixture(scope="module")
def grabcut_job(tmp_path_factory: pytest.TempPathFactory, grabcut_dir: Path) -> tuple[Path, list[protocol.Sample]]:
    """The GT masks of a few GrabCut-50 images as a finished (semantic) job folder."""
    samples = []
    results = []
    for k, sid in enumerate(IDS):
        image = next((grabcut_dir / "images").glob(f"{sid}.*"))
        mask_path = grabcut_dir / "masks" / f"{sid}.png"
        gt = np.asarray(Image.open(mask_path).convert("L")) > 127
        results.append(MachineLabel(str(image), k, gt.astype(np.uint8)))
        samples.append(protocol.Sample("grabcut", sid, image, mask_path, None))  # the user's labels: no void
    job = write_job(tmp_path_factory.mktemp("gc"), "gc", ["object"], results)
    return job, samples


def test_evaluate_gives_the_benchmark_figures(
    grabcut_job: tuple[Path, list[protocol.Sample]], weights_path: Path
) -> None:
    job, samples = grabcut_job
    (row,) = evaluate.evaluate_labels(job, ["default"], weights=weights_path, progress=False)
    seg = bench_quality.load_mobilesam_segmenter(weights_path)
    bench = bench_quality.evaluate_set(seg, samples, jitter=False, progress=False)["summary"]
    assert row["objects"] == len(IDS)
    assert row["miou"] == bench["miou"]
    assert (row["noc85"], row["noc90"]) == (bench["noc85"], bench["noc90"])
    assert row["miou"] > 90 and row["s_per_object"] > 0


def test_evaluate_cli_table_and_coco(
    grabcut_job: tuple[Path, list[protocol.Sample]],
    weights_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job, samples = grabcut_job
    out = tmp_path / "table.json"
    code = main(
        [
            "evaluate",
            str(job),
            "--recipes",
            "fast",
            "--weights",
            str(weights_path),
            "--quiet",
            "--limit",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "NoC@90" in printed and "fast" in printed
    assert json.loads(out.read_text())[0]["objects"] == 1
    # the same object as a COCO file: same object, same figure
    gt = np.asarray(Image.open(samples[0].mask_path).convert("L")) > 127
    coco = {
        "images": [{"id": 1, "file_name": samples[0].image_path.name, "height": gt.shape[0], "width": gt.shape[1]}],
        "categories": [{"id": 1, "name": "object"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": rle_encode(gt)}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    objs = evaluate.labeled_objects(tmp_path / "coco.json", samples[0].image_path.parent)
    assert len(objs) == 1 and np.array_equal(objs[0].mask, gt)


def test_evaluate_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(FormatError, match="--images"):
        evaluate.labeled_objects(tmp_path / "m")
    assert main(["evaluate", str(tmp_path / "nothing.txt")]) == 2
    assert "neither a job folder" in capsys.readouterr().err
