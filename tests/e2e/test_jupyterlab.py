"""End to end in a real browser: JupyterLab + Chromium (Playwright) + the real MobileSAM in the kernel.

Opens a notebook derived from the quickstart, runs it, clicks the 4 extreme points of a GrabCut benchmark object
ON THE CANVAS, and checks the kernel-side mask (read back from the session's autosaved Ground Truth files)
against the benchmark's ground truth, the overlay in a screenshot, a brush stroke, undo, and the files on disk.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gt_widget.groundtruth.formats import SemanticResult, read_answer
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


def _shot(page: Any) -> np.ndarray:
    data = page.locator("canvas.gt-widget-canvas").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float64)


def test_label_in_jupyterlab(browser: Any, grabcut_dir: Path, weights_path: Path, tmp_path: Path) -> None:
    obj = load_grabcut_object(grabcut_dir, OBJECT)
    image_path, gt, void, points = obj.image, obj.gt, obj.void, obj.points
    h, w = gt.shape
    # a brush stroke in the background, well away from the object
    ys, xs = np.nonzero(~gt)
    far = np.argmax(np.hypot(xs - xs.mean(), ys - ys.mean()) * 0 + (ys < h // 6) * (np.abs(xs - w // 2) < w // 3))
    by, bx = int(ys[far]), int(xs[far])
    bx = min(max(bx, 40), w - 80)
    by = min(max(by, 15), h - 15)
    brush = [(bx, by), (bx + 40, by)]
    assert not gt[by - 10 : by + 11, bx - 10 : bx + 51].any(), "pick another brush place: it touches the object"

    root = tmp_path / "lab"
    root.mkdir()
    source = copy_images([image_path], root / "images")
    out_dir = root / "gt-widget-output"
    derived_notebook(
        root / "e2e.ipynb",
        source,
        LABELS,
        [
            "import json\n"
            f"POINTS = {points!r}\n"
            f"BRUSH = {brush!r}\n"
            "w = session.widget\n"
            "info = {'canvas': [w.canvas.width, w.canvas.height],\n"
            "        'points': [w.image_to_canvas(x, y) for x, y in POINTS],\n"
            "        'brush': [w.image_to_canvas(x, y) for x, y in BRUSH]}\n"
            "Path('transform.json').write_text(json.dumps(info))",
            # the page patched ipycanvas to draw palette runs (runs.py): overlays below are drawn that way
            "_runs_ready = w.scope.on_runs_ready\n"
            "def _note_runs():\n"
            "    _runs_ready()\n"
            "    Path('runs.json').write_text('true')\n"
            "w.scope.on_runs_ready = _note_runs\n"
            "if w.screen.layers.runs:\n"
            "    Path('runs.json').write_text('true')",
        ],
    )
    job = out_dir / "quickstart"
    with jupyter_lab(root, {"GT_WIDGET_WEIGHTS": str(weights_path)}) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            open_and_run_all(page, lab, "e2e.ipynb")
            wait_file(root / "transform.json", timeout=180, predicate=lambda p: bool(json.loads(p.read_text())))
            info = json.loads((root / "transform.json").read_text())
            size = (int(info["canvas"][0]), int(info["canvas"][1]))
            wait_widget_idle(page)  # MobileSAM loaded, embedding ready
            wait_file(root / "runs.json", timeout=60)  # overlays travel as palette runs, no image decode
            box = canvas_box(page)
            before = _shot(page)

            # --- auto-segment: the 4 extreme points, clicked on the canvas
            for cx, cy in info["points"]:
                page.mouse.click(*to_page(box, size, cx, cy))
                page.wait_for_timeout(150)
            manifest = job / "manifests" / "output" / "output.manifest"
            wait_file(manifest, timeout=120, predicate=lambda p: p.read_text().strip() != "")
            wait_widget_idle(page)  # a small object's zoomed second pass may still replace the first mask
            page.wait_for_timeout(500)  # and the autosave of its result
            label_map, line, _png = latest_result(job)
            assert label_map.shape == gt.shape
            keep = ~void
            pred = label_map == 1
            iou = (pred & gt & keep).sum() / ((pred | gt) & keep).sum()
            assert iou >= 0.9, f"IoU {iou:.3f} against the GrabCut ground truth"
            assert line["source-ref"].endswith(image_path.name)

            # --- the overlay is visible: object pixels move towards the label colour, background stays
            wait_widget_idle(page)
            page.wait_for_timeout(500)
            after = _shot(page)
            sy = after.shape[0] / h
            sx = after.shape[1] / w
            rows = (np.nonzero(gt)[0] * sy).astype(int).clip(0, after.shape[0] - 1)
            cols = (np.nonzero(gt)[1] * sx).astype(int).clip(0, after.shape[1] - 1)
            inside_before = before[rows, cols].mean(axis=0)
            inside_after = after[rows, cols].mean(axis=0)
            green = np.array([0x2C, 0xA0, 0x2C], float)
            assert np.abs(inside_after - inside_before).sum() > 30, (inside_before, inside_after)
            assert np.linalg.norm(inside_after - green) < np.linalg.norm(inside_before - green) - 20
            bg_rows = (np.nonzero(~gt & ~void)[0] * sy).astype(int).clip(0, after.shape[0] - 1)
            bg_cols = (np.nonzero(~gt & ~void)[1] * sx).astype(int).clip(0, after.shape[1] - 1)
            far_bg = ~(pred | gt)[np.nonzero(~gt & ~void)]
            assert np.abs(after[bg_rows, bg_cols][far_bg] - before[bg_rows, bg_cols][far_bg]).mean() < 8

            # --- brush: choose the tool in the toolbar, drag on the canvas (one stroke = one undo step)
            page.locator(".gt-widget .gt-tool-brush").click()  # the CSS contract (icon buttons)
            box = canvas_box(page)  # the click may have scrolled the notebook
            (x0, y0), (x1, y1) = (to_page(box, size, *p) for p in info["brush"])
            page.mouse.move(x0, y0)
            page.mouse.down()
            for t in np.linspace(0, 1, 8):
                page.mouse.move(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
                page.wait_for_timeout(30)
            page.mouse.up()

            def brushed(_p: Path) -> bool:
                lm, _, _ = latest_result(job)
                return bool(lm[by, bx + 20] == 1)

            try:
                wait_file(manifest, timeout=60, predicate=brushed)
            except TimeoutError:
                page.screenshot(path=str(tmp_path / "brush-failed.png"))
                raise
            after_brush, _, _ = latest_result(job)
            assert (after_brush[by, bx : bx + 41] == 1).all()
            assert ((after_brush == 1) & ~pred).sum() > 0
            assert (after_brush[pred] == 1).all()  # the object is untouched

            # --- undo (toolbar button): back to exactly the auto-segment result. The mouse leaving the canvas
            # for the button and the click may be handled on two kernel threads at once (ipykernel 7 subshells):
            # this once deadlocked the kernel with the undo never saved (tests/widget/test_session_threads.py)
            page.locator(".gt-widget .gt-action-undo").click()
            try:
                wait_file(manifest, timeout=60, predicate=lambda p: not brushed(p))
            except TimeoutError:
                page.screenshot(path=str(tmp_path / "undo-failed.png"))
                raise
            final, line, png = latest_result(job)
            assert (final == label_map).all()
            page.screenshot(path=str(tmp_path / "jupyterlab-final.png"))  # kept by pytest for a look

            # --- files on disk: Ground Truth's layout, worker response == consolidated PNG, one version each
            answers = list((job / "annotations" / "worker-response" / "iteration-1" / "0").glob("*.json"))
            assert len(answers) == 1 and png.name.startswith("0_")
            result = read_answer(json.loads(answers[0].read_text()), LABELS)
            assert isinstance(result, SemanticResult) and (result.label_map == final).all()
            assert line["label-ref-metadata"]["internal-color-map"]["1"]["class-name"] == "elephant"
            state = json.loads((job / "gt-widget-session.json").read_text())
            assert state["index"] == 0 and state["labels"] == LABELS
        finally:
            page.close()
