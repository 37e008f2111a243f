"""Undo racing other kernel threads, in a child process (a deadlock there cannot hang the test run).

Since ipykernel 7, JupyterLab's widget messages arrive on more than one kernel thread: in the e2e test the
canvas' mouse events ran on ``MainThread`` while the Undo button's click ran on a ``subshell-...`` thread.
Each scenario pins one interleaving of an undo (thread B) with work on another thread (thread A) using
events with timeouts: the harmful interleaving happens for sure when the code allows it, and a correct code
that forbids it only costs the timeout. Prints ``OK`` and exits 0 when the undo reached Ground Truth's files;
exits 3 on a deadlock, 4 when the files hold something else.

``python -m tests.support.thread_race_child IMAGES_DIR OUT_DIR SCENARIO``, SCENARIO:
- ``pointer``: A handles a pointer event ("out", as when the mouse leaves the canvas for the Undo button)
  and is inside its handler when B's undo starts;
- ``autosave``: A committed a brush stroke and took its snapshot for the autosave, but has not recorded it
  yet, when B's undo starts.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

WAIT = 2.0
"""Seconds a pinned thread waits for the other one (a correct lock order makes it wait this long, once)."""


def main(argv: list[str]) -> None:
    from tests.support.sessions import box_session

    images, out, scenario = Path(argv[0]), Path(argv[1]), argv[2]
    session = box_session(images, out)
    w = session.widget
    before = w.label_map.copy()
    a_ready, b_ready = threading.Event(), threading.Event()

    if scenario == "pointer":
        w.brush([(10, 10), (30, 10)], radius=3)
        assert session.flush()
        w.tool = "brush"
        brush = w.tools["brush"]
        up, draw_overlay = brush.up, w.screen.draw_overlay

        def pinned_up(host: Any, p: Any, out: bool = False) -> None:
            a_ready.set()  # A is inside the pointer handler
            b_ready.wait(WAIT)
            up(host, p, out)

        def pinned_overlay(box: Any = None) -> None:
            b_ready.set()  # B's undo changed the map and redraws it
            a_ready.wait(WAIT)
            draw_overlay(box)

        brush.up = pinned_up  # type: ignore[method-assign]
        w.screen.draw_overlay = pinned_overlay  # type: ignore[method-assign]
        a = threading.Thread(target=lambda: w.handle_pointer("out", 5.0, -20.0), name="A", daemon=True)
    elif scenario == "autosave":
        record = session._store.record

        def pinned_record(*args: Any, **kw: Any) -> None:
            if threading.current_thread().name == "A":
                a_ready.set()  # A's snapshot is taken, its record not made yet
                b_ready.wait(WAIT)
                record(*args, **kw)
            else:
                record(*args, **kw)
                b_ready.set()

        session._store.record = pinned_record  # type: ignore[method-assign]
        a = threading.Thread(target=lambda: w.brush([(10, 10), (30, 10)], radius=3), name="A", daemon=True)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")

    a.start()
    a_ready.wait(10)
    b = threading.Thread(target=w.undo, name="B", daemon=True)
    b.start()
    for t in (a, b):
        t.join(20)
    if a.is_alive() or b.is_alive():
        print("DEADLOCK", flush=True)
        os._exit(3)
    assert session.flush()
    got = session.result(0)
    shown = w.label_map
    ok = got is not None and (got.label_map == shown).all() and (shown == before).all()  # type: ignore[union-attr]
    print("OK" if ok else "STALE: the files do not hold the undo", flush=True)
    os._exit(0 if ok else 4)


if __name__ == "__main__":
    main(sys.argv[1:])
