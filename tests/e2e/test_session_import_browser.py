"""Real JupyterLab + Chromium: a session started from imported COCO labels (issue 15) shows them on the canvas as
"imported, to review", the Accept button marks the image human-annotated in the Ground Truth output, and the
button goes away. The kernel uses the deterministic ``BoxSegmenter`` (no weights needed). Screenshots go to
``GT_E2E_SHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.e2e.lab import jupyter_lab, open_and_run_all, wait_file

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A 160x120 image with one "cat" rectangle (x 30..100, y 20..80) in COCO polygon form; a second image unlabeled.
SESSION = """
from pathlib import Path
import json
import numpy as np
from PIL import Image
from gt_widget.formats import import_coco
from gt_widget.widget import LabelingSession
from gt_widget.widget.testing import BoxSegmenter
Path("images").mkdir(exist_ok=True)
for i in range(2):
    Image.fromarray(np.random.default_rng(i).integers(60, 200, (120, 160, 3), dtype=np.uint8)).save(f"images/{i}.png")
coco = {"images": [{"id": 1, "file_name": "0.png", "width": 160, "height": 120}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3,
                         "segmentation": [[30, 20, 100, 20, 100, 80, 30, 80]]}],
        "categories": [{"id": 3, "name": "cat"}]}
Path("images/instances.json").write_text(json.dumps(coco))
imported = import_coco("images/instances.json", images="images", mode="semantic")
session = LabelingSession(["images/0.png", "images/1.png"], labels=["cup", "cat"], output_dir="out",
                          job_name="imported", segmenter=BoxSegmenter(), prefetch=False, initial_labels=imported)
session
"""


def _notebook(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SESSION.strip())]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "imported.ipynb")


def _human_annotated(root: Path) -> str | None:
    """The output manifest's ``human-annotated`` of the first image (None before it is written)."""
    manifests = list((root / "out").rglob("output.manifest"))
    if not manifests:
        return None
    first = json.loads(manifests[0].read_text().splitlines()[0])
    meta = [v for k, v in first.items() if k.endswith("-metadata")]
    return str(meta[0]["human-annotated"]) if meta else None


def test_imported_labels_show_as_to_review_and_accept_marks_them_human_annotated(browser: Any, tmp_path: Path) -> None:
    root = tmp_path / "lab"
    root.mkdir()
    _notebook(root)
    shots = Path(os.environ.get("GT_E2E_SHOTS", str(tmp_path)))
    shots.mkdir(parents=True, exist_ok=True)
    with jupyter_lab(root) as lab:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        try:
            open_and_run_all(page, lab, "imported.ipynb")
            page.wait_for_selector(".gt-widget-canvas", timeout=120_000)
            accept = page.locator(".gt-labeling-session .gt-session-accept").first
            accept.wait_for(state="visible", timeout=60_000)
            progress = page.locator(".gt-session-progress").first
            assert "imported, to review" in (progress.inner_text() or "")
            wait_file(root / "out", timeout=60, predicate=lambda _p: _human_annotated(root) is not None)
            assert _human_annotated(root) == "no"
            page.locator(".gt-labeling-session").screenshot(path=str(shots / "session-imported-to-review.png"))
            accept.click()
            accept.wait_for(state="hidden", timeout=30_000)
            page.wait_for_function(
                "() => document.querySelector('.gt-session-progress').innerText.includes('labeled')", timeout=30_000
            )
            assert "to review" not in progress.inner_text()
            wait_file(root / "out", timeout=60, predicate=lambda _p: _human_annotated(root) == "yes")
            page.locator(".gt-labeling-session").screenshot(path=str(shots / "session-imported-accepted.png"))
        finally:
            page.close()
