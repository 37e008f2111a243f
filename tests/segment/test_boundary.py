"""Boundary refinement (segment/boundary.py): the guided filter snaps a coarse boundary to the image's edge,
changes nothing outside its band, keeps edits the logits disagree with, and its band-only computation gives
the masks of the plain full-frame filter; the segmenter flag is on by default and returns the refined mask as
its first candidate (real model on the shipped coffee image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gt_widget.errors import PromptError
from gt_widget.imageio import load_image
from gt_widget.segment import load_segmenter
from gt_widget.segment.boundary import BoundarySettings, boundary_band, guided_filter, refine_boundary
from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

COFFEE = Path(__file__).resolve().parents[2] / "gt_widget" / "data" / "coffee.png"
CUP = [(290, 18), (232, 305), (174, 130), (408, 130)]  # top, bottom, left, right


def _square_scene(shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright square on a dark image, its true mask and logits whose 0-level is ``shift`` px inside it."""
    img = np.full((120, 160, 3), 30, np.uint8)
    img[30:90, 40:120] = 210
    yy, xx = np.mgrid[:120, :160]
    true = (yy >= 30) & (yy < 90) & (xx >= 40) & (xx < 120)
    logits = np.minimum.reduce([yy - 30 - shift, 89 - shift - yy, xx - 40 - shift, 119 - shift - xx]).astype(np.float32)
    return img, true, logits


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_coarse_boundary_snaps_to_the_image_edge() -> None:
    img, true, logits = _square_scene(shift=3)
    coarse = logits > 0
    out = refine_boundary(coarse, logits, img, BoundarySettings(radius=4, eps=1e-3, band=6, temperature=4.0))
    assert _iou(coarse, true) < 0.8
    assert _iou(out, true) > _iou(coarse, true) + 0.05  # moved towards the edge (a 3 px error shrinks)


def test_only_the_band_changes() -> None:
    img, _true, logits = _square_scene(shift=3)
    coarse = logits > 0
    settings = BoundarySettings(band=2)
    out = refine_boundary(coarse, logits, img, settings)
    changed = out != coarse
    assert changed.any()
    assert not (changed & ~boundary_band(coarse, 2)).any()


def test_an_edit_the_logits_disagree_with_is_kept() -> None:
    img, _true, logits = _square_scene(shift=0)
    mask = logits > 0
    mask[55:65, 75:85] = False  # a hole cut after the model (e.g. the click guard's local edit)
    out = refine_boundary(mask, logits, img, BoundarySettings(band=3))
    assert not out[57:63, 77:83].any()


def _full_frame_reference(mask: np.ndarray, logits: np.ndarray, image: np.ndarray, s: BoundarySettings) -> np.ndarray:
    """The refinement computed the plain way (the first version): the guided filter over the whole frame."""
    band = boundary_band(mask, s.band)
    lg = logits.astype(np.float32)
    p = 1.0 / (1.0 + np.exp(-np.clip(lg / max(s.temperature, 1e-6), -30.0, 30.0)))
    p = np.where((lg > 0) == mask, p, mask.astype(np.float32))
    q = guided_filter(np.asarray(image[..., :3], np.float32) * (1.0 / 255.0), p, s.radius, s.eps)
    out = mask.copy()
    out[band] = q[band] > 0.5
    return out


def _blob_logits(shape: tuple[int, int], blobs: list[tuple[int, int, int]]) -> np.ndarray:
    """Smooth logits: positive inside any of the (cx, cy, radius) discs, wobbly so the edge is irregular."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    wobble = 4.0 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    d = np.max([rad - np.hypot(xx - cx, yy - cy) for cx, cy, rad in blobs], axis=0)
    return np.asarray((d + wobble) / 3.0, np.float32)


@pytest.mark.parametrize(
    "blobs",
    [
        [(290, 150, 90)],  # the cup's size, in the middle
        [(20, 15, 60), (600, 400, 120)],  # one over the top-left corner, one over the bottom-right edge
        [(320, 240, 400)],  # almost all of the frame: the band runs along the image border's inside
    ],
)
def test_fast_path_equals_the_full_frame_filter(blobs: list[tuple[int, int, int]]) -> None:
    image = load_image(COFFEE)
    logits = _blob_logits(image.shape[:2], blobs)
    mask = logits > 0
    mask[140:160, 280:300] = ~mask[140:160, 280:300]  # an edit the logits disagree with
    for s in (BoundarySettings(), BoundarySettings(radius=8, band=6, temperature=4.0)):
        fast = refine_boundary(mask, logits, image, s)
        assert np.array_equal(fast, _full_frame_reference(mask, logits, image, s))
        assert (fast != mask).any()


def test_mismatched_shapes_are_refused() -> None:
    img, _true, logits = _square_scene(shift=0)
    with pytest.raises(ValueError, match="must match"):
        refine_boundary(logits[:-1] > 0, logits, img)


@pytest.mark.weights
def test_segmenter_flag(weights_path: Path) -> None:
    image = load_image(COFFEE)
    plain = load_segmenter("mobilesam", weights=weights_path, zoom="off", boundary="off")
    assert isinstance(plain, MobileSamSegmenter) and plain.boundary == "off"
    guided = load_segmenter("mobilesam", weights=weights_path, zoom="off")
    assert isinstance(guided, MobileSamSegmenter) and guided.boundary == "guided"  # the default
    plain.set_image(image)
    guided.set_image(image)
    a = plain.predict(extreme_points=CUP)
    b = guided.predict(extreme_points=CUP)
    assert np.array_equal(b.candidates[0].mask, b.mask)
    changed = a.mask != b.mask
    assert changed.any()  # the boundary moved somewhere ...
    assert not (changed & ~boundary_band(a.mask, guided.boundary_settings.band)).any()  # ... only near it
    assert _iou(a.mask, b.mask) > 0.95
    (x0, y0), logits, frame = guided.boundary_inputs(a)
    assert (x0, y0) == (0, 0) and logits.shape == image.shape[:2] and frame.shape == image.shape
    assert np.array_equal(logits > 0, a.mask)  # the same upsampling as the masks
    for pts in (CUP, [(100, 100), (180, 60), (40, 200), (150, 300)]):
        pred = plain.predict(extreme_points=pts)
        (x0, y0), logits, frame = guided.boundary_inputs(pred)
        mask = pred.mask[y0 : y0 + logits.shape[0], x0 : x0 + logits.shape[1]]
        s = guided.boundary_settings
        assert np.array_equal(refine_boundary(mask, logits, frame, s), _full_frame_reference(mask, logits, frame, s))
    with pytest.raises(PromptError, match="boundary mode"):
        load_segmenter("mobilesam", weights=weights_path, boundary="bilateral")
