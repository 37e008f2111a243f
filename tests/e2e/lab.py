"""A real JupyterLab on 127.0.0.1 for browser tests and the browser benchmark, plus page helpers.

JupyterLab runs with a token, a temp root_dir and temp HOME / JUPYTER_* dirs (nothing of the user's setup
leaks in), ``open_browser`` off; the context manager stops it. Notebooks are derived from the quickstart:
its ``parameters`` cell is replaced, its ``gt-session`` cell kept, the scripted demo cells dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from gt_widget.groundtruth.formats import read_consolidated_png
from tests.support.servers import free_port, wait_for_http

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    app: str = "lab"

    def notebook_url(self, name: str) -> str:
        if self.app == "notebook":  # Notebook 7: one notebook per page
            return f"{self.url}/notebooks/{name}?token={self.token}"
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


@contextmanager
def jupyter_lab(root: Path, env_extra: dict[str, str] | None = None, app: str = "lab") -> Iterator[Lab]:
    """Start ``jupyter lab`` (or, with ``app="notebook"``, Notebook 7's ``jupyter notebook``) serving ``root``;
    yields its URL and token; stops it afterwards."""
    assert app in ("lab", "notebook"), app
    port = free_port()
    token = "gt-widget-e2e-" + os.urandom(6).hex()
    home = root.parent / (root.name + "-home")
    for sub in ("config", "data", "runtime"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PYTHONPATH": str(REPO),
        **(env_extra or {}),
    }
    # no "news" / update pop-ups over the notebook
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    log = (root.parent / (root.name + f"-{app}.log")).open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            app,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
            "--ServerApp.port_retries=0",
            "--ServerApp.allow_root=True",  # CI containers run as root
            *(["--LabApp.news_url="] if app == "lab" else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/api/status?token={token}", timeout=90, proc=proc)
        yield Lab(url, token, root, app)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def derived_notebook(target: Path, source: Sequence[str], labels: Sequence[str], extra_cells: Sequence[str]) -> Path:
    """A notebook made of the quickstart's parameters + session cells (with our SOURCE/LABELS) and
    ``extra_cells`` after them."""
    nb = nbformat.read(QUICKSTART, as_version=4)
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags:
            text = cell.source
            lines = [
                f"LABELS = {list(labels)!r}"
                if ln.startswith("LABELS = ")
                else f"SOURCE = {list(source)!r}"
                if ln.startswith("SOURCE = ")
                else ln
                for ln in text.splitlines()
            ]
            cell.source = "\n".join(lines)
            cells.append(cell)
        elif "gt-session" in tags:
            cells.append(cell)
    for text in extra_cells:
        cells.append(nbformat.v4.new_code_cell(text))
    nb.cells = cells
    nbformat.write(nb, target)
    return target


def copy_images(images: Sequence[Path], folder: Path) -> list[str]:
    """Copy ``images`` into ``folder``; returns their paths relative to ``folder.parent``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in images:
        shutil.copyfile(p, folder / p.name)
        out.append(f"{folder.name}/{p.name}")
    return out


def open_and_run_all(page: Any, lab: Lab, name: str, timeout_ms: int = 120_000) -> None:
    """Open notebook ``name`` in JupyterLab, wait for the kernel, run every cell (Run > Run All Cells; retried
    when JupyterLab was not ready to take the command yet)."""
    page.goto(lab.notebook_url(name), timeout=timeout_ms)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout_ms)
    wait_kernel_idle(page, timeout_ms)
    for _attempt in range(4):
        page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-InputPrompt')]
                        .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""",
                timeout=20_000,
            )
            return
        except Exception:
            page.keyboard.press("Escape")
            wait_kernel_idle(page, timeout_ms)
    raise TimeoutError(f"JupyterLab did not run {name}")


def wait_kernel_idle(page: Any, timeout_ms: int = 120_000) -> None:
    """Wait until the notebook's kernel reports idle (the toolbar's kernel status circle)."""
    page.wait_for_function(
        """() => {
            const el = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
            if (el) return el.getAttribute('data-status') === 'idle';
            const sb = document.querySelector('#jp-main-statusbar');
            return !!sb && sb.textContent.includes('Idle');
        }""",
        timeout=timeout_ms,
    )


def wait_file(path: Path, timeout: float = 120.0, predicate: Any = None) -> None:
    """Poll until ``path`` exists (and ``predicate(path)`` holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if path.exists() and (predicate is None or predicate(path)):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{path} did not appear (or satisfy the condition) within {timeout:.0f} s")


def wait_widget_idle(page: Any, timeout_ms: int = 180_000) -> None:
    """Wait until the widget's busy indicator is empty (model loaded, embedding ready)."""
    page.wait_for_function(
        """() => {
            const c = document.querySelector('.gt-widget-canvas');
            const b = document.querySelector('.gt-widget-busy');
            return !!c && !!b && b.textContent.trim() === '';
        }""",
        timeout=timeout_ms,
    )


def canvas_box(page: Any) -> dict[str, float]:
    """Bounding box of the widget's top canvas layer in page pixels."""
    loc = page.locator("canvas.gt-widget-canvas").first  # ipycanvas 0.14 draws a MultiCanvas into one <canvas>
    loc.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    box = loc.bounding_box()
    assert box is not None, "the widget's canvas is not visible"
    return dict(box)


def to_page(box: dict[str, float], canvas_size: tuple[int, int], cx: float, cy: float) -> tuple[float, float]:
    """Page position of canvas pixel (cx, cy) (the canvas may be CSS-scaled inside the cell)."""
    return box["x"] + cx * box["width"] / canvas_size[0], box["y"] + cy * box["height"] / canvas_size[1]


def latest_result(job: Path) -> tuple[np.ndarray, dict[str, Any], Path]:
    """(label map, output-manifest line, consolidated PNG path) of the one labeled image of a job's autosaved
    output (other input lines, not labeled yet, carry no label attribute)."""
    manifest = job / "manifests" / "output" / "output.manifest"
    # one output line per input line: the labeled one is the line with the label attribute
    (line,) = [x for x in map(json.loads, manifest.read_text().splitlines()) if "label-ref" in x]
    png = Path(line["label-ref"])
    return read_consolidated_png(png.read_bytes()), line, png
