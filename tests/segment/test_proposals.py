"""Automatic object proposals with the real MobileSAM on a GrabCut-50 image (a small grid keeps it quick)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gt_widget.cli import main
from gt_widget.errors import PromptError
from gt_widget.groundtruth.export import read_job_output, rle_decode
from gt_widget.imageio import load_image
from gt_widget.segment.grabcut import GrabCutSegmenter
from gt_widget.segment.proposals import (
    ProposalCache,
    ProposalsCancelledError,
    ProposalSettings,
    grid_points,
    mask_nms,
    proposal_at,
    propose,
)
from tests.support.objects import iou, load_grabcut_object

N = 8  # 64 grid points


@pytest.fixture(scope="module")
def seg_and_object(grabcut_dir: Path, weights_path: Path) -> tuple[Any, Any]:
    from gt_widget.segment import load_segmenter

    seg = load_segmenter("mobilesam", weights=weights_path)
    obj = load_grabcut_object(grabcut_dir, "llama")
    seg.set_image(load_image(obj.image))
    return seg, obj


@pytest.fixture(scope="module")
def found(seg_and_object: tuple[Any, Any]) -> list[Any]:
    return propose(seg_and_object[0], N)


def test_proposals_find_the_object(seg_and_object: tuple[Any, Any], found: list[Any]) -> None:
    _seg, obj = seg_and_object
    assert 1 <= len(found) <= 3 * N * N
    assert max(iou(p.mask, obj.gt, obj.void) for p in found) >= 0.85
    scores = [p.score for p in found]
    assert scores == sorted(scores, reverse=True)
    cfg = ProposalSettings()
    for p in found:
        assert p.mask.dtype == bool and p.mask.shape == obj.gt.shape
        assert p.score >= cfg.pred_iou_thresh and p.stability >= cfg.stability_thresh
        ys, xs = np.nonzero(p.mask)
        assert p.box == (xs.min(), ys.min(), xs.max(), ys.max())
        assert np.array_equal(rle_decode(p.rle()), p.mask)
    # de-duplicated: no two proposals overlap with IoU above the NMS threshold (up to upsampling)
    for i in range(len(found)):
        for j in range(i + 1, len(found)):
            assert iou(found[i].mask, found[j].mask) <= cfg.nms_iou + 0.05


def test_proposal_under_the_pointer_is_the_smallest_holding_it(found: list[Any]) -> None:
    p = found[-1]
    ys, xs = np.nonzero(p.mask)
    x, y = float(xs[len(xs) // 2]), float(ys[len(ys) // 2])
    hit = proposal_at(found, x, y)
    assert hit is not None and hit.mask[int(y), int(x)]
    assert all(hit.area <= q.area for q in found if q.mask[int(y), int(x)])
    assert proposal_at(found, -5, -5) is None


def test_cancel_between_batches(seg_and_object: tuple[Any, Any]) -> None:
    seg, _obj = seg_and_object
    ev = threading.Event()
    ev.set()
    with pytest.raises(ProposalsCancelledError):
        propose(seg, N, cancel=ev)
    batches: list[int] = []
    with pytest.raises(ProposalsCancelledError):
        propose(seg, N, cancel=lambda: len(batches) >= 1, progress=lambda done, total: batches.append(done))
    assert batches == [16]  # exactly one batch of 16 points ran before the stop


def test_cache_per_image(seg_and_object: tuple[Any, Any], found: list[Any]) -> None:
    seg, _obj = seg_and_object
    cache = ProposalCache()
    assert cache.peek(seg, N) is None
    first = cache.get(seg, N)
    assert [p.score for p in first] == [p.score for p in found]  # deterministic
    assert cache.get(seg, N, cancel=lambda: True) is first  # served from the cache, nothing recomputed
    assert cache.peek(seg, N, ProposalSettings(nms_iou=0.5)) is None  # other settings, other entry


def test_helpers_and_errors() -> None:
    pts = grid_points(2, (100, 200))
    assert pts.tolist() == [[50.0, 25.0], [150.0, 25.0], [50.0, 75.0], [150.0, 75.0]]
    import torch

    masks = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    assert mask_nms(masks, np.array([0.9, 0.95, 0.5]), 0.5).tolist() == [1, 2]
    with pytest.raises(PromptError, match="MobileSAM"):
        propose(GrabCutSegmenter())


def test_segment_proposals_cli_writes_instance_prelabels(
    grabcut_dir: Path, weights_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "images"
    src.mkdir()
    shutil.copy(next((grabcut_dir / "images").glob("llama.*")), src)
    code = main(
        ["segment", str(src), "--proposals", "--points-per-side", "4", "--out", str(tmp_path / "out"),
         "--weights", str(weights_path), "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    job = tmp_path / "out" / "gt-widget-proposals"
    (item,) = list(read_job_output(job))
    assert item.instances is not None and len(item.instances) >= 1
    assert {i.label for i in item.instances} == {"object"}
    assert int(item.index_map.max()) == len(item.instances)
    line = json.loads((job / "manifests" / "output" / "output.manifest").read_text())
    assert line["label-ref-metadata"]["human-annotated"] == "no"
    assert main(["segment", str(src), "--out", str(tmp_path / "x")]) == 2  # neither --prompts nor --proposals


def test_grid_decoder_computes_the_mask_decoder(seg_and_object: tuple[Any, Any]) -> None:
    """The proposal decoder (shared first block, re-associated attention, channels-last upscaling) gives the
    model's multimask logits and IoU in fp32, and nearly the same masks in bf16."""
    import torch

    from gt_widget.segment.proposal_decoder import GridDecoder

    seg, obj = seg_and_object
    model, emb = seg.model, seg.get_state().embedding
    pe = model.prompt_encoder.get_dense_pe(int(emb.shape[-1]))
    pts = torch.as_tensor(grid_points(3, obj.gt.shape), dtype=torch.float32)[:, None, :] * 0.5  # any points
    labels = torch.ones((len(pts), 1), dtype=torch.int64)
    with torch.inference_mode():
        sparse, dense = model.prompt_encoder((pts, labels), None, None)
        want_low, want_iou = model.mask_decoder(emb, pe, sparse, dense, True)
        no_mask = model.prompt_encoder.no_mask_embed.weight[0]
        grid = GridDecoder(model.mask_decoder, emb, pe, no_mask)
        queries, keys = grid.transformer(sparse)
        torch.testing.assert_close(grid.iou(queries), want_iou, atol=1e-5, rtol=1e-4)
        low = grid.upscale(queries[2:5], keys[2:5])  # any subset of the points
        torch.testing.assert_close(low, want_low[2:5], atol=2e-3, rtol=1e-3)
        assert torch.equal(low > 0, want_low[2:5] > 0)
        fast = GridDecoder(model.mask_decoder, emb, pe, no_mask, torch.bfloat16)
        q16, k16 = fast.transformer(sparse)
        assert float((fast.iou(q16) - want_iou).abs().max()) < 0.03
        agree = float(((fast.upscale(q16, k16) > 0) == (want_low > 0)).float().mean())
        assert agree > 0.99
