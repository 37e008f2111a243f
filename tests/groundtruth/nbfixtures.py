"""Small notebooks written the way notebooks/quickstart.ipynb is (the shared conventions), for the tests."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from gt_widget.groundtruth.formats import encode_png

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def tiny_png(value: int = 0) -> bytes:
    """A real 8x6 RGB PNG (distinct bytes per ``value``)."""
    arr = np.full((6, 8, 3), value, np.uint8)
    arr[0, 0] = (value + 1) % 256
    return encode_png(arr)


def write_notebook(path: Path, cells: list[Any]) -> Path:
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    nbformat.write(nb, str(path))
    return path


def labeling_notebook(folder: Path, *, labels_code: str | None = None, hostile: bool = False) -> Path:
    """A notebook with two local images, instructions and good/bad examples (one tagged, one by heading)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "a.png").write_bytes(tiny_png(10))
    (folder / "images" / "b.png").write_bytes(tiny_png(20))
    (folder / "good.png").write_bytes(tiny_png(30))
    text = "<script>alert('x')</script> & \"q\" {{ task.input }}" if hostile else "Paint **every** pet."
    short = nbformat.v4.new_markdown_cell(f"## Short instructions\n\n{text}")
    full = nbformat.v4.new_markdown_cell(
        "1. Look at the image.\n2. Paint each pet.", metadata={"tags": ["gt-full-instructions"]}
    )
    good = nbformat.v4.new_markdown_cell("### Good example\n\nTight edges.\n\n![tight edges](good.png)")
    bad = nbformat.v4.new_markdown_cell(
        "Sloppy: ![sloppy](attachment:bad.png)",
        metadata={"tags": ["gt-bad-example"]},
        attachments={"bad.png": {"image/png": base64.b64encode(tiny_png(40)).decode()}},
    )
    labels = labels_code or 'LABELS = ["cat", "dog"]'
    cells = [
        nbformat.v4.new_markdown_cell("# Pets\n\nLabel the pets."),
        nbformat.v4.new_code_cell(f"%matplotlib inline\n{labels}\nfrom gt_widget.widget import LabelingSession"),
        short,
        full,
        good,
        bad,
        nbformat.v4.new_code_cell(
            'session = LabelingSession("images", labels=LABELS, output_dir="out", mode="semantic", job_name="pets-2024")\n'
            "session"
        ),
    ]
    return write_notebook(folder / "labeling.ipynb", cells)
