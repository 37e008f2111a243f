"""A session with imported labels whose kernel dies right after an edit of an imported image was saved,
before the session state file could be written (``tests/widget/test_session_import_crash.py``).

``python -m tests.support.import_crash_child IMAGES_DIR COCO_JSON OUT_DIR WHEN``: imports the COCO labels
(semantic), waits until they are written, then never writes the state file again and brushes image 0 (the
label "dog" at (50, 40), radius 3). ``WHEN`` says how far the save got before the process dies with
``os._exit(9)`` (no clean-up, as a killed kernel): ``journal`` (the edit is journaled; the writer is stuck,
so Ground Truth's files never get it) or ``files`` (the writer wrote the files and emptied the journal).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

BRUSH = ((50.0, 40.0), 3.0)
"""Where (x, y) and with which radius image 0 is edited, with the label "dog"."""


def main(argv: list[str]) -> None:
    from gt_widget.formats import import_coco
    from tests.support.sessions import box_session

    images, coco, out, when = Path(argv[0]), Path(argv[1]), Path(argv[2]), argv[3]
    assert when in ("journal", "files"), when
    session = box_session(images, out, initial_labels=import_coco(coco, mode="semantic"))
    assert session.flush()
    session._write_state = lambda: None  # type: ignore[method-assign]  # the kernel dies before it writes
    if when == "journal":

        def stuck(_snap: Any) -> None:
            threading.Event().wait()

        session._store._write = stuck  # type: ignore[method-assign]
    session.widget.label = "dog"
    (x, y), radius = BRUSH
    session.widget.brush([(x, y)], radius=radius)
    if when == "files":
        assert session._store.flush()
    os._exit(9)


if __name__ == "__main__":
    main(sys.argv[1:])
