"""The session's own state file, ``<job>/gt-widget-session.json``: what it labels and where it stands.

Keys: ``version``, ``job_name``, ``labels``, ``mode``, ``label_attribute``, ``sources`` (the input refs, in
order), ``index`` (the image shown, 0-based) and, once initial labels were imported, ``imported`` (the
0-based indices still "imported, to review"; present at all = the import is done and never repeated).
It is written after an edit is saved, so on resume the edit's own records win over ``imported``: the journal's
human / imported mark and the output manifest's ``human-annotated`` (``store.py``). Ground Truth never reads it. A session with other labels, mode or sources in the folder is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gt_widget.fileio import atomic_write_bytes
from gt_widget.widget.session_options import SessionError, SessionOptions

STATE_FILE = "gt-widget-session.json"
STATE_VERSION = 1


@dataclass
class SavedState:
    """What a previous session left: the image shown and the imported images not reviewed yet (None: no
    import was done in this folder)."""

    index: int = 0
    imported: set[int] | None = None


def read_state(job_dir: Path, options: SessionOptions, sources: list[str]) -> SavedState:
    """The saved state of ``job_dir`` (a fresh one when there is none); ``SessionError`` when it belongs to a
    session with other labels, mode or sources, or cannot be read."""
    path = job_dir / STATE_FILE
    if not path.exists():
        return SavedState()
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SessionError(f"cannot read the session state {path}: {exc}; delete it to start this job afresh") from None
    for key, mine in (("labels", options.labels), ("mode", options.mode), ("sources", sources)):
        if state.get(key) != mine:
            raise SessionError(
                f"{job_dir} holds a session with different {key} ({_short(state.get(key))} there, "
                f"{_short(mine)} now). Resume it with the same {key}, or pass another output_dir or job_name "
                "to start a new job"
            )
    index = int(state.get("index", 0))
    imported = state.get("imported")
    return SavedState(
        index if 0 <= index < len(sources) else 0,
        None if imported is None else {int(i) for i in imported if 0 <= int(i) < len(sources)},
    )


def write_state(
    job_dir: Path, options: SessionOptions, sources: list[str], index: int, imported: set[int] | None
) -> str | None:
    """Write the state atomically; the error text when it failed (a full disk must not stop navigation)."""
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "job_name": options.job_name,
        "labels": options.labels,
        "mode": options.mode,
        "label_attribute": options.label_attribute,
        "sources": sources,
        "index": index,
    }
    if imported is not None:
        state["imported"] = sorted(imported)
    try:
        atomic_write_bytes(job_dir / STATE_FILE, json.dumps(state, indent=1).encode("utf-8"))
    except OSError as exc:
        return f"cannot save the session's position ({exc}); your labels are kept and retried"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
