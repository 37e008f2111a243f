"""Widget work on several kernel threads at once: an undo reaches Ground Truth's files, a click is never dropped.

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


def test_a_toolbar_click_on_another_thread_during_a_toolbar_render_is_not_dropped() -> None:
    """The toolbar mutes its controls' change events while it renders (they echo the render, not the user);
    the mute was global, so a click handled on another kernel thread meanwhile (a model answer's render on
    the model thread, an edit's render on the main thread) was silently dropped. It is per thread now."""
    import threading

    import numpy as np

    from gt_widget.widget import SegmentationWidget
    from gt_widget.widget.testing import BoxSegmenter

    w = SegmentationWidget(np.full((40, 60, 3), 90, np.uint8), ["cat", "dog"], segmenter=BoxSegmenter())
    w.brush([(5, 5), (40, 5)], radius=3)
    rendering, clicked = threading.Event(), threading.Event()
    render = w.toolbar._render_candidates

    def pinned(s: object) -> None:
        rendering.set()  # thread A is inside render (muted)
        clicked.wait(2.0)
        render(s)  # type: ignore[arg-type]

    w.toolbar._render_candidates = pinned  # type: ignore[method-assign]
    a = threading.Thread(target=w.refresh, name="A", daemon=True)
    a.start()
    assert rendering.wait(10)

    def click() -> None:
        w.toolbar.action_buttons["undo"].click()
        clicked.set()

    b = threading.Thread(target=click, name="B", daemon=True)
    b.start()
    for t in (a, b):
        t.join(20)
    assert not a.is_alive() and not b.is_alive()
    w.toolbar._render_candidates = render  # type: ignore[method-assign]
    assert w.history == (0, 1), w.status  # the click undid the stroke
    assert not w.label_map.any()
    w.close()
