"""The calibrated "other shapes available" cue (gt_widget.segment.doubt), on hand-made predictions."""

from __future__ import annotations

import numpy as np

from gt_widget.segment.base import Candidate, Prediction
from gt_widget.segment.doubt import MARGIN, MAX_SCORE, likely_better_candidate


def _pred(*scores: float) -> Prediction:
    masks = [np.eye(4, dtype=bool) if i % 2 else ~np.eye(4, dtype=bool) for i in range(len(scores))]
    cands = [Candidate(mask=m, score=s) for m, s in zip(masks, scores, strict=True)]
    return Prediction(mask=masks[0], score=scores[0], candidates=cands)


def test_a_close_runner_up_behind_an_unsure_winner_is_flagged() -> None:
    chosen = MAX_SCORE - 0.05
    assert likely_better_candidate(_pred(chosen, chosen - MARGIN / 2)) == 1


def test_a_clear_or_confident_winner_is_not_flagged() -> None:
    assert likely_better_candidate(_pred(MAX_SCORE - 0.05, MAX_SCORE - 0.05 - 2 * MARGIN - 0.01)) is None
    assert likely_better_candidate(_pred(min(MAX_SCORE + 0.01, 1.0), MAX_SCORE)) is None
    assert likely_better_candidate(_pred(0.5)) is None  # a single candidate never raises the cue
