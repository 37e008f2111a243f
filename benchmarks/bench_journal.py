"""The session's write-ahead journal: edits lost across SIGKILLs, and what one edit costs.

Not a test (``tests/widget/test_session_safety.py`` runs a bounded version). Two parts:

1. ``--kills N`` (default 100): a child process labels at full speed (``tests/support/journal_child.py``:
   one brush dot per edit, switching image every 50 edits), is SIGKILLed at a random moment 0-1.5 s after
   its first edit, and the session is reopened; every edit the child reported complete must be there.
   Half the rounds also call ``flush()`` every 7 edits.
2. Cost per edit: a session on one image per size; 200 brush strokes (5 points, radius 12, random places);
   the time ``record`` takes (diff against the previous map, zlib of the changed box, append, fdatasync)
   and the journal bytes it appends.

    python -m benchmarks.bench_journal [--kills 100] [--sizes 1920x1080,10000x8000] [--quick]

Prints a table and writes benchmarks/results/journal.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "journal.json"
CHILD = Path(__file__).resolve().parents[1] / "tests" / "support" / "journal_child.py"


def _child_module() -> Any:
    spec = importlib.util.spec_from_file_location("journal_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kills(n: int, seed: int = 1) -> dict[str, Any]:
    """``n`` kill rounds on one job folder; lost edits counted after every round."""
    jc = _child_module()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        images = jc.make_images(Path(tmp) / "in")
        out = Path(tmp) / "out"
        next_edit, reported_total, lost_max, rounds = 0, 0, 0, []
        start = time.monotonic()
        for r in range(n):
            flush_every = 7 if r % 2 else 0
            reported = jc.kill_round(images, out, next_edit, rng, flush_every=flush_every)
            reported_total += len(reported)
            next_edit = max(reported) + 1
            lost = jc.lost_edits(images, out, next_edit)
            lost_max = max(lost_max, len(lost))
            rounds.append({"reported": len(reported), "lost": len(lost), "flush_every": flush_every})
            print(f"kill {r + 1:3d}/{n}: {len(reported):4d} edits reported, {len(lost)} lost", flush=True)
        return {
            "kills": n,
            "edits_reported": reported_total,
            "edits_lost": lost_max,
            "seconds": round(time.monotonic() - start, 1),
            "rounds": rounds,
        }


def cost(width: int, height: int, strokes: int = 200, seed: int = 2) -> dict[str, Any]:
    """Per-edit journal cost on a ``width`` x ``height`` image."""
    from PIL import Image

    from gt_widget.widget import LabelingSession
    from gt_widget.widget.testing import BoxSegmenter

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        img = Path(tmp) / "img.png"
        Image.new("RGB", (width, height), (90, 120, 200)).save(img)
        session = LabelingSession([img], ["cat", "dog"], Path(tmp) / "out", segmenter=BoxSegmenter(), prefetch=False)
        store = session._store
        timings: list[float] = []
        original = store.record

        def timed(*args: Any, **kwargs: Any) -> None:
            t0 = time.perf_counter()
            original(*args, **kwargs)
            timings.append(time.perf_counter() - t0)

        store.record = timed  # type: ignore[method-assign]
        edit_ms: list[float] = []
        bytes_before = store.journal_bytes
        for _ in range(strokes):
            x, y = int(rng.integers(20, width - 60)), int(rng.integers(20, height - 20))
            points = [(x + 10 * i, y) for i in range(5)]
            t0 = time.perf_counter()
            session.widget.brush(points, radius=12)
            edit_ms.append((time.perf_counter() - t0) * 1000)
        journal_bytes = store.journal_bytes - bytes_before
        session.flush()
        session.close()
    ms = np.array(timings) * 1000
    return {
        "size": f"{width}x{height}",
        "edits": len(timings),
        "journal_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "journal_ms_p90": round(float(np.percentile(ms, 90)), 2),
        "edit_ms_p50_including_journal": round(float(np.percentile(edit_ms, 50)), 2),
        "journal_bytes_per_edit": round(journal_bytes / max(1, len(timings)), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run both parts, print a table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--sizes", default="1920x1080,10000x8000")
    ap.add_argument("--quick", action="store_true", help="10 kills, small image only")
    ap.add_argument("--skip-kills", action="store_true", help="cost only; keeps the last kill figures in the JSON")
    args = ap.parse_args(argv)
    n_kills = 10 if args.quick else args.kills
    sizes = ["1920x1080"] if args.quick else args.sizes.split(",")
    load_before = os.getloadavg()
    costs = [cost(*map(int, s.split("x"))) for s in sizes]
    kill_result = None if args.skip_kills else kills(n_kills)
    result = {
        "taken": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cost": costs,
        "kills": kill_result,
    }
    print("\n| image | journal ms p50 / p90 | brush stroke ms p50 (with journal) | journal bytes per edit |")
    print("|---|---|---|---|")
    for c in costs:
        print(
            f"| {c['size']} | {c['journal_ms_p50']} / {c['journal_ms_p90']} | {c['edit_ms_p50_including_journal']} "
            f"| {c['journal_bytes_per_edit']:.0f} |"
        )
    if kill_result is not None:
        print(
            f"\n{kill_result['kills']} SIGKILLs, {kill_result['edits_reported']} edits reported complete, "
            f"{kill_result['edits_lost']} lost ({kill_result['seconds']} s)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if kill_result is None and RESULTS.exists():  # --skip-kills keeps the last kill figures
        result["kills"] = json.loads(RESULTS.read_text()).get("kills")
    if not args.quick:
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return 1 if kill_result is not None and kill_result["edits_lost"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
