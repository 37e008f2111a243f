"""Template preview benchmark: the auto-segment round trip and the browser-side answer encoding.

1. ``/api/segment`` over real HTTP on 127.0.0.1 with MobileSAM, on GrabCut images (protocol extreme points):
   latency of the first request of an image (set_image + predict + RLE + HTTP), of a repeat request
   (predict + RLE + HTTP) and of ``predict`` inside it (timed by the server), so the preview's own
   overhead (request - predict: HTTP, JSON, RLE) shows,
   the RLE payload size, and the mIoU of the masks the endpoint returned (void ignored).
2. Two stages on small DAVIS-345 objects (< 1% of the frame): time to the first answer and to the refined
   one (``/api/segment`` then ``/api/segment/refined``), the image already set.
3. Concurrency: 50 simultaneous ``/api/segment`` requests (one connection each): how many failed, the wall
   time and the slowest answer (they queue on the segmenter); the body limits in force.
4. In headless Chromium: time of ``getAnswer()`` (index map -> RGBA -> PNG -> base64, what Submit sends)
   for synthetic images of 0.3, 2 and 12 Mpx half painted in 3 labels, and the answer's size.

    python -m benchmarks.bench_preview [--limit 10] [--quick]

Prints a table and writes benchmarks/results/preview.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED = Path(os.environ.get("GT_WIDGET_SHARED", REPO.parent / "shared"))


def _post(url: str, body: Any) -> tuple[Any, int]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        raw = r.read()
    return json.loads(raw), len(raw)


def bench_segment(limit: int) -> dict[str, Any]:
    from gt_widget.preview import preview_template
    from gt_widget.preview.server import rle_to_mask
    from gt_widget.segment import load_segmenter
    from tests.preview.helpers import extreme_points, iou

    root = SHARED / "data" / "grabcut"
    weights = os.environ.get("GT_WIDGET_WEIGHTS") or str(SHARED / "models" / "mobile_sam.pt")
    seg = load_segmenter("mobilesam", weights=weights)
    ids = sorted(p.stem for p in (root / "masks").glob("*.png"))[:limit]
    first: list[float] = []
    repeat: list[float] = []
    direct: list[float] = []
    overhead: list[float] = []
    sizes: list[int] = []
    ious: list[float] = []
    for stem in ids:
        image = next((root / "images").glob(stem + ".*"))
        gt = np.asarray(Image.open(root / "masks" / f"{stem}.png").convert("L")) > 127
        void_path = root / "void" / f"{stem}.png"
        void = np.asarray(Image.open(void_path).convert("L")) > 127 if void_path.exists() else None
        pts = extreme_points(gt)
        with preview_template("builtin:semantic", {"taskObject": str(image), "labels": ["object"]}, segmenter=seg) as p:
            src = p.images.url_for(str(image))
            t0 = time.perf_counter()
            body, size = _post(p.url + "api/segment", {"src": src, "points": pts})
            first.append(time.perf_counter() - t0)
            reps: list[float] = []
            inside: list[float] = []
            for _ in range(3):
                t0 = time.perf_counter()
                body, size = _post(p.url + "api/segment", {"src": src, "points": pts})
                reps.append(time.perf_counter() - t0)
                inside.append(body["predict_s"])
            repeat.append(statistics.median(reps))
            direct.append(statistics.median(inside))
            overhead.append(statistics.median(r - i for r, i in zip(reps, inside, strict=True)))
        sizes.append(size)
        ious.append(iou(rle_to_mask(body["counts"], body["height"], body["width"]), gt, void=void))
    return {
        "images": len(ids),
        "first_request_s_median": statistics.median(first),
        "repeat_request_s_median": statistics.median(repeat),
        "predict_only_s_median": statistics.median(direct),
        "overhead_ms_median": 1000 * statistics.median(overhead),
        "rle_json_bytes_median": int(statistics.median(sizes)),
        "miou": float(np.mean(ious)),
    }


def bench_staged(seg: Any, limit: int) -> dict[str, Any]:
    """Small DAVIS-345 objects (under 1% of the frame, where a refined answer exists): time from the
    request to the first answer and to the refined one, once the image is set (a whole-image request sets it)."""
    from benchmarks.protocol import load_instances
    from gt_widget.preview import preview_template
    from tests.preview.helpers import extreme_points

    rows = []
    for sample in load_instances("davis345", max_area=0.01)[:limit]:
        gt = np.asarray(Image.open(sample.mask_path).convert("L")) > 127
        h, w = gt.shape
        task = {"taskObject": str(sample.image_path), "labels": ["object"]}
        with preview_template("builtin:semantic", task, segmenter=seg) as p:
            src = p.images.url_for(str(sample.image_path))
            whole = [[w / 2, 0], [w / 2, h - 1], [0, h / 2], [w - 1, h / 2]]
            _post(p.url + "api/segment", {"src": src, "points": whole})  # set_image, not timed
            t0 = time.perf_counter()
            body, _ = _post(p.url + "api/segment", {"src": src, "points": extreme_points(gt)})
            t_first = time.perf_counter() - t0
            done = None
            if body["refine"] is not None:
                refined, _ = _post(p.url + "api/segment/refined", {"refine": body["refine"]})
                done = time.perf_counter() - t0 if "counts" in refined else None
            rows.append({"object": sample.id, "first_s": t_first, "refined_s": done})
    staged = [r for r in rows if r["refined_s"] is not None]
    return {
        "objects": len(rows),
        "refined_objects": len(staged),
        "first_s_median_staged": statistics.median(r["first_s"] for r in staged) if staged else None,
        "refined_s_median_staged": statistics.median(r["refined_s"] for r in staged) if staged else None,
        "first_s_median_all": statistics.median(r["first_s"] for r in rows),
        "rows": rows,
    }


def bench_concurrency(seg: Any, n: int = 50) -> dict[str, Any]:
    import threading

    from gt_widget.preview import preview_template
    from gt_widget.preview.server import BACKLOG, MAX_SEGMENT_BODY, MAX_SUBMIT_BODY, REQUEST_TIMEOUT
    from tests.preview.helpers import extreme_points

    root = SHARED / "data" / "grabcut"
    image = root / "images" / "llama.png"
    gt = np.asarray(Image.open(root / "masks" / "llama.png").convert("L")) > 127
    pts = extreme_points(gt)
    with preview_template("builtin:semantic", {"taskObject": str(image), "labels": ["object"]}, segmenter=seg) as p:
        src = p.images.url_for(str(image))
        _post(p.url + "api/segment", {"src": src, "points": pts})  # set_image once
        barrier = threading.Barrier(n)
        results: list[Any] = [None] * n

        def one(i: int) -> None:
            barrier.wait()
            t0 = time.perf_counter()
            try:
                _post(
                    p.url + "api/segment",
                    {"src": src, "points": pts, "clicks": [[pts[0][0], pts[0][1] + 1 + i % 3, True]]},
                )
                results[i] = time.perf_counter() - t0
            except OSError as exc:
                results[i] = repr(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    ok = [r for r in results if isinstance(r, float)]
    return {
        "requests": n,
        "failed": n - len(ok),
        "wall_s": wall,
        "slowest_s": max(ok) if ok else None,
        "backlog": BACKLOG,
        "request_timeout_s": REQUEST_TIMEOUT,
        "max_segment_body_bytes": MAX_SEGMENT_BODY,
        "max_submit_body_bytes": MAX_SUBMIT_BODY,
    }


def bench_answer(quick: bool = False) -> list[dict[str, Any]]:
    from gt_widget.preview import preview_template
    from tests.support.servers import chromium_browser

    rows = []
    with tempfile.TemporaryDirectory() as tmp, chromium_browser() as browser:
        sizes = ((640, 480), (1920, 1080)) if quick else ((640, 480), (1920, 1080), (4032, 3024))
        for w, h in sizes:
            path = Path(tmp) / f"synthetic_{w}x{h}.jpg"
            rng = np.random.default_rng(0)
            Image.fromarray(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)).resize((w, h)).save(path)
            with preview_template("builtin:semantic", {"taskObject": str(path), "labels": ["a", "b", "c"]}) as p:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(p.url)
                page.wait_for_selector("crowd-semantic-segmentation[data-ready]", timeout=60_000)
                result = page.evaluate(
                    """async () => {
                      const el = document.querySelector('crowd-semantic-segmentation');
                      const d = el._map.data, w = el._map.width;
                      for (let i = 0; i < d.length; i++) { const x = i % w; d[i] = x < w / 2 ? 1 + ((i / w) >> 6) % 3 : 0; }
                      const times = [];
                      let answer;
                      for (let k = 0; k < 3; k++) {
                        const t0 = performance.now();
                        answer = await el.getAnswer();
                        times.push(performance.now() - t0);
                      }
                      times.sort((a, b) => a - b);
                      return { ms: times[1], bytes: JSON.stringify(answer).length };
                    }"""
                )
                page.close()
            rows.append({"width": w, "height": h, "get_answer_ms": result["ms"], "answer_bytes": result["bytes"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--limit", type=int, default=10, help="GrabCut images for the auto-segment round trip")
    ap.add_argument("--quick", action="store_true", help="3 images and no 12 Mpx answer (a smoke test)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    from gt_widget.segment import load_segmenter

    load = os.getloadavg()
    seg = bench_segment(3 if args.quick else args.limit)
    model = load_segmenter(
        "mobilesam", weights=os.environ.get("GT_WIDGET_WEIGHTS") or str(SHARED / "models" / "mobile_sam.pt")
    )
    staged = bench_staged(model, 3 if args.quick else args.limit)
    conc = bench_concurrency(model, 50)
    answer = bench_answer(quick=args.quick)
    print("auto-segment through /api/segment (MobileSAM, CPU, 2 threads)")
    print(f"  images                      {seg['images']}")
    print(f"  first request (median)      {seg['first_request_s_median']:.2f} s  (includes set_image)")
    print(f"  repeat request (median)     {seg['repeat_request_s_median'] * 1000:.0f} ms")
    print(f"  predict inside (median)     {seg['predict_only_s_median'] * 1000:.0f} ms")
    print(f"  preview overhead (median)   {seg['overhead_ms_median']:.1f} ms  (HTTP + JSON + RLE)")
    print(f"  RLE reply (median)          {seg['rle_json_bytes_median']} bytes")
    print(f"  mIoU of returned masks      {seg['miou'] * 100:.1f}")
    print("\ntwo stages on small DAVIS objects (first answer, then the refined one; image already set)")
    print(f"  objects refined             {staged['refined_objects']} of {staged['objects']}")
    if staged["refined_objects"]:
        print(f"  first answer (median)       {staged['first_s_median_staged']:.2f} s")
        print(f"  refined answer (median)     {staged['refined_s_median_staged']:.2f} s")
    print(f"\n{conc['requests']} simultaneous /api/segment requests")
    print(f"  failed                      {conc['failed']}")
    print(
        f"  wall / slowest              {conc['wall_s']:.1f} s / {conc['slowest_s'] or 0:.1f} s (queued on one segmenter)"
    )
    print(
        f"  limits                      segment body {conc['max_segment_body_bytes']} B, submit body "
        f"{conc['max_submit_body_bytes'] // 2**20} MiB, backlog {conc['backlog']}, timeout {conc['request_timeout_s']:g} s"
    )
    print(f"  load average at start       {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (machine shared; timings vary)")
    print("\nSubmit: getAnswer() in Chromium (index map -> PNG -> base64)")
    print("  image          ms     answer bytes")
    for r in answer:
        print(f"  {r['width']}x{r['height']:<6} {r['get_answer_ms']:7.0f} {r['answer_bytes']:>12}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "preview.json"
    tmp = out.with_name(out.name + ".tmp")
    payload = {
        "load_average": list(load),
        "segment_endpoint": seg,
        "two_stage": staged,
        "concurrency": conc,
        "get_answer": answer,
    }
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(out)
    print(f"\nwrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
