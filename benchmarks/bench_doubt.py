"""Calibrate the "other shapes available" cue (``gt_widget.segment.doubt``) on per-object candidate data.

Not a test. Reads bench_quality result JSONs whose rows carry ``cand_ious`` / ``cand_scores`` (IoU with
the ground truth and score of each returned candidate, chosen first). An object is a *positive* when some
other candidate beats the chosen one by >= 5 IoU points. Rules of the form "runner-up within ``margin``
of the chosen score and chosen score < ``max_score``" are swept on DAVIS-345 half A (protocol.py); the
rule with the best F1 there (ties: fewer flags) is reported on half B and GrabCut-50, beside today's
widget rule (score < 0.8, or another candidate within 0.05; its extra "masks differ" test needs the
candidates' overlap, counted where the rows have it).

    python -m benchmarks.bench_doubt RESULT.json [RESULT.json ...] [--out benchmarks/results/doubt.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import protocol as P
from gt_widget.segment.doubt import MARGIN, MAX_OVERLAP, MAX_SCORE, doubt_rule

RESULTS = Path(__file__).resolve().parent / "results" / "doubt.json"
GAIN = 0.05


def _objects(paths: Sequence[Path]) -> dict[str, list[dict[str, Any]]]:
    """Rows with candidate data, grouped as ``davis-A``, ``davis-B`` and ``grabcut``."""
    groups: dict[str, list[dict[str, Any]]] = {"davis-A": [], "davis-B": [], "grabcut": []}
    for path in paths:
        data = json.loads(path.read_text())
        for name, res in data["sets"].items():
            for row in res["rows"]:
                if "cand_ious" not in row:
                    continue
                key = "grabcut" if name == "grabcut" else f"davis-{P.davis_half(row['id'])}"
                groups[key].append(row)
    return groups


def _positive(row: dict[str, Any]) -> bool:
    ious = row["cand_ious"]
    return len(ious) > 1 and max(ious[1:]) >= ious[0] + GAIN


def _today(row: dict[str, Any]) -> bool:
    scores, overlap = row["cand_scores"], row.get("cand_overlap")
    if scores[0] < 0.8:
        return True
    return any(scores[0] - s < 0.05 and (overlap is None or overlap[k] < 0.9) for k, s in enumerate(scores) if k > 0)


def _score(rows: list[dict[str, Any]], flag: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    tp = sum(1 for r in rows if flag(r) and _positive(r))
    fp = sum(1 for r in rows if flag(r) and not _positive(r))
    fn = sum(1 for r in rows if not flag(r) and _positive(r))
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    f1 = 2 * prec * rec / (prec + rec) if prec and rec else 0.0
    return {
        "objects": len(rows),
        "positives": tp + fn,
        "positive_pct": round(100 * (tp + fn) / len(rows), 1) if rows else None,
        "flagged": tp + fp,
        "precision": None if prec is None else round(prec, 3),
        "recall": None if rec is None else round(rec, 3),
        "f1": round(f1, 3),
    }


def _rule(margin: float, max_score: float, max_overlap: float) -> Callable[[dict[str, Any]], bool]:
    def flag(row: dict[str, Any]) -> bool:
        s, ov = row["cand_scores"], row.get("cand_overlap")
        return len(s) > 1 and doubt_rule(s[0], s[1], 0.0 if ov is None else ov[1], margin, max_score, max_overlap)

    return flag


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    groups = _objects(args.results)
    tune = groups["davis-A"]
    if not tune:
        print("no rows with candidate data for DAVIS-345 half A", file=sys.stderr)
        return 2
    sweep = []
    for margin in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 1.0):
        for max_score in (0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.01):
            for max_overlap in (0.5, 0.7, 0.8, 0.9, 1.01):
                res = _score(tune, _rule(margin, max_score, max_overlap))
                sweep.append({"margin": margin, "max_score": max_score, "max_overlap": max_overlap, **res})
    best = max(sweep, key=lambda r: (r["f1"], -r["flagged"]))
    chosen = _rule(best["margin"], best["max_score"], best["max_overlap"])
    shipped = _rule(MARGIN, MAX_SCORE, MAX_OVERLAP)
    report: dict[str, Any] = {
        "definition": f"positive = another candidate's IoU >= chosen's + {GAIN}; rule fitted on davis-A",
        "sources": [str(p) for p in args.results],
        "fitted": {"margin": best["margin"], "max_score": best["max_score"], "max_overlap": best["max_overlap"]},
        "shipped": {"margin": MARGIN, "max_score": MAX_SCORE, "max_overlap": MAX_OVERLAP},
        "groups": {
            g: {
                "fitted_rule": _score(rows, chosen),
                "shipped_rule": _score(rows, shipped),
                "today_rule": _score(rows, _today),
            }
            for g, rows in groups.items()
            if rows
        },
        "sweep_davis_A": sweep,
    }
    print(
        f"fitted on davis-A: margin <= {best['margin']}, chosen score < {best['max_score']}, "
        f"overlap < {best['max_overlap']} (F1 {best['f1']})"
    )
    print("| objects | rule | n | positives % | flagged | precision | recall |")
    print("|---|---|---|---|---|---|---|")
    for g, res in report["groups"].items():
        for name in ("today_rule", "shipped_rule", "fitted_rule"):
            r = res[name]
            print(
                f"| {g} | {name} | {r['objects']} | {r['positive_pct']} | {r['flagged']} | "
                f"{r['precision']} | {r['recall']} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
