"""The calibrated "other shapes available" cue (gt_widget.segment.doubt), on hand-made predictions."""

from __future__ import annotations

import numpy as np

from gt_widget.segment.base import Candidate, Prediction
from gt_widget.segment.doubt import MARGIN, likely_better_candidate


def _pred(scores: tuple[float, ...], same_shape: bool = False) -> Prediction:
    a = np.zeros((10, 10), bool)
    a[2:8, 2:8] = True
    b = a.copy() if same_shape else np.zeros((10, 10), bool)
    if not same_shape:
        b[0:4, 0:10] = True  # a clearly different shape
    else:
        b[2, 8] = True  # one pixel more: a near-duplicate
    masks = [a, b, a][: len(scores)]
    cands = [Candidate(mask=m, score=s) for m, s in zip(masks, scores, strict=True)]
    return Prediction(mask=a, score=scores[0], candidates=cands)


def test_a_close_different_runner_up_is_flagged() -> None:
    assert likely_better_candidate(_pred((0.95, 0.95 - MARGIN / 2))) == 1


def test_a_clear_winner_a_near_duplicate_or_a_lone_candidate_is_not_flagged() -> None:
    assert likely_better_candidate(_pred((0.95, 0.95 - 2 * MARGIN))) is None
    assert likely_better_candidate(_pred((0.95, 0.95 - MARGIN / 2), same_shape=True)) is None
    assert likely_better_candidate(_pred((0.5,))) is None
