"""An undo made on one kernel thread while another thread handles the widget reaches Ground Truth's files.

Since ipykernel 7 (kernel subshells) JupyterLab delivers widget messages on more than one kernel thread (the
flaky e2e undo: the mouse leaving the canvas was handled on ``MainThread`` while the Undo click ran on a
``subshell-...`` thread). Each test pins one interleaving in a child process (``tests/support/
thread_race_child.py``), so a deadlock fails the test instead of hanging the run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.sessions import make_images

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, scenario: str) -> subprocess.CompletedProcess[str]:
    make_images(tmp_path / "in", n=1)
    cmd = [sys.executable, "-m", "tests.support.thread_race_child", str(tmp_path / "in"), str(tmp_path / "out")]
    return subprocess.run([*cmd, scenario], cwd=REPO, capture_output=True, text=True, timeout=180)


def test_undo_beside_a_pointer_event_does_not_deadlock(tmp_path: Path) -> None:
    """Lock order: a pointer event took the render lock, then the widget's; an undo the widget's, then the
    render lock (to redraw the overlay). Both at once hung the kernel with the undo applied but never saved."""
    child = _run(tmp_path, "pointer")
    assert child.returncode == 0, f"{child.stdout}{child.stderr}"


def test_undo_is_saved_after_the_edit_before_it(tmp_path: Path) -> None:
    """The autosave took the stroke's snapshot, then the undo's snapshot was recorded, then the stroke's: the
    files held the stroke while the widget showed it undone. A snapshot and its record are one step now."""
    child = _run(tmp_path, "autosave")
    assert child.returncode == 0, f"{child.stdout}{child.stderr}"
