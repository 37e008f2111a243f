"""Interactive mask decoder cost (issue 13): the cheap ``MaskDecoder.forward`` against the plain path.

    python -m benchmarks.bench_decoder [--image 124080] [--repeats 15]

"plain" is the decoder as it was (``MaskDecoder.predict_all`` on per-prompt copies of the image tokens,
all 4 masks, transposed convolutions, then the selection); "fast" is ``MaskDecoder.forward``. Measures
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
from gt_widget.evaluate import extreme_points
from gt_widget.segment.mobilesam.mask_decoder import MaskDecoder
from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

RESULTS = Path(__file__).resolve().parent / "results"


def plain_forward(
    self: MaskDecoder,
    image_embeddings: torch.Tensor,
    image_pe: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
    multimask_output: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous ``forward``: all 4 masks on per-prompt copies, then the selection."""
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
    args = ap.parse_args()
    sample = next(s for s in P.load_set("grabcut") if s.id == args.image)
    image, gt, _ = sample.load()
    pts = extreme_points(gt)
    seg = MobileSamSegmenter.from_weights()
    seg.set_image(image)
    model = seg.model
    calls: list[tuple[Any, ...]] = []
    fast_forward = MaskDecoder.forward

    def record(self: MaskDecoder, *a: Any) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(a)
        return fast_forward(self, *a)

    MaskDecoder.forward = record  # type: ignore[method-assign]
    seg.predict(extreme_points=pts, zoom="off")  # the recipe's decoder calls, replayed below
    MaskDecoder.forward = fast_forward  # type: ignore[method-assign]
    shapes = [f"B={c[2].shape[0]} tokens={c[2].shape[1]} multimask={c[4]}" for c in calls]
    fast_forward = MaskDecoder.forward
    rows: dict[str, dict[str, float]] = {}
    for name, fwd in (("plain", plain_forward), ("fast", fast_forward)):
        MaskDecoder.forward = fwd  # type: ignore[method-assign]

        def predict() -> None:
            seg.predict(extreme_points=pts, zoom="off")

        def decode() -> None:
            with torch.inference_mode():
                for c in calls:
                    model.mask_decoder(*c)

        torch.set_num_threads(1)
        cpu = _p50(predict, args.repeats, time.process_time)
        dec = _p50(decode, args.repeats, time.process_time)
        torch.set_num_threads(2)
        wall = _p50(predict, args.repeats, time.perf_counter)
        rows[name] = {"predict_cpu_ms_1t": cpu, "decoder_cpu_ms_1t": dec, "predict_wall_ms_2t": wall}
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
    out = {"image": args.image, "decoder_calls": shapes, "repeats": args.repeats, "load": list(load), "rows": rows}
    (RESULTS / "decoder.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
