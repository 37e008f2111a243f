"""Conv/linear + GELU fusion in the image encoder (``MobileSam.optimize_for_inference(fuse_gelu=...)``).

    python -m benchmarks.bench_encoder_fusion --numerics          # embeddings vs the exact fp32 path
    flock /tmp/gtw-bench.lock python -m benchmarks.bench_encoder_fusion --speed
    python -m benchmarks.bench_encoder_fusion --attach refine_before=/tmp/a.json refine_after=/tmp/b.json

``--numerics``: on ``--images`` objects (half GrabCut-50, half DAVIS-345, as bench_latency picks them) the
1024 px image embedding of the exact fp32 path (``optimize=False``) against bf16 unfused (conv+BN folded,
NHWC, separate GELU), bf16 fused and fp32 fused: max / mean |diff| and cosine, per image and overall.
``--speed``: ``set_image`` wall p50 and CPU-s p50 (process time, all threads) of unfused vs fused models
in one process, interleaved image by image so load drifts hit both alike, fp32 and bf16, ``--threads``.
``--attach NAME=PATH``: keep another run's JSON (bench_latency, bench_latency --refine, bench_quality;
the latter compacted to summaries and per-object IoU); pairs named ``refine*_before`` / ``refine*_after``,
``latency*_...`` and ``quality*_...`` are tabled before -> after. Results are merged into
``results/encoder_fusion.json`` (sections replaced, others kept); the table of all sections is printed.
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

from benchmarks.bench_latency import _pick_samples, cpu_name

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "encoder_fusion.json"


def _models() -> dict[str, Any]:
    """exact (no rewrites), unfused (BN folded, NHWC), conv_only (+ conv+GELU fused), fused (the default)."""
    from gt_widget.segment.mobilesam import load_mobilesam

    conv_only = load_mobilesam(optimize=False).optimize_for_inference(fuse_gelu=False)
    conv_only.image_encoder.fuse_gelu(linear=False)
    return {
        "exact": load_mobilesam(optimize=False),
        "unfused": load_mobilesam(optimize=False).optimize_for_inference(fuse_gelu=False),
        "conv_only": conv_only,
        "fused": load_mobilesam(),
    }


def _embedding(model: Any, precision: str, image: np.ndarray) -> np.ndarray:
    from gt_widget.segment.mobilesam import SamPredictor

    p = SamPredictor(model, precision=precision)
    p.set_image(image)
    return p.get_image_embedding().numpy().astype(np.float64)


def numerics(n_images: int) -> dict[str, Any]:
    """Embedding differences to the exact fp32 path, per variant (overall and per image)."""
    models = _models()
    variants = {
        "bf16_unfused": ("unfused", "bf16"),
        "bf16_fused": ("fused", "bf16"),
        "fp32_fused": ("fused", "fp32"),
    }
    per_image: list[dict[str, Any]] = []
    for s in _pick_samples(n_images):
        image, _, _ = s.load()
        ref = _embedding(models["exact"], "fp32", image)
        row: dict[str, Any] = {"set": s.set_name, "id": s.id}
        for name, (model, precision) in variants.items():
            emb = _embedding(models[model], precision, image)
            d = np.abs(emb - ref)
            cos = float((emb * ref).sum() / np.sqrt((emb * emb).sum() * (ref * ref).sum()))
            row[name] = {"max_abs": float(d.max()), "mean_abs": float(d.mean()), "cosine": cos}
        per_image.append(row)
        print(f"  {s.set_name}/{s.id}: " + ", ".join(f"{k} mean {row[k]['mean_abs']:.2e}" for k in variants))
    summary = {
        name: {
            "max_abs": max(r[name]["max_abs"] for r in per_image),
            "mean_abs": float(np.mean([r[name]["mean_abs"] for r in per_image])),
            "cosine_min": min(r[name]["cosine"] for r in per_image),
            "cosine_mean": float(np.mean([r[name]["cosine"] for r in per_image])),
            "closer_than_bf16_unfused": sum(r[name]["mean_abs"] <= r["bf16_unfused"]["mean_abs"] for r in per_image),
        }
        for name in variants
    }
    return {
        "reference": "exact fp32 path (optimize=False)",
        "images": len(per_image),
        "summary": summary,
        "per_image": per_image,
    }


def interleaved_set_image(
    preds: dict[str, Any], images: list[np.ndarray], rounds: int, precision: str
) -> list[dict[str, Any]]:
    """``set_image`` wall / CPU seconds of each predictor in ``preds`` (warmed up already), interleaved
    per image with the order alternating, so a change in the machine's load hits every variant alike."""
    wall: dict[str, list[float]] = {k: [] for k in preds}
    cpu: dict[str, list[float]] = {k: [] for k in preds}
    for r in range(rounds):
        for i, image in enumerate(images):
            order = list(preds) if (i + r) % 2 == 0 else list(preds)[::-1]  # alternate who goes first
            for k in order:
                t0, c0 = time.perf_counter(), time.process_time()
                preds[k].set_image(image)
                wall[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
    rows = []
    for k in preds:
        rows.append(
            {
                "precision": precision,
                "encoder": k,
                "calls": len(wall[k]),
                "wall_s": {"p50": float(np.median(wall[k])), "p90": float(np.percentile(wall[k], 90))},
                "cpu_s_p50": float(np.median(cpu[k])),
            }
        )
        print(f"  {precision} {k}: wall p50 {rows[-1]['wall_s']['p50']:.3f} s, CPU {rows[-1]['cpu_s_p50']:.3f} s")
    return rows


def speed(n_images: int, rounds: int, threads: int) -> dict[str, Any]:
    """``set_image`` wall / CPU seconds, unfused vs fused, interleaved per image."""
    from gt_widget.segment.mobilesam import SamPredictor

    torch.set_num_threads(threads)
    models = _models()
    images = [s.load()[0] for s in _pick_samples(n_images)]
    load0 = os.getloadavg()[0]
    rows = []
    for precision in ("bf16", "fp32"):
        preds = {k: SamPredictor(models[k], precision=precision) for k in ("unfused", "conv_only", "fused")}
        for p in preds.values():  # warm-up (and the blank-embedding cache)
            p.set_image(images[0])
        rows.extend(interleaved_set_image(preds, images, rounds, precision))
    return {
        "threads": threads,
        "images": len(images),
        "rounds": rounds,
        "rows": rows,
        "loadavg_1min": [load0, os.getloadavg()[0]],
    }


def compact(data: dict[str, Any]) -> dict[str, Any]:
    """An attached JSON without bulk: bench_quality keeps its config and per-set summary + per-object IoU."""
    if "sets" not in data:
        return data
    keep = {k: data[k] for k in ("recipe", "segmenter_config", "shard") if k in data}
    keep["sets"] = {
        name: {"summary": v["summary"], "iou": {r["id"]: round(r["iou"], 5) for r in v.get("rows", [])}}
        for name, v in data["sets"].items()
    }
    return keep


def _pairs(attached: dict[str, Any], prefix: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(label, before, after) for attachments named ``<prefix>[_x]_before`` / ``..._after``."""
    out = []
    for name in sorted(attached):
        if name.startswith(prefix) and name.endswith("_before"):
            after = attached.get(name[: -len("_before")] + "_after")
            if after is not None:
                out.append(
                    (name[len(prefix) : -len("_before")].strip("_") or "-", attached[name]["data"], after["data"])
                )
    return out


def _load(r: dict[str, Any]) -> str:
    lo, hi = r["loadavg_1min"]
    return f"{min(lo, hi):.1f}-{max(lo, hi):.1f}"


def compare_tables(attached: dict[str, Any]) -> list[str]:
    """Before -> after tables of the attached bench_latency / bench_quality runs."""
    lines: list[str] = []
    rows = []
    for label, b, a in _pairs(attached, "refine"):
        for rb, ra in zip(b["refined_pass"]["rows"], a["refined_pass"]["rows"], strict=True):
            rows.append(
                f"| {label} | {rb['precision']} ({rb['setting']}) | {rb['refine_s']['p50']:.3f} -> "
                f"{ra['refine_s']['p50']:.3f} | {rb['refine_cpu_s']['p50']:.2f} -> {ra['refine_cpu_s']['p50']:.2f} | "
                f"{rb['miou_first']:.2f} -> {ra['miou_first']:.2f} | {_load(rb)} / {_load(ra)} |"
            )
    if rows:
        lines += ["refined (zoomed) pass, bench_latency --refine --images 12, before -> after:", ""]
        lines += ["| run | precision | wall p50 s | CPU-s p50 | mIoU first | load before / after |"]
        lines += ["|---|---|---|---|---|---|", *rows, ""]
    rows = []
    for label, b, a in _pairs(attached, "latency"):
        after = {r["variant"]: r for r in a["results"]}
        for rb in b["results"]:
            ra = after.get(rb["variant"])
            if ra is not None:
                rows.append(
                    f"| {label} | {rb['variant']} | {rb['set_image_s']['p50']:.3f} -> {ra['set_image_s']['p50']:.3f} | "
                    f"{rb['set_image_cpu_s']['p50']:.2f} -> {ra['set_image_cpu_s']['p50']:.2f} | "
                    f"{rb['peak_rss_mb']:.0f} -> {ra['peak_rss_mb']:.0f} | {rb['miou']:.2f} -> {ra['miou']:.2f} | "
                    f"{_load(rb)} / {_load(ra)} |"
                )
    if rows:
        lines += ["set_image, bench_latency --images 12, before -> after:", ""]
        lines += ["| run | variant | wall p50 s | CPU-s p50 | peak RSS MB | mIoU | load before / after |"]
        lines += ["|---|---|---|---|---|---|---|", *rows, ""]
    rows = []
    for label, b, a in _pairs(attached, "quality"):
        for name, vb in b["sets"].items():
            sb, sa = vb["summary"], a["sets"][name]["summary"]
            rows.append(
                f"| {label} | {name} | {sb['n']} | {sb['miou']:.2f} -> {sa['miou']:.2f} | "
                f"{sb['miou_small_quartile']:.2f} -> {sa['miou_small_quartile']:.2f} |"
            )
    if rows:
        lines += ["first-mask quality (bench_quality --no-clicks --no-jitter --no-grabcut), before -> after:", ""]
        lines += ["| subset | set | objects | mIoU | mIoU smallest quartile |", "|---|---|---|---|---|", *rows, ""]
    return lines


def table(payload: dict[str, Any]) -> list[str]:
    """Markdown lines for the sections present."""
    lines: list[str] = compare_tables(payload.get("attached", {}))
    if "speed" in payload:
        sp = payload["speed"]
        lines += [
            f"set_image, 1024 px, {sp['threads']} threads, load {sp['loadavg_1min'][0]:.1f}-"
            f"{sp['loadavg_1min'][1]:.1f}:",
            "",
            "| precision | wall p50 s unfused / conv-only / fused | CPU-s p50 unfused / conv-only / fused "
            "| speed-up (CPU, fused) |",
            "|---|---|---|---|",
        ]
        by = {(r["precision"], r["encoder"]): r for r in sp["rows"]}
        for prec in ("bf16", "fp32"):
            rs = [by[(prec, k)] for k in ("unfused", "conv_only", "fused")]
            wall = " / ".join(f"{r['wall_s']['p50']:.3f}" for r in rs)
            cpu = " / ".join(f"{r['cpu_s_p50']:.3f}" for r in rs)
            lines.append(f"| {prec} | {wall} | {cpu} | {rs[0]['cpu_s_p50'] / rs[2]['cpu_s_p50']:.2f}x |")
        lines.append("")
    if "numerics" in payload:
        nu = payload["numerics"]
        lines += [
            f"embedding vs exact fp32 path, {nu['images']} images:",
            "",
            "| variant | max abs | mean abs | cosine min | closer than bf16 unfused |",
            "|---|---|---|---|---|",
        ]
        for name, s in nu["summary"].items():
            lines.append(
                f"| {name} | {s['max_abs']:.4f} | {s['mean_abs']:.2e} | {s['cosine_min']:.6f} | "
                f"{s['closer_than_bf16_unfused']}/{nu['images']} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numerics", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=1, help="with --speed: passes over the images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attach", nargs="*", default=[], metavar="NAME=PATH", help="store another run's JSON")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    payload: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    payload.update({"host": f"Intel AMX host, 2026-12-02 ({cpu_name()})", "torch": torch.__version__})
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if args.numerics:
        payload["numerics"] = {"when": stamp, **numerics(args.images)}
    if args.speed:
        payload["speed"] = {"when": stamp, **speed(args.images, args.rounds, args.threads)}
    for item in args.attach:
        name, path = item.split("=", 1)
        payload.setdefault("attached", {})[name] = {"path": path, "data": compact(json.loads(Path(path).read_text()))}
    lines = table(payload)
    payload["table"] = lines
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
