"""A kernel that dies right after an edit of an imported image: the edit and its "human" mark survive.

The edit is saved (journaled, maybe written) before the session's state file records that the image left
"imported, to review"; a kernel dying between the two must not bring the image back as "to review" (and
``human-annotated: "no"``) in the resumed session. The child process is ``tests/support/import_crash_child``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gt_widget.groundtruth.formats import SemanticResult
from gt_widget.widget.session_state import STATE_FILE
from tests.support import import_crash_child
from tests.support.sessions import LABELS, box_session, make_images
from tests.widget.test_session_import import _coco, _human, _lines

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("when", ["journal", "files"])
def test_an_edit_of_an_imported_image_stays_human_when_the_kernel_dies_before_the_state_file(
    tmp_path: Path, when: str
) -> None:
    make_images(tmp_path / "in", n=2)
    coco = _coco(tmp_path / "in")
    out = tmp_path / "out"
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.import_crash_child", str(tmp_path / "in"), str(coco), str(out), when],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 9, child.stderr
    state = json.loads((out / "gt-widget-local" / STATE_FILE).read_text())
    assert state["imported"] == [0, 1]  # the state file still says "to review": the crash window

    again = box_session(tmp_path / "in", out)  # the resumed kernel
    try:
        assert [again.is_to_review(i) for i in range(2)] == [False, True]
        assert again.flush()
        assert [_human(x) for x in _lines(again)] == ["yes", "no"]
        (x, y), _radius = import_crash_child.BRUSH
        got = again.result(0)
        assert isinstance(got, SemanticResult)
        assert got.label_map[int(y), int(x)] == LABELS.index("dog") + 1  # the edit itself is there too
        assert json.loads((out / "gt-widget-local" / STATE_FILE).read_text())["imported"] == [1]  # healed
    finally:
        again.close()
