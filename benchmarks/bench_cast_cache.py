"""Cached autocast weights in the image encoder (``MobileSam.optimize_for_inference(cache_casts=...)``).

    flock /tmp/gtw-bench.lock python -m benchmarks.bench_cast_cache --speed
    python -m benchmarks.bench_cast_cache --attach refine_1_before=/tmp/a.json refine_1_after=/tmp/b.json

``--speed``: 1024 px ``set_image`` wall p50 and CPU-s p50 of the optimized model without and with
``cache_casts``, in one process, interleaved image by image (who goes first alternates), bf16 and fp32,
``--threads``; plus one profiled bf16 encode each: CPU ms and calls of ``aten::_to_copy`` (the casts,
with their copies) and self CPU ms of all ``aten::copy_``, and whether the embeddings are bit-identical. ``--attach NAME=PATH``: keep bench_latency
(``--refine``) runs; ``refine*_before`` / ``refine*_after`` pairs are tabled (bench_encoder_fusion's
format). Results are merged into ``results/cast_cache.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.profiler import profile

from benchmarks.bench_encoder_fusion import compact, compare_tables, interleaved_set_image
from benchmarks.bench_latency import _pick_samples, cpu_name

OUT = Path(__file__).resolve().parent / "results" / "cast_cache.json"


def _profile_ms(pred: Any, image: np.ndarray) -> dict[str, float]:
    """CPU ms of the casts (``aten::_to_copy`` with the copies it makes, and its call count) and the self
    CPU ms of all ``aten::copy_`` (casts included) in one ``set_image``."""
    with profile() as prof:
        pred.set_image(image)
    out = {"_to_copy": 0.0, "_to_copy_calls": 0.0, "copy_": 0.0}
    for e in prof.key_averages():
        if e.key == "aten::_to_copy":
            out["_to_copy"] += e.cpu_time_total / 1e3
            out["_to_copy_calls"] += e.count
        elif e.key == "aten::copy_":
            out["copy_"] += e.self_cpu_time_total / 1e3
    return out


def speed(n_images: int, rounds: int, threads: int) -> dict[str, Any]:
    """``set_image`` wall / CPU seconds, uncached vs cached casts, interleaved per image."""
    from gt_widget.segment.mobilesam import SamPredictor, load_mobilesam

    torch.set_num_threads(threads)
    models = {"uncached": load_mobilesam(optimize=False).optimize_for_inference(cache_casts=False)}
    models["cached"] = load_mobilesam()
    images = [s.load()[0] for s in _pick_samples(n_images)]
    load0 = os.getloadavg()[0]
    rows, prof = [], {}
    for precision in ("bf16", "fp32"):
        preds = {k: SamPredictor(m, precision=precision) for k, m in models.items()}
        for p in preds.values():  # warm-up (and the blank-embedding cache)
            p.set_image(images[0])
        if precision == "bf16":
            prof = {k: _profile_ms(p, images[0]) for k, p in preds.items()}
            embs = [p.get_image_embedding() for p in preds.values()]
            prof["bit_identical"] = bool(torch.equal(embs[0], embs[1]))  # type: ignore[assignment]
        rows.extend(interleaved_set_image(preds, images, rounds, precision))
    return {
        "threads": threads,
        "images": len(images),
        "rounds": rounds,
        "rows": rows,
        "bf16_profile_ms": prof,
        "loadavg_1min": [load0, os.getloadavg()[0]],
    }


def table(payload: dict[str, Any]) -> list[str]:
    lines = compare_tables(payload.get("attached", {}))
    sp = payload.get("speed")
    if sp:
        lo, hi = sp["loadavg_1min"]
        lines += [
            f"set_image 1024 px, {sp['images']} images x {sp['rounds']}, {sp['threads']} threads, load {lo:.1f}-{hi:.1f}:"
        ]
        lines += ["", "| precision | casts | wall p50 / p90 s | CPU-s p50 |", "|---|---|---|---|"]
        for r in sp["rows"]:
            lines.append(
                f"| {r['precision']} | {r['encoder']} | {r['wall_s']['p50']:.3f} / {r['wall_s']['p90']:.3f} | "
                f"{r['cpu_s_p50']:.3f} |"
            )
        pr = sp["bf16_profile_ms"]
        lines += [
            "",
            "bf16, one profiled encode, CPU ms of aten::_to_copy (with its copies) / self CPU ms of aten::copy_: "
            + ", ".join(
                f"{k} _to_copy {pr[k]['_to_copy']:.1f} ({pr[k]['_to_copy_calls']:.0f} calls) / copy_ {pr[k]['copy_']:.1f}"
                for k in ("uncached", "cached")
            )
            + f"; bit-identical embedding: {pr['bit_identical']}",
            "",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1, help="with --speed: passes over the images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attach", nargs="*", default=[], metavar="NAME=PATH", help="store another run's JSON")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    payload: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    payload.update({"host": f"Intel AMX host, 2026-12-02 ({cpu_name()})", "torch": torch.__version__})
    if args.speed:
        payload["speed"] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **speed(args.images, args.rounds, args.threads),
        }
    for item in args.attach:
        name, path = item.split("=", 1)
        payload.setdefault("attached", {})[name] = {"path": path, "data": compact(json.loads(Path(path).read_text()))}
    payload["table"] = lines = table(payload)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
