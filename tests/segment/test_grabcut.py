"""GrabCut fallback: real OpenCV GrabCut on synthetic and real (GrabCut-50) images, through the public API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import protocol as P
from gt_widget.errors import PromptError
from gt_widget.segment import load_segmenter
from gt_widget.segment.grabcut import GrabCutSegmenter


def _scene(rng: np.random.Generator, h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """A textured green-ish background with a noisy red ellipse; returns (image, object mask)."""
    yy, xx = np.mgrid[0:h, 0:w]
    obj = ((xx - 170) / 70.0) ** 2 + ((yy - 110) / 50.0) ** 2 <= 1.0
    img = np.empty((h, w, 3), np.float64)
    img[...] = (60, 140, 70)
    img[obj] = (200, 50, 40)
    img += rng.normal(0, 12, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), obj


def test_extreme_points_segment_a_synthetic_object(rng: np.random.Generator) -> None:
    img, obj = _scene(rng)
    seg = load_segmenter("grabcut")
    assert seg.name == "grabcut" and seg.image_shape is None
    seg.set_image(img)
    assert seg.image_shape == (240, 320)
    pred = seg.predict(extreme_points=P.extreme_points(obj))
    assert pred.mask.dtype == np.bool_ and pred.mask.shape == obj.shape
    assert P.iou(pred.mask, obj) > 0.95
    assert 0.8 < pred.score <= 1.0
    assert pred.candidates and pred.candidates[0].mask is pred.mask


def test_box_and_clicks_only_prompts(rng: np.random.Generator) -> None:
    img, obj = _scene(rng)
    seg = GrabCutSegmenter()
    seg.set_image(img)
    by_box = seg.predict(box=(95, 55, 245, 165))
    assert P.iou(by_box.mask, obj) > 0.9
    by_click = seg.predict(clicks=[(170, 110, True), (20, 20, False)])
    assert P.iou(by_click.mask, obj) > 0.8


def test_negative_click_removes_a_false_alarm(rng: np.random.Generator) -> None:
    img, obj = _scene(rng)
    # a second red blob touching the box: GrabCut grabs it until told otherwise
    img[100:125, 100:125] = (200, 50, 40)
    truth = obj.copy()
    seg = GrabCutSegmenter()
    seg.set_image(img)
    pts = P.extreme_points(obj)
    first = seg.predict(extreme_points=pts)
    refined = seg.predict(extreme_points=pts, clicks=[(112, 112, False)], previous=first)
    assert not refined.mask[112, 112]
    assert P.iou(refined.mask, truth) >= P.iou(first.mask, truth) - 0.01


def test_large_images_are_downscaled_and_upsampled(rng: np.random.Generator) -> None:
    img, obj = _scene(rng, 960, 1280)
    seg = GrabCutSegmenter(max_side=400)
    seg.set_image(img)
    pred = seg.predict(extreme_points=P.extreme_points(obj))
    assert pred.mask.shape == (960, 1280)
    assert P.iou(pred.mask, obj) > 0.9


def test_state_round_trip_restores_the_image(rng: np.random.Generator) -> None:
    a, obj_a = _scene(rng)
    b = np.full((50, 60, 3), 128, np.uint8)
    seg = GrabCutSegmenter()
    state_a = seg.prepare(a)  # prefetch without touching the current image
    assert seg.image_shape is None
    seg.set_image(b)
    seg.set_state(state_a)
    assert seg.image_shape == (240, 320)
    assert P.iou(seg.predict(extreme_points=P.extreme_points(obj_a)).mask, obj_a) > 0.95


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"extreme_points": [(1, 1), (2, 2), (3, 3)]}, "exactly 4"),
        ({"extreme_points": [(1, 1), (2, 2), (3, 3), (999, 3)]}, "outside"),
        ({"clicks": [(5, 5)]}, "(x, y, is_positive)"),
        ({"clicks": [(5, 5, False)]}, "positive click"),
        ({"box": (1, 2, 3)}, "4 numbers"),
        ({}, "nothing to segment"),
    ],
)
def test_bad_prompts_raise_prompt_error(rng: np.random.Generator, kwargs: dict[str, object], needle: str) -> None:
    seg = GrabCutSegmenter()
    seg.set_image(_scene(rng)[0])
    with pytest.raises(PromptError, match=needle):
        seg.predict(**kwargs)  # type: ignore[arg-type]


def test_predict_before_set_image_says_what_to_do() -> None:
    with pytest.raises(PromptError, match="set_image"):
        GrabCutSegmenter().predict(extreme_points=[(1, 1), (2, 2), (3, 3), (4, 4)])


def test_reaches_the_required_quality_on_real_grabcut_images(grabcut_dir: Path) -> None:
    """A fixed slice of GrabCut-50 (every 5th image) from exact extreme points: mean IoU >= 0.86."""
    samples = P.load_set("grabcut")[::5]
    seg = load_segmenter("grabcut")
    ious = []
    for _s, image, gt, void in P.iter_loaded(samples):
        seg.set_image(image)
        ious.append(P.iou(seg.predict(extreme_points=P.extreme_points(gt)).mask, gt, void))
    assert np.mean(ious) >= 0.86, ious
