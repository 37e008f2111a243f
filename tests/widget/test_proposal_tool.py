"""The proposal tool and the prompt-log hook, headless, with the real MobileSAM on a GrabCut-50 image.

Proposals use an 8 x 8 grid here (the tool's default is 16 x 16) to keep the suite quick on 2 cores.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gt_widget.errors import GtWidgetError
from gt_widget.groundtruth.export import read_job_output
from gt_widget.promptlog import PromptLog, log_path
from gt_widget.resegment import resegment
from gt_widget.segment.proposals import Proposal, ProposalCache, ProposalSettings, proposal_at, propose
from gt_widget.widget import SegmentationWidget
from gt_widget.widget.session import LabelingSession
from gt_widget.widget.testing import BoxSegmenter
from gt_widget.widget.tools.proposal import ACCEPT_ALL_SCORE
from tests.support.objects import iou, load_grabcut_object
from tests.support.proposals import proposal_tool

GRID = 8
CACHE = ProposalCache()  # shared by the tests: each image's proposals are computed once


def _own_pixel(found: list[Proposal], prop: Proposal) -> tuple[float, float]:
    """A pixel where ``proposal_at`` picks ``prop`` (inside it, in no smaller proposal), deepest inside."""
    from scipy import ndimage

    own = prop.mask.copy()
    for q in found:
        if q is not prop and q.area < prop.area:
            own &= ~q.mask
    assert own.any()
    dist = ndimage.distance_transform_edt(np.pad(own, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    assert proposal_at(found, float(x), float(y)) is prop
    return float(x), float(y)


def _click(w: SegmentationWidget, x: float, y: float, button: int = 0) -> None:
    cx, cy = w.image_to_canvas(x, y)
    w.handle_pointer("move", cx, cy)
    w.handle_pointer("down", cx, cy, button)
    w.handle_pointer("up", cx, cy, button)


def test_hover_shows_and_click_accepts_a_proposal_as_one_undo_step(grabcut_dir: Path, mobilesam: Any) -> None:
    obj = load_grabcut_object(grabcut_dir, "llama")
    w = SegmentationWidget(obj.image, ["animal", "other"], segmenter=mobilesam)
    tool = proposal_tool(w, GRID, CACHE)
    found = tool.wait(w)
    best = max(found, key=lambda p: iou(p.mask, obj.gt, obj.void))
    assert iou(best.mask, obj.gt, obj.void) >= 0.85
    x, y = _own_pixel(found, best)
    cx, cy = w.image_to_canvas(x, y)
    w.handle_pointer("move", cx, cy)
    assert tool.hovered() is best  # its outline is drawn
    assert w.history == (0, 0)
    w.handle_pointer("down", cx, cy)
    assert w.history == (1, 0)
    np.testing.assert_array_equal(w.label_map == 1, best.mask)
    assert "accepted" in w.status
    part = w.editor.live_part()  # the editor's refinable part, like an auto-segment result
    assert part is not None and part.value == 1 and part.clicks == [(*best.point, True)]
    w.undo()
    assert not w.label_map.any()
    w.redo()
    np.testing.assert_array_equal(w.label_map == 1, best.mask)
    assert w.editor.live_part() is not None  # redo brings the refinable part back
    w.close()


def test_an_accepted_proposal_is_refined_by_corrective_clicks(grabcut_dir: Path, mobilesam: Any) -> None:
    obj = load_grabcut_object(grabcut_dir, "llama")
    w = SegmentationWidget(obj.image, ["animal"], segmenter=mobilesam)
    tool = proposal_tool(w, GRID, CACHE)
    found = tool.wait(w)
    best = max(found, key=lambda p: iou(p.mask, obj.gt, obj.void))
    x, y = _own_pixel(found, best)
    tool.accept(w, x, y)
    before = w.label_map == 1
    # a right click inside the accepted mask, far from the grid point: the model shrinks the mask
    ys, xs = np.nonzero(best.mask)
    far = int(np.argmax((xs - best.point[0]) ** 2 + (ys - best.point[1]) ** 2))
    _click(w, float(xs[far]), float(ys[far]), button=2)
    assert w.wait_idle(120)
    after = w.label_map == 1
    assert w.history == (2, 0), w.status
    assert not np.array_equal(before, after) and after.sum() < before.sum()
    w.undo()
    np.testing.assert_array_equal(w.label_map == 1, before)
    w.close()


def test_instance_mode_accepts_each_proposal_as_a_new_instance(grabcut_dir: Path, mobilesam: Any) -> None:
    obj = load_grabcut_object(grabcut_dir, "llama")
    w = SegmentationWidget(obj.image, ["thing"], mode="instance", segmenter=mobilesam)
    tool = proposal_tool(w, GRID, CACHE)
    found = tool.wait(w)
    a, b = sorted(found, key=lambda p: -p.area)[-2:]  # two small ones: neither hides the other
    for prop in (a, b):
        tool.accept(w, *_own_pixel(found, prop))
    assert len(w.instances) == 2 and w.history == (2, 0)
    assert (w.instance_map == 2).sum() == b.area
    w.close()


def test_accept_all_is_one_undo_step_of_confident_proposals(grabcut_dir: Path, mobilesam: Any) -> None:
    obj = load_grabcut_object(grabcut_dir, "llama")
    w = SegmentationWidget(obj.image, ["thing"], mode="instance", segmenter=mobilesam)
    tool = proposal_tool(w, GRID, CACHE)
    found = tool.wait(w)
    confident = [p for p in found if p.score >= ACCEPT_ALL_SCORE]
    assert confident
    w.handle_key_down("Enter")  # the proposal tool's Enter: the pre-labeling pass
    assert len(w.instances) == len(confident) and w.history == (1, 0)
    smallest = min(confident, key=lambda p: p.area)
    np.testing.assert_array_equal(w.instance_map == len(confident), smallest.mask)  # smaller on top
    w.undo()
    assert not w.instance_map.any() and w.instances == []
    w.close()


def test_proposals_wait_while_the_model_works_and_are_cached(grabcut_dir: Path, mobilesam: Any) -> None:
    obj = load_grabcut_object(grabcut_dir, "flower")
    w = SegmentationWidget(obj.image, ["x"], segmenter=mobilesam)
    release = threading.Event()
    w.assist.submit(release.wait)  # the user's request keeps the model busy
    tool = proposal_tool(w, GRID, CACHE)
    tool.cache = ProposalCache()  # computed here, not taken from another test
    assert tool.proposals(w) is None
    assert not release.wait(1.0)
    assert tool.proposals(w) is None
    release.set()
    found = tool.wait(w)
    assert found and tool.seconds is not None
    cache = tool.cache
    w.tool = "brush"
    w.load_image(obj.image)  # the same image again: from the cache, no recomputation
    tool = proposal_tool(w, GRID, CACHE)
    tool.cache = cache
    assert tool.wait(w) is found
    w.close()


class _WatchedCache(ProposalCache):
    """Records each "did the user act?" check of a running computation as (embedding ready, model busy,
    answer), and holds the second check until the test has acted, so the action lands mid-computation."""

    def __init__(self, w: SegmentationWidget) -> None:
        super().__init__()
        self.w = w
        self.checks: list[tuple[bool, bool, bool]] = []
        self.midway = threading.Event()
        self.acted = threading.Event()

    def get(self, segmenter: Any, points_per_side: int = 16, **kw: Any) -> list[Proposal]:
        cancel = kw.pop("cancel")

        def watched() -> bool:
            if len(self.checks) == 1:
                self.midway.set()
                self.acted.wait(60)
            answer = bool(cancel())
            self.checks.append((self.w.assist.embedded, self.w.assist.busy, answer))
            return answer

        return super().get(segmenter, points_per_side, cancel=watched, **kw)


def test_proposals_stop_when_the_user_acts_and_resume_when_idle(grabcut_dir: Path, mobilesam: Any) -> None:
    obj = load_grabcut_object(grabcut_dir, "llama")
    w = SegmentationWidget(obj.image, ["animal"], segmenter=mobilesam)
    tool = proposal_tool(w, GRID, CACHE)
    tool.settings = ProposalSettings(points_per_side=GRID, points_per_batch=8)  # 8 batches
    tool.cache = cache = _WatchedCache(w)
    assert tool.proposals(w) is None  # scheduled at once, computed in the background
    assert cache.midway.wait(120), "the proposals never started"
    assert cache.checks[0] == (True, False, False)  # started with the embedding ready and the model idle
    w.auto_segment(obj.points, wait=False)  # the user acts while a batch is being computed
    cache.acted.set()
    found = tool.wait(w)
    assert cache.checks[1] == (True, True, True)  # stopped at the next batch: the request was waiting
    assert any(not busy for _e, busy, _a in cache.checks[2:])  # resumed once the model was idle again
    assert w.wait_idle(60) and iou(w.label_map == 1, obj.gt, obj.void) >= 0.8  # the user's answer came
    again = propose(mobilesam, GRID, settings=tool.settings)  # stopping lost nothing
    assert [p.score for p in found] == [p.score for p in again]
    assert cache.peek(mobilesam, GRID, tool.settings) is found  # cached for this image
    w.close()


def test_proposals_with_a_segmenter_without_them_say_so() -> None:
    rgb = np.zeros((40, 60, 3), np.uint8)
    w = SegmentationWidget(rgb, ["x"], segmenter=BoxSegmenter())
    tool = proposal_tool(w, GRID, CACHE)
    with pytest.raises(GtWidgetError, match="MobileSAM"):
        tool.wait(w, timeout=30)
    _click(w, 10, 10)
    assert "still being computed" not in w.status
    w.close()


def test_session_prompt_log_resegments_to_identical_masks(
    grabcut_dir: Path, mobilesam: Any, weights_path: Path, tmp_path: Path
) -> None:
    obj = load_grabcut_object(grabcut_dir, "llama")
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(obj.image, images / obj.image.name)
    s = LabelingSession(images, ["animal", "sky", "ground"], tmp_path / "out", segmenter=mobilesam, prefetch=False)
    w = s.widget
    w.auto_segment(obj.points)  # model edit, refined pass merged
    ys, xs = np.nonzero(obj.gt)
    w.corrective_click(float(xs.mean()), float(ys.min() + 3), positive=True)  # refines it
    w.label = "sky"
    w.brush([(5, 5), (60, 8), (120, 5)], radius=4)
    w.undo()
    w.redo()
    w.label = "ground"
    h, wd = obj.gt.shape
    w.polygon([(0, h - 1), (wd - 1, h - 1), (wd - 1, h - 15), (0, h - 15)])
    w.fill(wd - 3, 3)  # the unlabeled region around the corner
    tool = proposal_tool(w, GRID, CACHE)
    found = tool.wait(w)
    pick = min(found, key=lambda p: p.area)
    w.label = "sky"
    tool.accept(w, *_own_pixel(found, pick))
    s.flush()
    job = s.job_dir
    log = PromptLog.load(log_path(job, 0))
    kinds = [e["kind"] for e in log.events]
    assert kinds == ["model", "model", "stroke", "undo", "redo", "stroke", "stroke", "model"], kinds
    assert log.events[1]["refines"] == 0 and log.events[-1]["prompt"]["proposal"] is not None
    assert log.source_ref == str(images / obj.image.name)
    assert "prompt-log" not in (job / "manifests" / "output" / "output.manifest").read_text()
    final = w.label_map
    s.close()

    report = resegment(job, tmp_path / "again", recipe="recorded", weights=weights_path, progress=False)
    assert report.model_edits == 3 and report.reproduced == 3
    (item,) = list(read_job_output(report.job_dir))
    np.testing.assert_array_equal(item.index_map, final)
