"""Live preview in a real browser (issue 13): JupyterLab + Chromium + MobileSAM. After 3 extreme points, moving
the pointer to the 4th draws the preview before any click; clicking there commits that very answer (the
kernel's hop trace says it was not predicted again) and the saved mask is the object."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

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


def _shot(page: Any) -> np.ndarray:
    data = page.locator("canvas.gt-widget-canvas").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float64)


def test_preview_appears_before_the_click_and_is_what_the_click_commits(
    browser: Any, grabcut_dir: Path, weights_path: Path, tmp_path: Path
) -> None:
    obj = load_grabcut_object(grabcut_dir, OBJECT)
    root = tmp_path / "lab"
    root.mkdir()
    source = copy_images([obj.image], root / "images")
    derived_notebook(
        root / "e2e.ipynb",
        source,
        ["elephant"],
        [
            "import json\n"
            f"POINTS = {obj.points!r}\n"
            "w = session.widget\n"
            "info = {'canvas': [w.canvas.width, w.canvas.height], 'scale': w.view.scale,\n"
            "        'offset': [w.view.offset_x, w.view.offset_y],\n"
            "        'points': [w.image_to_canvas(x, y) for x, y in POINTS]}\n"
            "Path('transform.json').write_text(json.dumps(info))"
        ],
    )
    env = {"GT_WIDGET_WEIGHTS": str(weights_path), "GT_WIDGET_TRACE": "1"}
    with jupyter_lab(root, env) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            open_and_run_all(page, lab, "e2e.ipynb")
            wait_file(root / "transform.json", timeout=180, predicate=lambda p: bool(json.loads(p.read_text())))
            info = json.loads((root / "transform.json").read_text())
            wait_widget_idle(page)
            box = canvas_box(page)
            size = (int(info["canvas"][0]), int(info["canvas"][1]))
            pts = [to_page(box, size, cx, cy) for cx, cy in info["points"]]
            page.evaluate("() => { window.__gtTrace = []; }")
            for x, y in pts[:3]:
                page.mouse.click(x, y)
                page.wait_for_timeout(200)
            wait_widget_idle(page)
            page.wait_for_timeout(500)
            before = _shot(page)
            page.mouse.move(*pts[3])
            page.wait_for_function("() => (window.__gtTrace || []).some((r) => r.kind === 'preview')", timeout=60_000)
            page.wait_for_timeout(500)  # the drawing message follows the trace record
            preview = _shot(page)
            page.screenshot(path=str(tmp_path / "live-preview.png"))
            changed = np.abs(preview - before).sum(axis=2) > 12
            # the preview covers the object: compare it with the ground truth as drawn on the canvas
            gh, gw = changed.shape
            ys, xs = np.mgrid[0:gh, 0:gw]
            sx, sy = size[0] / gw, size[1] / gh
            ix = np.clip(((xs + 0.5) * sx - info["offset"][0]) / info["scale"] - 0.5, 0, obj.gt.shape[1] - 1)
            iy = np.clip(((ys + 0.5) * sy - info["offset"][1]) / info["scale"] - 0.5, 0, obj.gt.shape[0] - 1)
            gt_canvas = obj.gt[np.rint(iy).astype(int), np.rint(ix).astype(int)]
            iou = (changed & gt_canvas).sum() / max(1, (changed | gt_canvas).sum())
            assert iou > 0.8, f"the preview drawn before the click does not cover the object (IoU {iou:.2f})"

            page.mouse.click(*pts[3])  # the pointer did not move: commit what is shown
            page.wait_for_function("() => (window.__gtTrace || []).some((r) => r.kind === 'auto')", timeout=60_000)
            auto = next(r for r in page.evaluate("() => window.__gtTrace") if r["kind"] == "auto")
            assert auto["reused_preview"] is True, (
                f"the click predicted again instead of committing the preview: {auto}"
            )
            wait_widget_idle(page)
            page.wait_for_timeout(1500)
            mask, _answer, _png = latest_result(root / "gt-widget-output" / "quickstart")
            keep = ~obj.void
            saved = mask == 1
            score = ((saved & obj.gt & keep).sum()) / max(1, ((saved | obj.gt) & keep).sum())
            assert score > 0.9, f"committed mask IoU {score:.3f}"
        finally:
            page.close()
