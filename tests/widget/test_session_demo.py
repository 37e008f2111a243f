"""`gt-widget demo --headless`: the quickstart runs end to end with the real model and writes Ground Truth output."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from gt_widget.cli import main
from gt_widget.groundtruth.formats import read_consolidated_png
from gt_widget.widget.demo import sample_image, sample_images
from gt_widget.widget.export import rle_decode


def test_sample_images_and_licences() -> None:
    paths = sample_images()
    assert [p.name for p in paths] == ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"]
    licences = (paths[0].parent / "LICENSES.md").read_text()
    for p in paths:
        assert p.name in licences
    assert sample_image("coffee").name == "coffee.png"


def test_quickstart_follows_the_notebook_conventions() -> None:
    nb = nbformat.read(Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tags = {t for c in nb.cells for t in c.metadata.get("tags", [])}
    assert {"gt-short-instructions", "gt-full-instructions", "gt-good-example", "gt-bad-example"} <= tags
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # shipped without outputs


@pytest.mark.slow
@pytest.mark.weights
def test_demo_headless(
    tmp_path: Path, weights_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GT_WIDGET_WEIGHTS", str(weights_path))
    assert main(["demo", "--headless", "--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    job = tmp_path / "demo" / "gt-widget-output" / "quickstart-scripted"  # the scripted cells' own session
    assert f"Ground Truth outputs: {job}" in out
    lines = [json.loads(x) for x in (job / "manifests" / "output" / "output.manifest").read_text().splitlines()]
    assert [Path(x["source-ref"]).name for x in lines] == ["coffee.png", "chelsea.png"]
    coffee = read_consolidated_png(Path(lines[0]["label-ref"]).read_bytes())
    # the real model found a cup (label 1) and a saucer (label 2) of plausible size on the 600x400 photo
    assert 0.1 < (coffee == 1).mean() < 0.35 and 0.1 < (coffee == 2).mean() < 0.4
    coco = json.loads((tmp_path / "demo" / "gt-widget-output" / "quickstart-coco.json").read_text())
    cup = next(a for a in coco["annotations"] if a["image_id"] == 1 and a["category_id"] == 1)
    assert (rle_decode(cup["segmentation"]) == (coffee == 1)).all()
    assert np.isclose(cup["area"], (coffee == 1).sum())
