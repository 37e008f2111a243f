"""Run every benchmark: each ``benchmarks/bench_*.py`` that exposes ``main(argv) -> int``.

Each benchmark prints its own table and writes its JSON under benchmarks/results/. Quality runs first
(its on-disk embedding cache makes reruns cheap). ``--quick`` passes ``--quick`` to benchmarks that
accept it and runs the quality benchmark on every 5th object only.

    python -m benchmarks.run_all            # everything (make bench)
    python -m benchmarks.run_all --only quality latency
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST = ["quality", "latency"]


def discover() -> list[str]:
    """Benchmark names (``bench_<name>.py``), quality and latency first."""
    names = sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))
    return [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; exit code 1 if any failed (the others still run)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="benchmark names, e.g. quality latency")
    ap.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    args = ap.parse_args(argv)
    failed: list[str] = []
    for name in args.only or discover():
        module = importlib.import_module(f"benchmarks.bench_{name}")
        entry = getattr(module, "main", None)
        if entry is None or not callable(entry):
            print(f"== {name}: no main(argv), skipped")
            continue
        sub_argv: list[str] = []
        if args.quick:
            sub_argv = ["--every", "5"] if name == "quality" else ["--quick"]
            if name != "quality" and "--quick" not in inspect.getsource(module):
                sub_argv = []
        print(f"== {name} {' '.join(sub_argv)}", flush=True)
        t = time.time()
        try:
            code = entry(sub_argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = 1
        print(f"== {name}: exit {code} in {time.time() - t:.0f}s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
