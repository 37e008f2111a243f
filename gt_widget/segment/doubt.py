"""The "other shapes available" cue: is another candidate of a prediction likely better than the chosen one?

Kernel side, model-agnostic (reads ``Prediction.candidates``, best first, with their scores). Calibrated
by ``benchmarks/bench_doubt.py`` on ../shared/data: "better" = a candidate whose IoU with the ground
truth beats the chosen mask's by at least 5 points. The rule and its measured precision / recall are in
benchmarks/results/doubt.json and benchmarks/README.md; the constants below are the rule fitted on
DAVIS-345 half A (F1), checked on half B and GrabCut-50: the same recall as the widget's old rule with
fewer false alarms. Scores predict a better candidate only weakly (precision ~0.2-0.4), so the cue is a
hint ("n" shows the other shape), never a warning.
"""

from __future__ import annotations

import numpy as np

from gt_widget.segment.base import Prediction

MARGIN = 0.05
"""Flag when the runner-up's score is within this much of the chosen candidate's score..."""
MAX_SCORE = 1.01
"""...and the chosen candidate's own score is below this (1.01: no cap; the fit found a low score alone
is no sign that another candidate is better, unlike the widget's old "score < 0.8" trigger)..."""


MAX_OVERLAP = 0.9
"""...and the runner-up differs from the chosen mask (mask IoU below this; near-duplicates do not count)."""


def doubt_rule(
    chosen_score: float,
    runner_up_score: float,
    overlap: float = 0.0,
    margin: float = MARGIN,
    max_score: float = MAX_SCORE,
    max_overlap: float = MAX_OVERLAP,
) -> bool:
    """The calibrated rule: a close, clearly different runner-up behind a not-so-sure winner (scores
    0..1; ``overlap`` = mask IoU of the runner-up with the chosen mask)."""
    return chosen_score - runner_up_score <= margin and chosen_score < max_score and overlap < max_overlap


def likely_better_candidate(prediction: Prediction) -> int | None:
    """Index in ``prediction.candidates`` of a candidate likely better than the chosen one, or None.

    The widget shows "other shapes available" (and can preselect that candidate for ``n``) only when this
    is not None. A prediction with fewer than two candidates never raises the cue.
    """
    cands = prediction.candidates
    if len(cands) < 2:
        return None
    a, b = np.asarray(cands[0].mask, bool), np.asarray(cands[1].mask, bool)
    union = int(np.count_nonzero(a | b))
    overlap = int(np.count_nonzero(a & b)) / union if union else 1.0
    return 1 if doubt_rule(float(cands[0].score), float(cands[1].score), overlap) else None
