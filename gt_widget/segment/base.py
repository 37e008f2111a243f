"""The segmenter interface shared by MobileSAM, the GrabCut fallback, the widget and batch pre-labeling.

Conventions (as segment-anything's predictor):
- ``set_image`` is the expensive step (once per image); ``predict`` is cheap and may be called many times.
- Coordinates are (x, y) pixels of the *original* image, x right, y down; floats allowed.
- Extreme points are 4 (x, y) points: top-, bottom-, left-, right-most of the object, in any order.
- Clicks are (x, y, is_positive): positive = "this pixel belongs to the object".
- Masks are bool (H, W) at full image resolution.
- ``set_image`` must be safe to call from a background thread while the UI thread waits; a segmenter
  is otherwise not thread-safe (one caller at a time).

Optional capabilities, declared with explicit ``runtime_checkable`` protocols (callers test
``isinstance(seg, Prefetchable)``, never ``hasattr``):
- ``Prefetchable``: ``prepare(image) -> state`` encodes another image without disturbing the current one
  (safe to run on a background thread while ``predict`` runs on the current image), ``get_state()`` /
  ``set_state(state)`` switch images cheaply.
- ``StagedSegmenter``: ``predict_staged(...) -> StagedPrediction`` gives a fast first answer at once and,
  where a slower refined answer exists, a ``refine`` callable that computes it. Callers show ``first``
  immediately and may run ``refine`` later (on a background thread), or drop it. Callers never need to
  know *how* a segmenter refines (MobileSAM's zoomed crop pass is an implementation detail).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gt_widget.errors import GtWidgetWarning, PromptError
from gt_widget.imageio import ImageSource

Point = tuple[float, float]
Click = tuple[float, float, bool]


@dataclass
class Candidate:
    """An alternative mask the model considered (the UI lets the user cycle through them)."""

    mask: np.ndarray
    score: float


@dataclass
class Prediction:
    """Result of ``Segmenter.predict``.

    ``mask``: bool (H, W); ``score``: the model's confidence in 0..1 (predicted IoU for MobileSAM);
    ``candidates``: alternatives, best first, ``mask`` among them; ``state``: opaque, model-specific data
    (e.g. low-resolution logits) that a later ``predict(..., previous=this)`` reuses.
    """

    mask: np.ndarray
    score: float
    candidates: list[Candidate] = field(default_factory=list)
    state: Any = None


@runtime_checkable
class Segmenter(Protocol):
    """What the widget and batch tools need from a segmenter."""

    name: str

    def set_image(self, image: ImageSource) -> None:
        """Load ``image`` and compute whatever per-image state ``predict`` needs (expensive)."""

    def predict(
        self,
        extreme_points: Sequence[Sequence[float]] | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        previous: Prediction | None = None,
        box: Sequence[float] | None = None,
    ) -> Prediction:
        """Segment the object given by 4 extreme points (or a box), refined by clicks (cheap)."""

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(H, W) of the current image, or None before ``set_image``."""


@dataclass
class StagedPrediction:
    """A fast answer now and, optionally, a slower better one later.

    ``first``: the answer to show at once. ``refine``: None when ``first`` is final; otherwise a callable
    returning the refined ``Prediction`` for the same prompt. ``refine`` may be called from another thread
    while ``predict`` serves other (interactive) requests on the same segmenter; the segmenter guarantees
    that this is safe and that the refined work never holds up those requests for long.
    """

    first: Prediction
    refine: Callable[[], Prediction] | None = None


@runtime_checkable
class Prefetchable(Protocol):
    """A segmenter that can encode another image in the background and switch to it cheaply."""

    def prepare(self, image: ImageSource) -> Any:
        """Encode ``image`` without changing the current image (expensive; thread-safe); returns a state."""

    def get_state(self) -> Any:
        """The current image's state, to restore later with ``set_state`` (None before any image)."""

    def set_state(self, state: Any) -> None:
        """Make ``state`` (from ``prepare`` / ``get_state``) the current image (cheap)."""


@runtime_checkable
class StagedSegmenter(Protocol):
    """A segmenter whose best answer for some prompts is slow: it answers fast first, then refines."""

    def predict_staged(
        self,
        extreme_points: Sequence[Sequence[float]] | None = None,
        clicks: Sequence[Sequence[Any]] = (),
        previous: Prediction | None = None,
        box: Sequence[float] | None = None,
    ) -> StagedPrediction:
        """Like ``Segmenter.predict``, but returns the fast answer and a way to get the refined one."""


def predict_staged(
    seg: Segmenter,
    extreme_points: Sequence[Sequence[float]] | None = None,
    clicks: Sequence[Sequence[Any]] = (),
    previous: Prediction | None = None,
    box: Sequence[float] | None = None,
) -> StagedPrediction:
    """Staged prediction from any segmenter: its own ``predict_staged`` if it is a ``StagedSegmenter``,
    else one ``predict`` call whose answer is final."""
    if isinstance(seg, StagedSegmenter):
        return seg.predict_staged(extreme_points=extreme_points, clicks=clicks, previous=previous, box=box)
    return StagedPrediction(seg.predict(extreme_points=extreme_points, clicks=clicks, previous=previous, box=box))


def validate_points(points: Sequence[Sequence[float]] | None, shape: tuple[int, int], what: str) -> np.ndarray:
    """(N, 2) float array of (x, y) points, checked to lie inside an image of ``shape`` = (H, W)."""
    if points is None:
        return np.zeros((0, 2), np.float64)
    try:
        arr = np.asarray([[float(p[0]), float(p[1])] for p in points], np.float64).reshape(-1, 2)
    except (TypeError, ValueError, IndexError):
        raise PromptError(f"{what} must be a list of (x, y) pixel pairs, got {points!r}") from None
    h, w = shape
    bad = ~np.isfinite(arr).all(axis=1) | (arr[:, 0] < -0.5) | (arr[:, 0] > w - 0.5)
    bad |= (arr[:, 1] < -0.5) | (arr[:, 1] > h - 0.5)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PromptError(
            f"{what} point {i} = ({arr[i, 0]:g}, {arr[i, 1]:g}) is outside the {w}x{h} image; "
            f"x must be in [0, {w - 1}] and y in [0, {h - 1}]"
        )
    return arr


def click_polarity(value: Any) -> bool:
    """``True`` (positive) / ``False`` (negative) from a click's third item: a bool, numpy bool, or 0 / 1.

    Anything else (notably the strings ``"false"`` / ``"true"``, which ``bool()`` would both call positive)
    is refused with ``PromptError``.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise PromptError(
        f"a click's polarity must be True (positive) or False (negative), got {value!r} "
        f"({type(value).__name__}); write (x, y, True) or (x, y, False)"
    )


def validate_clicks(clicks: Sequence[Sequence[Any]], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """((N, 2) float xy, (N,) bool positive) from (x, y, is_positive) triples, checked against ``shape``."""
    triples = list(clicks)
    for c in triples:
        if isinstance(c, (str, bytes)) or len(c) != 3:
            raise PromptError(f"a click must be (x, y, is_positive), got {c!r}")
    xy = validate_points([(c[0], c[1]) for c in triples], shape, "click")
    positive = np.asarray([click_polarity(c[2]) for c in triples], bool)
    return xy, positive


def require_object_prompt(has_box: bool, positive: np.ndarray, has_previous: bool) -> None:
    """Refuse prompts that name no object: negative clicks only remove from a mask, so with no extreme points,
    box, positive click or previous mask there is nothing to segment (``PromptError``)."""
    if has_box or has_previous or bool(np.asarray(positive, bool).any()):
        return
    if len(positive):
        raise PromptError(
            "only negative clicks: a negative click removes pixels from an object's mask, and there is no mask "
            "yet. Start with 4 extreme points, a box or a positive click on the object"
        )
    raise PromptError("nothing to segment: give 4 extreme points, a box, or at least one positive click")


def validate_extreme_points(points: Sequence[Sequence[float]], shape: tuple[int, int]) -> np.ndarray:
    """(4, 2) float array of extreme points; exactly 4 are required."""
    arr = validate_points(points, shape, "extreme")
    if arr.shape[0] != 4:
        raise PromptError(
            f"auto-segment needs exactly 4 extreme points (top-, bottom-, left-, right-most), got {arr.shape[0]}"
        )
    span_x, span_y = np.ptp(arr[:, 0]), np.ptp(arr[:, 1])
    if span_x < 1 and span_y < 1:
        raise PromptError(
            f"the 4 extreme points are all the same point (within {span_x:g} x {span_y:g} px): click the top-, "
            "bottom-, left- and right-most points of the object, which span its width and height"
        )
    if _max_line_distance(arr) < COLLINEAR_PX:
        warnings.warn(
            f"the 4 extreme points lie on one line (all within {COLLINEAR_PX:g} px of it); auto-segment expects "
            "the top-, bottom-, left- and right-most points of an object, so the mask may be a thin sliver",
            GtWidgetWarning,
            stacklevel=3,
        )
    return arr


COLLINEAR_PX = 1.5
"""Extreme points all within this distance of one straight line count as collinear (a warning)."""


def _max_line_distance(points: np.ndarray) -> float:
    """Largest distance of ``points`` from the line through the two farthest-apart of them."""
    d = points[:, None, :] - points[None, :, :]
    i, j = np.unravel_index(int(np.argmax((d**2).sum(-1))), d.shape[:2])
    a, b = points[i], points[j]
    ab = b - a
    length = float(np.hypot(ab[0], ab[1]))
    if length == 0:
        return 0.0
    cross = np.abs(ab[0] * (points[:, 1] - a[1]) - ab[1] * (points[:, 0] - a[0]))
    return float(cross.max() / length)


def box_from_points(points: np.ndarray) -> np.ndarray:
    """XYXY box enclosing (N, 2) points (inclusive pixel coordinates)."""
    return np.array([points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()], np.float64)


def validate_box(box: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """(4,) XYXY float box checked to lie inside an image of ``shape`` = (H, W); corners may come swapped."""
    try:
        b = np.asarray([float(v) for v in box], np.float64)
    except (TypeError, ValueError):
        raise PromptError(f"box must be 4 numbers (x0, y0, x1, y1), got {box!r}") from None
    if b.shape != (4,):
        raise PromptError(f"box must be 4 numbers (x0, y0, x1, y1), got {len(b)}")
    corners = validate_points([(b[0], b[1]), (b[2], b[3])], shape, "box corner")
    x0, x1 = sorted((corners[0, 0], corners[1, 0]))
    y0, y1 = sorted((corners[0, 1], corners[1, 1]))
    return np.array([x0, y0, x1, y1], np.float64)
