"""Interactive mask decoder cost (issue 13): the cheap ``MaskDecoder.forward`` against the plain path.

    python -m benchmarks.bench_decoder [--image 124080] [--repeats 15]

"plain" is the decoder as it was (``MaskDecoder.predict_all`` on per-prompt copies of the image tokens,
all 4 masks, transposed convolutions, then the selection); "fast, no cache" is ``MaskDecoder.forward``
without the per-image cache of the first block's image-side projections; "fast" is today's fp32 path
(cache on); "bf16" runs the decoder in bf16 (``decoder_precision="bf16"``), measured only where the CPU
has native bf16 unless ``--bf16`` forces it (elsewhere bf16 products are emulated, ~7x slower). Measures
``MobileSamSegmenter.predict(extreme_points, zoom="off")`` (the first-stage recipe: 2 prompt variants)
p50 CPU-ms on 1 thread (``time.process_time``: little inflated by load) and p50 wall-ms on 2 threads, and
the recipe's decoder calls alone (recorded, replayed). Prints a table, writes ``results/decoder.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import protocol as P
from benchmarks.bench_latency import cpu_name
from gt_widget.evaluate import extreme_points
from gt_widget.segment.mobilesam.mask_decoder import MaskDecoder
from gt_widget.segment.mobilesam.runtime import native_bf16
from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

RESULTS = Path(__file__).resolve().parent / "results"


def plain_forward(
    self: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
    multimask_output: bool,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous ``forward``: all 4 masks on per-prompt copies, then the selection (fp32, no cache)."""
    masks, iou = self.predict_all(image_embeddings, image_pe, sparse, dense)
    sel = slice(1, None) if multimask_output else slice(0, 1)
    return masks[:, sel], iou[:, sel]


def _p50(fn: Callable[[], Any], repeats: int, clock: Callable[[], float]) -> float:
    fn()
    fn()
    out = []
    for _ in range(repeats):
        t = clock()
        fn()
        out.append(clock() - t)
    return 1000.0 * float(np.median(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="124080", help="GrabCut-50 id")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--bf16", action="store_true", help="measure the bf16 decoder even without native bf16")
    ap.add_argument("--out", type=Path, default=RESULTS / "decoder.json")
    args = ap.parse_args()
    sample = next(s for s in P.load_set("grabcut") if s.id == args.image)
    image, gt, _ = sample.load()
    pts = extreme_points(gt)
    seg = MobileSamSegmenter.from_weights(precision="fp32", decoder_precision="fp32")
    seg.set_image(image)
    model = seg.model
    calls: list[tuple[Any, ...]] = []
    fast_forward = MaskDecoder.forward

    def record(self: MaskDecoder, *a: Any, **k: Any) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(a)
        return fast_forward(self, *a, **k)

    def no_cache(self: MaskDecoder, *a: Any, **k: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return fast_forward(self, *a, **dict(k, cache=None))

    MaskDecoder.forward = record  # type: ignore[method-assign]
    seg.predict(extreme_points=pts, zoom="off")  # the recipe's decoder calls, replayed below
    MaskDecoder.forward = fast_forward  # type: ignore[method-assign]
    shapes = [f"B={c[2].shape[0]} tokens={c[2].shape[1]} multimask={c[4]}" for c in calls]
    fast_forward = MaskDecoder.forward
    rows: dict[str, dict[str, float]] = {}
    paths: list[tuple[str, Any, str]] = [("plain", plain_forward, "fp32"), ("fast, no cache", no_cache, "fp32")]
    paths.append(("fast", fast_forward, "fp32"))
    if native_bf16() or args.bf16:
        paths.append(("bf16" if native_bf16() else "bf16 (emulated: no native bf16)", fast_forward, "bf16"))
    for name, fwd, precision in paths:
        MaskDecoder.forward = fwd  # type: ignore[method-assign]
        seg._predictor.decoder_precision = precision
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        cache: dict[Any, Any] | None = {} if fwd is fast_forward else None

        def predict() -> None:
            seg.predict(extreme_points=pts, zoom="off")

        def decode(dtype: torch.dtype = dtype, cache: dict[Any, Any] | None = cache) -> None:
            with torch.inference_mode():
                for c in calls:
                    model.mask_decoder(*c, dtype=dtype, cache=cache)

        seg.threads = 1  # the segmenter sizes its own torch threads per call
        torch.set_num_threads(1)
        cpu = _p50(predict, args.repeats, time.process_time)
        dec = _p50(decode, args.repeats, time.process_time)
        seg.threads = 2
        torch.set_num_threads(2)
        wall = _p50(predict, args.repeats, time.perf_counter)
        rows[name] = {"predict_cpu_ms_1t": cpu, "decoder_cpu_ms_1t": dec, "predict_wall_ms_2t": wall}
    seg._predictor.decoder_precision = "fp32"
    MaskDecoder.forward = fast_forward  # type: ignore[method-assign]
    load = os.getloadavg()
    print(f"GrabCut {args.image}, decoder calls {shapes}, load {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print("| path | predict CPU-ms (1 thread) | decoder call CPU-ms (1 thread) | predict wall-ms (2 threads) |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['predict_cpu_ms_1t']:.1f} | {r['decoder_cpu_ms_1t']:.1f} | {r['predict_wall_ms_2t']:.1f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = {
        "image": args.image,
        "decoder_calls": shapes,
        "repeats": args.repeats,
        "load": list(load),
        "cpu": cpu_name(),
        "native_bf16": native_bf16(),
        "rows": rows,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
