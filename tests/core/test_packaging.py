"""The wheel carries what the package needs at run time: the JS stand-ins (a symlink to js/src in the
tree), the sample images with their licences, and py.typed — and never evaluation data or weights."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_runtime_files_and_no_evaluation_material(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("gt_widget-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    js_sources = {p.name for p in (REPO / "js" / "src").glob("*.js")}
    shipped_js = {Path(n).name for n in names if n.startswith("gt_widget/preview/static/") and n.endswith(".js")}
    assert js_sources and js_sources <= shipped_js  # every stand-in ships as a real file, no node build
    for needed in ("gt_widget/py.typed", "gt_widget/data/LICENSES.md", "gt_widget/data/coffee.png"):
        assert needed in names
    forbidden = [n for n in names if n.endswith((".pt", ".pth", ".npz")) or "grabcut/" in n or "davis345/" in n]
    assert not forbidden
