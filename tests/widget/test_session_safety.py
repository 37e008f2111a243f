"""Fault injection for labeling sessions: full disk, read-only folder, SIGKILL loops, two writers, memory.

Full disk and read-only folders are real mounts (a 200 KB tmpfs, a read-only bind mount): CI runs as root on
Linux; elsewhere these tests are skipped with the reason. Every test is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import read_answer
from gt_widget.widget import LabelingSession, SessionError, memory
from gt_widget.widget import store as store_mod
from gt_widget.widget.journal import Journal, changed_box
from gt_widget.widget.testing import BoxSegmenter
from tests.support import journal_child
from tests.support.sessions import LABELS
from tests.support.sessions import box_session as _session
from tests.support.sessions import make_images as _images


def _can_mount() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux to mount a tmpfs (CI runs as root)"
    return None


needs_mount = pytest.mark.skipif(_can_mount() is not None, reason=str(_can_mount()))


@contextlib.contextmanager
def _mount(*args: str) -> Iterator[None]:
    target = args[-1]
    done = subprocess.run(["mount", *args], check=False, capture_output=True, text=True)
    if done.returncode != 0:  # root without CAP_SYS_ADMIN (some containers): say so; CI must be able to
        message = f"mount {' '.join(args)} failed: {done.stderr.strip()}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " (CI must run the fault-injection tests)")
        pytest.skip(message)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return filler


# ------------------------------------------------------------------------------------------ full disk


@needs_mount
def test_full_disk_keeps_unsaved_edits_retries_and_writes_them_when_space_returns(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in", n=3)
    out = tmp_path / "out"
    out.mkdir()
    with _mount("-t", "tmpfs", "-o", "size=200k", "tmpfs", str(out)):
        s = _session(imgs, out)
        s.widget.brush([(10, 10)], radius=3)
        assert s.flush(timeout=30)
        filler = _fill(out)
        # three edits on a full disk, then Next: nothing may be lost
        s.widget.brush([(30, 20)], radius=3)
        s.widget.label = "dog"
        s.widget.brush([(50, 30)], radius=3)
        s.widget.polygon([(2, 40), (20, 40), (10, 46)])
        expected0 = s.widget.label_map.copy()
        assert not s.flush(timeout=30)
        assert s.last_save_error is not None and "retrying" in s.last_save_error
        assert s.is_unsaved(0)
        assert "unsaved" in s._progress.value and "✔ labeled" not in s._progress.value
        s.next()
        s.widget.brush([(5, 5)], radius=2)
        expected1 = s.widget.label_map.copy()
        s.prev()  # coming back shows the unsaved edits, not the old file
        assert (s.widget.label_map == expected0).all()
        assert "1 unsaved" in s.progress_text or "2 unsaved" in s.progress_text
        filler.unlink()  # space returns: the retries write everything
        assert s.flush(timeout=30), s.last_save_error
        assert s.last_save_error is None and not s.is_unsaved(0) and not s.is_unsaved(1)
        assert "✔ labeled" in s._progress.value
        s.close()
        s2 = _session(imgs, out)
        assert (s2.result(0).label_map == expected0).all()  # type: ignore[union-attr]
        assert (s2.result(1).label_map == expected1).all()  # type: ignore[union-attr]
        assert not s2.is_unsaved(0) and not s2.is_unsaved(1)
        s2.close()


# ---------------------------------------------------------------------------------------- read-only


@needs_mount
def test_read_only_folder_keeps_edits_and_writes_them_once_writable(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in", n=2)
    out = tmp_path / "out"
    s = _session(imgs, out)
    s.widget.brush([(10, 10)], radius=3)
    assert s.flush(timeout=30)
    job = s.job_dir
    with _mount("--bind", str(job), str(job)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(job)], check=True, capture_output=True)
        s.widget.brush([(40, 30)], radius=4)
        s.widget.label = "dog"
        s.widget.brush([(20, 30)], radius=4)
        expected0 = s.widget.label_map.copy()
        assert not s.flush(timeout=30)
        assert s.last_save_error is not None and "Read-only" in s.last_save_error
        assert s.is_unsaved(0) and "unsaved" in s._progress.value
        s.next()  # navigation on a read-only folder neither crashes nor discards
        assert (s.result(0).label_map == expected0).all()  # type: ignore[union-attr]
    # the bind mount is gone: the folder is writable again
    assert s.flush(timeout=30), s.last_save_error
    s.close()
    s2 = _session(imgs, out)
    assert (s2.result(0).label_map == expected0).all()  # type: ignore[union-attr]
    s2.close()


# --------------------------------------------------------------------------------------------- kills


@pytest.mark.parametrize("flush_every", [0, 7])
def test_sigkill_loop_loses_no_completed_edit(tmp_path: Path, flush_every: int) -> None:
    """20 SIGKILLs at random moments of full-speed editing: every edit reported complete survives."""
    images = journal_child.make_images(tmp_path / "in")
    out = tmp_path / "out"
    rng = random.Random(11 + flush_every)
    next_edit, total_reported = 0, 0
    for _round in range(10):
        reported = journal_child.kill_round(images, out, next_edit, rng, flush_every=flush_every)
        total_reported += len(reported)
        next_edit = max(reported) + 1
        assert journal_child.lost_edits(images, out, next_edit) == []
    assert total_reported > 50  # the kills really landed in the middle of editing


# -------------------------------------------------------------------------------------- two writers


_HOLDER = """
import sys, time
from gt_widget.widget import LabelingSession
from gt_widget.widget.testing import BoxSegmenter
s = LabelingSession(sys.argv[1:-1], ["cat", "dog"], sys.argv[-1], segmenter=BoxSegmenter(), prefetch=False)
s.widget.brush([(10, 10)], radius=3)
s.flush()
print("ready", flush=True)
time.sleep(120)
"""


def test_second_process_gets_a_clear_message_or_read_only_and_a_dead_holder_frees_the_folder(
    tmp_path: Path,
) -> None:
    imgs = _images(tmp_path / "in", n=2)
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, *map(str, imgs), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ready"
        with pytest.raises(SessionError, match=rf"another labeling session \(process {holder.pid} on "):
            _session(imgs, out)
        ro = _session(imgs, out, read_only=True)
        assert (ro.widget.label_map == ro.result(0).label_map).all() and ro.widget.label_map.any()  # type: ignore[union-attr]
        before = sorted(p.name for p in out.rglob("*"))
        ro.widget.brush([(40, 30)], radius=4)  # edits in a read-only session are not saved
        ro.next()
        ro.close()
        assert sorted(p.name for p in out.rglob("*")) == before
        assert "read-only" in ro._status.value
    finally:
        holder.kill()  # SIGKILL: the holder dies without releasing anything
        holder.wait()
    s = _session(imgs, out)  # the dead holder's lock is broken safely
    assert s.result(0) is not None and s.result(0).label_map.any()  # type: ignore[union-attr]
    s.close()


def test_two_processes_never_both_write(tmp_path: Path) -> None:
    """Both processes try to open the folder at once: exactly one writes; the manifest keeps both images."""
    imgs = _images(tmp_path / "in", n=2)
    out = tmp_path / "out"
    script = """
import sys
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import read_answer
from gt_widget.widget import LabelingSession, SessionError
from gt_widget.widget.testing import BoxSegmenter
try:
    s = LabelingSession(sys.argv[2:], ["cat", "dog"], sys.argv[1], segmenter=BoxSegmenter(), prefetch=False)
except SessionError as exc:
    print("refused", exc)
    sys.exit(0)
for i in range(20):
    s.widget.brush([(2 + 3 * i, 10)], radius=1)
s.close()
print("wrote")
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(out), *map(str, imgs)], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    wrote = [o for o in outputs if o.startswith("wrote")]
    assert len(wrote) >= 1
    for o in outputs:
        assert o.startswith("wrote") or "being written by another labeling session" in o
    s = _session(imgs, out)
    assert int((s.result(0).label_map > 0).sum()) >= 20 * 5  # type: ignore[union-attr]
    lines = s.output_manifest_path.read_text().splitlines()
    assert len(lines) == 2  # one line per image
    s.close()


def test_recreating_a_session_while_it_saves_takes_over_without_crashing(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in", n=2, size=(400, 300))
    out = tmp_path / "out"
    s = _session(imgs, out)
    expected = None
    for round_ in range(15):
        for i in range(5):
            s.widget.brush([(10 + 20 * i, 10 + 15 * round_)], radius=5)
        expected = s.widget.label_map.copy()
        s = _session(imgs, out)  # the cell is re-run while the old session is still writing
        assert (s.widget.label_map == expected).all()
    assert s.flush(timeout=30)
    assert not list(out.rglob("*.tmp"))
    s.close()
    s2 = _session(imgs, out)
    assert (s2.result(0).label_map == expected).all()  # type: ignore[union-attr]
    s2.close()


def test_a_replaced_session_refuses_edits_clearly(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in", n=1)
    old = _session(imgs, tmp_path / "out")
    new = _session(imgs, tmp_path / "out")
    with pytest.raises(SessionError, match="replaced by a newer one"):
        old.save()
    new.widget.brush([(5, 5)], radius=2)
    assert new.flush(timeout=30)
    new.close()


# ------------------------------------------------------------------------------------------ journal


def test_journal_ignores_a_torn_record_and_replays_only_what_the_files_miss(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in", n=1)
    out = tmp_path / "out"
    s = _session(imgs, out)
    s.widget.brush([(10, 10)], radius=3)
    assert s.flush(timeout=30)
    job = s.job_dir
    # a record durably journaled but never written to the files (the kernel died before the writer ran)
    with s._store._cond:
        s._store._closed = True  # stop the writer without flushing
        s._store._cond.notify_all()
    s._store._writer.join(timeout=10)  # type: ignore[union-attr]
    s._store._closed = False
    s.widget.brush([(40, 30)], radius=4)
    expected = s.widget.label_map.copy()
    journal = Journal(job / "gt-widget-journal.bin")
    size = journal.path.stat().st_size
    with journal.path.open("ab") as fh:  # plus half a record from a kill in the middle of an append
        fh.write(b"GTJ1E\x00\x00")
    assert journal.valid_length() == size  # the torn record is not read
    files_before = read_answer(json.loads(s.saved_files()[0].read_text()), LABELS)  # type: ignore[index]
    assert not (files_before.label_map == expected).all()  # type: ignore[union-attr]
    s._store.lock.release()
    store_mod._LIVE.clear()
    s2 = _session(imgs, out)  # replays the journaled edit the files miss
    assert (s2.widget.label_map == expected).all()
    assert s2.flush(timeout=30)
    assert journal.path.stat().st_size == 0  # everything is in the files: the journal is emptied
    files_after = read_answer(json.loads(s2.saved_files()[0].read_text()), LABELS)  # type: ignore[index]
    assert (files_after.label_map == expected).all()  # type: ignore[union-attr]
    s2.close()


def test_changed_box_is_tight() -> None:
    a = np.zeros((50, 60), np.uint8)
    b = a.copy()
    b[10:13, 20:31] = 2
    b[40, 5] = 1
    assert changed_box(a, b) == (10, 41, 5, 31)
    assert changed_box(a, a) is None
    assert changed_box(None, a) == (0, 50, 0, 60)
    rng = np.random.default_rng(5)  # odd widths and sizes not divisible by 8 against the plain definition
    for _ in range(500):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        old = rng.integers(0, 3, (h, w)).astype(np.uint8)
        new = old.copy()
        for _k in range(int(rng.integers(0, 3))):
            new[rng.integers(0, h), rng.integers(0, w)] += 1
        d = old != new
        rows, cols = np.flatnonzero(d.any(axis=1)), np.flatnonzero(d.any(axis=0))
        want = None if rows.size == 0 else (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        assert changed_box(old, new) == want


# ------------------------------------------------------------------------------------------- memory


def test_unsaved_snapshots_of_other_images_are_compressed_beyond_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "MEMORY_BUDGET_BYTES", 1)
    imgs = _images(tmp_path / "in", n=3, size=(300, 200))
    s = _session(imgs, tmp_path / "out")

    def disk_full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod, "atomic_write_bytes", disk_full)
    s.widget.brush([(10, 10)], radius=3)
    m0 = s.widget.label_map.copy()
    assert not s.flush(timeout=30)
    s.next()
    snap = s._store._pending[0]
    assert snap.map is None and snap.packed is not None and snap.nbytes < m0.nbytes // 10
    assert (s.result(0).label_map == m0).all()  # type: ignore[union-attr]
    monkeypatch.setattr(store_mod, "atomic_write_bytes", atomic_write_bytes)
    assert s.flush(timeout=30)
    s.close()
    assert (_session(imgs, tmp_path / "out").result(0).label_map == m0).all()  # type: ignore[union-attr]


def test_images_over_the_budget_are_not_decoded_twice_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next image is prefetched only when its decoded pixels fit the budget (a 99 MP photo does not)."""
    from gt_widget.widget import session as session_mod

    decoded: list[str] = []
    real = session_mod.load_image

    def spy(source: object) -> np.ndarray:
        decoded.append(Path(str(source)).name)
        return real(source)  # type: ignore[arg-type]

    monkeypatch.setattr(session_mod, "load_image", spy)
    imgs = _images(tmp_path / "in", n=2, size=(64, 48))
    for budget, expected in ((64 * 48 * 3, ["img0.png", "img1.png"]), (64 * 48 * 3 - 1, ["img0.png"])):
        monkeypatch.setattr(memory, "MEMORY_BUDGET_BYTES", budget)
        decoded.clear()
        s = LabelingSession(imgs, LABELS, tmp_path / f"out{budget}", segmenter=BoxSegmenter(), prefetch=True)
        s.widget.wait_idle(timeout=30)
        deadline = time.monotonic() + 10
        while decoded != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the prefetch thread had time to decode, had it wanted to
        assert decoded == expected
        s.close()


def test_an_autosave_refresh_while_the_controls_are_built_is_harmless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The autosave thread calls the session's refresh whenever a write lands, also while the session is still
    building its controls (a race seen before: the progress line existed, the status line not yet). Here the
    refresh runs at every control the session creates; the session must come up whole."""
    import ipywidgets as W

    building: list[LabelingSession] = []
    real_build = LabelingSession._build_ui
    real_html = W.HTML

    def build(self: LabelingSession) -> None:
        building.append(self)
        real_build(self)

    def html(*args: object, **kwargs: object) -> object:
        out = real_html(*args, **kwargs)
        for session in building:
            session._refresh_ui()  # what the writer thread may do at this moment
        return out

    monkeypatch.setattr(LabelingSession, "_build_ui", build)
    monkeypatch.setattr(W, "HTML", html)
    s = _session(_images(tmp_path / "in", n=2), tmp_path / "out")
    assert building == [s] and "0 / 2 labeled" in s._progress.value and "autosaving" in s._status.value
    s.close()
