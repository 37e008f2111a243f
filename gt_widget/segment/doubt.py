"""The "other shapes available" cue: is another candidate of a prediction likely better than the chosen one?

Kernel side, model-agnostic (reads ``Prediction.candidates``, best first, with their scores). Calibrated
by ``benchmarks/bench_doubt.py`` on ../shared/data: "better" = a candidate whose IoU with the ground
truth beats the chosen mask's by at least 5 points. The rule and its measured precision / recall are in
benchmarks/results/doubt.json and benchmarks/README.md; the constants below are the rule fitted on
DAVIS-345 half A and kept because it held on half B and GrabCut-50.
"""

from __future__ import annotations

from gt_widget.segment.base import Prediction

MARGIN = 0.03
"""Flag when the runner-up's score is within this much of the chosen candidate's score..."""
MAX_SCORE = 0.90
"""...and the chosen candidate's own score is below this (a confident, clear winner is rarely beaten)."""


def doubt_rule(
    chosen_score: float, runner_up_score: float, margin: float = MARGIN, max_score: float = MAX_SCORE
) -> bool:
    """The calibrated rule on two scores (0..1): a close runner-up behind a not-so-sure winner."""
    return chosen_score - runner_up_score <= margin and chosen_score < max_score


def likely_better_candidate(prediction: Prediction) -> int | None:
    """Index in ``prediction.candidates`` of a candidate likely better than the chosen one, or None.

    The widget shows "other shapes available" (and can preselect that candidate for ``n``) only when this
    is not None. A prediction with fewer than two candidates never raises the cue.
    """
    cands = prediction.candidates
    if len(cands) < 2:
        return None
    return 1 if doubt_rule(float(cands[0].score), float(cands[1].score)) else None
