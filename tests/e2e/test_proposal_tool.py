"""Real JupyterLab + Chromium + the real MobileSAM: choose the proposal tool with its button, hover an object
(its outline is drawn on the canvas), click to accept it, and the autosaved Ground Truth PNG holds exactly
that proposal; the prompt log lies beside the output, outside what Ground Truth reads.

Takes the screenshot of the outline into ``GT_E2E_SHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from PIL import Image

from tests.e2e.lab import canvas_box, jupyter_lab, latest_result, open_and_run_all, to_page, wait_file
from tests.support.objects import load_grabcut_object

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSION = """
import json
import numpy as np
from scipy import ndimage
from gt_widget.segment import load_segmenter
from gt_widget.segment.proposals import ProposalSettings, proposal_at
from gt_widget.widget import LabelingSession
session = LabelingSession(["IMAGE"], labels=["animal", "other"], output_dir="out", job_name="proposals",
                          segmenter=load_segmenter("mobilesam", weights=WEIGHTS), prefetch=False)
w = session.widget
tool = w.tools["proposal"]
tool.points_per_side, tool.settings = 8, ProposalSettings(points_per_side=8)  # quick on 2 cores
found = tool.wait(w)
big = max(found, key=lambda p: p.area)
own = big.mask.copy()
for q in found:
    if q.area < big.area:
        own &= ~q.mask
dist = ndimage.distance_transform_edt(np.pad(own, 1))[1:-1, 1:-1]
y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
assert proposal_at(found, x, y) is big
np.save("expected.npy", big.mask)
json.dump({"canvas": [w.canvas.width, w.canvas.height], "point": w.image_to_canvas(float(x), float(y))},
          open("transform.json", "w"))
session
"""


def test_hover_outline_and_click_accept_a_proposal(browser: Any, tmp_path: Path, grabcut_dir: Path) -> None:
    weights = os.environ.get("GT_WIDGET_WEIGHTS")
    if not weights or not Path(weights).exists():
        pytest.skip("needs the MobileSAM weights (GT_WIDGET_WEIGHTS)")
    root = tmp_path / "lab"
    root.mkdir()
    obj = load_grabcut_object(grabcut_dir, "llama")
    shutil.copy(obj.image, root / obj.image.name)
    nb = nbformat.v4.new_notebook()
    code = SESSION.replace('"IMAGE"', repr(obj.image.name)).replace("WEIGHTS", repr(weights))
    nb.cells = [nbformat.v4.new_code_cell(code.strip())]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "proposals.ipynb")
    shots = Path(os.environ.get("GT_E2E_SHOTS", str(tmp_path)))
    shots.mkdir(parents=True, exist_ok=True)
    with jupyter_lab(root) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_and_run_all(page, lab, "proposals.ipynb", timeout_ms=400_000)
            wait_file(root / "transform.json", timeout=400)
            page.wait_for_selector(".gt-widget .gt-tool-proposal", timeout=120_000)
            page.wait_for_timeout(1500)
            info = json.loads((root / "transform.json").read_text())
            size = (int(info["canvas"][0]), int(info["canvas"][1]))
            page.locator(".gt-widget .gt-tool-proposal").click()
            page.wait_for_selector(".gt-widget .gt-tool-proposal.gt-tool-active", timeout=10_000)
            box = canvas_box(page)
            canvas = page.locator("canvas.gt-widget-canvas").first
            canvas.screenshot(path=str(shots / "proposal-before-hover.png"))
            px, py = to_page(box, size, *info["point"])
            page.mouse.move(px - 40, py - 40)
            page.mouse.move(px, py, steps=5)
            page.wait_for_timeout(1500)
            canvas.screenshot(path=str(shots / "proposal-outline.png"))
            page.locator(".gt-labeling-session").screenshot(path=str(shots / "proposal-outline-session.png"))
            before = np.asarray(Image.open(shots / "proposal-before-hover.png").convert("RGB"), np.int16)
            after = np.asarray(Image.open(shots / "proposal-outline.png").convert("RGB"), np.int16)
            assert before.shape == after.shape
            assert (np.abs(after - before).sum(axis=2) > 60).sum() > 200, "no outline was drawn on hover"
            assert page.locator(".gt-widget-status").text_content() is not None
            box = canvas_box(page)  # the element screenshots scrolled the page
            px, py = to_page(box, size, *info["point"])
            page.mouse.move(px, py)
            page.wait_for_timeout(300)
            page.mouse.click(px, py)
            job = root / "out" / "proposals"
            manifest = job / "manifests" / "output" / "output.manifest"
            try:
                wait_file(manifest, timeout=60, predicate=lambda p: p.read_text().strip() != "")
            except TimeoutError:
                page.screenshot(path=str(shots / "proposal-click-failed.png"))
                raise AssertionError(page.locator(".gt-widget-status").text_content()) from None
            expected = np.load(root / "expected.npy")
            label_map = latest_result(job)[0]
            np.testing.assert_array_equal(label_map == 1, expected)
            assert not (label_map > 1).any()
            log = json.loads((job / "gt-widget" / "prompt-log" / "0.json").read_text())
            (event,) = log["events"]
            assert event["kind"] == "model" and event["prompt"]["proposal"] is not None
            assert "prompt-log" not in manifest.read_text()
            page.screenshot(path=str(shots / "proposal-accepted.png"))
        finally:
            page.close()
