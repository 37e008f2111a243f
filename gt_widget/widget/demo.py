"""The quickstart demo: shipped sample images, and ``gt-widget demo [--headless]``.

One job: put the quickstart notebook in a working folder and either open it in JupyterLab (127.0.0.1) or run
it end to end with nbclient and say where the Ground Truth outputs went. The notebook lives in the repository
(``notebooks/quickstart.ipynb`` with its ``notebooks/examples/`` images); the sample images it labels are
package data (``gt_widget/data``, CC0 / public domain, see ``gt_widget/data/LICENSES.md``): its first cell
copies them beside itself (:func:`copy_sample_images`), so a copied notebook folder works anywhere. Its scripted
cells label through their own session (:func:`scripted_session`, job ``quickstart-scripted``), never the one the
user labels by hand (job ``quickstart``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gt_widget.errors import GtWidgetError

if TYPE_CHECKING:
    from gt_widget.widget.session import LabelingSession

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
"""Folder of the shipped sample images."""

SAMPLE_IMAGES = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")
"""The sample images, in the order the quickstart labels them."""

REPO_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
QUICKSTART = "quickstart.ipynb"
SCRIPTED_JOB = "quickstart-scripted"
"""Job (output subfolder) of the quickstart's scripted cells; the hand-labeled session is ``quickstart``."""
OUTPUT_ENV = "GT_WIDGET_DEMO_OUTPUT"
"""Environment variable the quickstart reads for its output folder (default ``gt-widget-output`` beside it)."""


class DemoError(GtWidgetError, RuntimeError):
    """The demo cannot run (notebook missing, notebook failed, JupyterLab missing)."""


def sample_images() -> list[Path]:
    """Paths of the shipped sample images (chelsea, coffee, astronaut, rocket)."""
    paths = [DATA_DIR / name for name in SAMPLE_IMAGES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DemoError(f"sample images missing from the installed package: {missing}; reinstall gt_widget")
    return paths


def sample_image(name: str = "chelsea") -> Path:
    """One shipped sample image by stem (``"chelsea"``, ``"coffee"``, ``"astronaut"``, ``"rocket"``)."""
    for path in sample_images():
        if path.stem == name:
            return path
    raise DemoError(f"no sample image {name!r}; choose one of {[Path(n).stem for n in SAMPLE_IMAGES]}")


def copy_sample_images(folder: str | os.PathLike[str] = "images") -> Path:
    """Copy the shipped sample images and their licences into ``folder`` (made if missing; files already there
    are kept); returns the folder. The quickstart names its images ``images/<name>`` relative to itself and calls
    this first, so it needs no symlink into the package and works wherever the notebooks are copied."""
    target = Path(folder).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    for path in [*sample_images(), DATA_DIR / "LICENSES.md"]:
        if not (target / path.name).exists():
            shutil.copyfile(path, target / path.name)
    return target


def scripted_session(
    source: Sequence[str], labels: Sequence[str], output_dir: str | os.PathLike[str], mode: str = "semantic"
) -> LabelingSession:
    """A session of its own for the quickstart's scripted cells (job :data:`SCRIPTED_JOB`): what the script
    paints is saved there and never repaints the session the user labels by hand."""
    from gt_widget.widget.session import LabelingSession

    return LabelingSession(list(source), labels=labels, output_dir=output_dir, mode=mode, job_name=SCRIPTED_JOB)


def quickstart_source() -> Path:
    """The repository's quickstart notebook."""
    path = REPO_NOTEBOOKS / QUICKSTART
    if not path.is_file():
        raise DemoError(
            f"{path} not found: the quickstart ships with the source tree, not the wheel. Clone the repository "
            "and run `make demo` (or `pip install -e .` there)"
        )
    return path


def prepare_workdir(workdir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Copy the quickstart (with its example images and the sample images) into ``workdir``; keeps an existing copy unless
    ``overwrite`` (the user may have edited it). Returns the notebook path in ``workdir``."""
    root = Path(workdir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    src = quickstart_source()
    target = root / QUICKSTART
    if overwrite or not target.exists():
        shutil.copyfile(src, target)
    examples = src.parent / "examples"
    if examples.is_dir():
        shutil.copytree(examples, root / "examples", dirs_exist_ok=True)
    copy_sample_images(root / "images")  # the notebook names its images relative to itself (images/<name>)
    return target


def _weights_env() -> dict[str, str]:
    """Environment for the kernel: GT_WIDGET_WEIGHTS set to resolved weights when they can be had."""
    env = dict(os.environ)
    try:
        from gt_widget.segment.weights import resolve_weights

        env["GT_WIDGET_WEIGHTS"] = str(resolve_weights())
    except GtWidgetError as exc:
        print(f"warning: MobileSAM weights unavailable ({exc}); the demo falls back to GrabCut", file=sys.stderr)
    except ImportError:
        pass
    return env


def run_headless(workdir: str | os.PathLike[str], *, timeout: int = 900, output_dir: str | None = None) -> Path:
    """Execute the quickstart in ``workdir`` with nbclient (a fresh notebook copy every time); writes the
    executed notebook next to it and returns the Ground Truth job folder the notebook reported."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook_path = prepare_workdir(workdir, overwrite=True)
    root = notebook_path.parent
    out = Path(output_dir).resolve() if output_dir else root / "gt-widget-output"
    env = _weights_env()
    env[OUTPUT_ENV] = str(out)
    nb = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(root)}})
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the environment of this process
    started = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = root / "quickstart.failed.ipynb"
        nbformat.write(nb, failed)
        raise DemoError(f"the quickstart failed (executed copy with the traceback: {failed}):\n{exc}") from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    executed = root / "quickstart.executed.ipynb"
    nbformat.write(nb, executed)
    summary = out / "demo-summary.json"
    if not summary.is_file():
        raise DemoError(f"the quickstart ran but wrote no {summary}; is the notebook the shipped one?")
    info = json.loads(summary.read_text(encoding="utf-8"))
    print(f"quickstart ran in {time.monotonic() - started:.0f} s; executed notebook: {executed}")
    for key, value in info.items():
        print(f"  {key}: {value}")
    return Path(info["job_dir"])


def launch_lab(workdir: str | os.PathLike[str], *, port: int | None = None, open_browser: bool = True) -> int:
    """Open JupyterLab on 127.0.0.1 on the quickstart in ``workdir``; blocks until JupyterLab exits."""
    notebook_path = prepare_workdir(workdir)
    if shutil.which("jupyter", path=str(Path(sys.executable).parent)) is None and shutil.which("jupyter") is None:
        raise DemoError("JupyterLab is not installed: pip install 'gt_widget[notebook]' (or run `make demo`)")
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--ip=127.0.0.1",
        f"--ServerApp.root_dir={notebook_path.parent}",
        f"--ServerApp.open_browser={open_browser}",
    ]
    if port:
        cmd.append(f"--port={port}")
    cmd.append(notebook_path.name)
    env = _weights_env()
    env.setdefault(OUTPUT_ENV, str(notebook_path.parent / "gt-widget-output"))
    print(f"opening JupyterLab on {notebook_path} (Ctrl-C to stop)")
    try:
        return subprocess.call(cmd, cwd=notebook_path.parent, env=env)
    except KeyboardInterrupt:
        return 130
