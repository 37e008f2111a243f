"""End to end in a real browser in Notebook 7 (``jupyter notebook``): Chromium (Playwright) + the real MobileSAM.

Same protocol as the JupyterLab test, reduced to its core: open a notebook derived from the quickstart on one
GrabCut image, run all cells, click the 4 extreme points of the object ON THE CANVAS, and check the mask read
back from the session's autosaved Ground Truth files against the benchmark's ground truth (void ignored).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.lab import (
    canvas_box,
    copy_images,
    derived_notebook,
    jupyter_lab,
    latest_result,
    open_and_run_all,
    to_page,
    wait_file,
    wait_widget_idle,
)
from tests.support.objects import load_grabcut_object

pytestmark = [pytest.mark.browser, pytest.mark.weights, pytest.mark.slow]

OBJECT = "elefant"
LABELS = ["elephant", "other"]


def test_label_in_notebook7(browser: Any, grabcut_dir: Path, weights_path: Path, tmp_path: Path) -> None:
    obj = load_grabcut_object(grabcut_dir, OBJECT)
    image_path, gt, void, points = obj.image, obj.gt, obj.void, obj.points

    root = tmp_path / "nb7"
    root.mkdir()
    source = copy_images([image_path], root / "images")
    derived_notebook(
        root / "e2e.ipynb",
        source,
        LABELS,
        [
            "import json\n"
            f"POINTS = {points!r}\n"
            "w = session.widget\n"
            "info = {'canvas': [w.canvas.width, w.canvas.height],\n"
            "        'points': [w.image_to_canvas(x, y) for x, y in POINTS]}\n"
            "Path('transform.json').write_text(json.dumps(info))"
        ],
    )
    job = root / "gt-widget-output" / "quickstart"
    with jupyter_lab(root, {"GT_WIDGET_WEIGHTS": str(weights_path)}, app="notebook") as nb:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            open_and_run_all(page, nb, "e2e.ipynb")
            assert "/notebooks/e2e.ipynb" in page.url and "/lab" not in page.url  # Notebook 7's page, not Lab's
            wait_file(root / "transform.json", timeout=180, predicate=lambda p: bool(json.loads(p.read_text())))
            info = json.loads((root / "transform.json").read_text())
            size = (int(info["canvas"][0]), int(info["canvas"][1]))
            wait_widget_idle(page)  # MobileSAM loaded, embedding ready
            box = canvas_box(page)

            for cx, cy in info["points"]:
                page.mouse.click(*to_page(box, size, cx, cy))
                page.wait_for_timeout(150)
            manifest = job / "manifests" / "output" / "output.manifest"
            try:
                wait_file(manifest, timeout=120, predicate=lambda p: p.read_text().strip() != "")
            except TimeoutError:
                page.screenshot(path=str(tmp_path / "notebook7-failed.png"))
                raise
            wait_widget_idle(page)  # a small object's zoomed second pass may still replace the first mask
            page.wait_for_timeout(500)  # and the autosave of its result
            label_map, line, _png = latest_result(job)
            page.screenshot(path=str(tmp_path / "notebook7-final.png"))  # kept by pytest for a look
            assert label_map.shape == gt.shape
            keep = ~void
            pred = label_map == 1
            iou = (pred & gt & keep).sum() / ((pred | gt) & keep).sum()
            assert iou >= 0.9, f"IoU {iou:.3f} against the GrabCut ground truth"
            assert line["source-ref"].endswith(image_path.name)
            assert line["label-ref-metadata"]["internal-color-map"]["1"]["class-name"] == "elephant"
        finally:
            page.close()
