"""View transform and the pixels sent to the canvas: exact mapping, crisp nearest overlay, bounded size."""

from __future__ import annotations

import numpy as np
import pytest

from gt_widget.palette import PALETTE, hex_to_rgb
from gt_widget.widget.render import ImagePyramid, Viewport, color_lut, overlay_rgba, photo_rgb


def test_fit_centres_and_maps_pixel_centres() -> None:
    v = Viewport.for_image(200, 100, 900, 600)
    assert (v.canvas_w, v.canvas_h) == (900, 450) and v.scale == pytest.approx(4.5)
    assert v.to_canvas(0, 0) == pytest.approx((2.25, 2.25))
    assert v.to_image(*v.to_canvas(123.0, 45.0)) == pytest.approx((123.0, 45.0))
    # canvas pixel centres fall in the right image pixel
    ys, xs = v.sample_indices((0, 0, 900, 450))
    assert xs[0] == 0 and xs[-1] == 199 and ys[-1] == 99
    assert np.bincount(xs).min() == 4 and np.bincount(xs).max() == 5  # 4.5 canvas px per image px


def test_zoom_keeps_the_point_under_the_cursor() -> None:
    v = Viewport.for_image(640, 480, 640, 480)
    before = v.to_image(100, 200)
    v.zoom(3.0, (100, 200))
    assert v.scale == pytest.approx(3.0)
    assert v.to_image(100, 200) == pytest.approx(before)
    v.zoom(1000.0, (100, 200))
    assert v.scale == 32.0  # clamped
    v.fit()
    v.zoom(0.0001)
    assert v.scale == pytest.approx(0.25)


def test_pan_is_clamped_so_the_image_stays_visible() -> None:
    v = Viewport.for_image(100, 100, 400, 400)
    v.pan(10_000, -10_000)
    rect = v.image_rect()
    assert rect is not None and rect[2] - rect[0] >= 100 and rect[3] - rect[1] >= 100


def test_box_rect_covers_the_box() -> None:
    v = Viewport.for_image(100, 80, 250, 200)  # scale 2.5
    rect = v.box_rect((10, 20, 30, 41))
    assert rect == (75, 25, 103, 50)
    ys, xs = v.sample_indices(rect)
    assert xs.min() == 30 and ys.min() == 10 and ys.max() == 19 and xs.max() == 41  # edge pixel half-covered
    # every canvas pixel whose centre falls inside the box is inside the rect
    ys_all, xs_all = v.sample_indices((0, 0, 250, 200))
    cols = np.flatnonzero((xs_all >= 30) & (xs_all < 41))
    rows = np.flatnonzero((ys_all >= 10) & (ys_all < 20))
    assert rect[0] <= cols.min() and cols.max() < rect[2] and rect[1] <= rows.min() and rows.max() < rect[3]


def test_overlay_is_nearest_and_lossless() -> None:
    lm = np.zeros((10, 12), np.uint8)
    lm[2:5, 3:9] = 1
    lm[7, 11] = 2
    v = Viewport.for_image(12, 10, 120, 100)  # 10 canvas px per image px
    lut = color_lut([PALETTE[0], PALETTE[1]], 0.5)
    rgba = overlay_rgba(lm, v, (0, 0, 120, 100), lut)
    assert rgba.shape == (100, 120, 4)
    green = (*hex_to_rgb(PALETTE[0]), 128)
    assert tuple(rgba[20, 30]) == green and tuple(rgba[49, 89]) == green
    assert tuple(rgba[50, 89]) == (0, 0, 0, 0) and tuple(rgba[19, 30]) == (0, 0, 0, 0)
    assert tuple(rgba[75, 115]) == (*hex_to_rgb(PALETTE[1]), 128)
    # exactly two colours + transparent: no blended edge pixels
    assert len({tuple(p) for p in rgba.reshape(-1, 4)}) == 3


def test_overlay_outside_the_image_is_transparent() -> None:
    lm = np.ones((10, 10), np.uint8)
    v = Viewport.for_image(10, 10, 100, 100)
    v.pan(50, 0)
    rgba = overlay_rgba(lm, v, (0, 0, 100, 100), color_lut([PALETTE[0]], 1.0))
    assert rgba[:, :50, 3].max() == 0  # left of the image
    assert rgba[:, 50:, 3].all()


def test_highlight_makes_one_value_more_opaque() -> None:
    lut = color_lut(PALETTE[:3], 0.4, highlight=2)
    assert lut[1, 3] == 102 and lut[2, 3] > 102 and lut[0, 3] == 0


def test_photo_is_aligned_with_the_overlay() -> None:
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[2:5, 3:9] = 255
    v = Viewport.for_image(12, 10, 120, 100)
    v.zoom(4.0, (0, 0))  # 40 px per image px -> nearest
    rect = (0, 0, v.canvas_w, v.canvas_h)
    photo = photo_rgb(ImagePyramid(rgb), v, rect)
    lm = (rgb[..., 0] > 0).astype(np.uint8)
    rgba = overlay_rgba(lm, v, rect, color_lut([PALETTE[0]], 1.0))
    assert np.array_equal(photo[..., 0] == 255, rgba[..., 3] == 255)


def test_big_image_sends_only_canvas_sized_pictures() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (8000, 10000, 3), dtype=np.uint8)
    v = Viewport.for_image(10000, 8000, 900, 600)
    pyr = ImagePyramid(rgb)
    photo = photo_rgb(pyr, v, (0, 0, v.canvas_w, v.canvas_h))
    assert photo.shape == (600, 750, 3)
    level, f = pyr.level(v.scale)
    assert f == 8 and level.shape[:2] == (1000, 1250)  # resampled from a small pyramid level
    lm = np.zeros((8000, 10000), np.uint8)
    lm[4000:, :5000] = 1
    rgba = overlay_rgba(lm, v, v.image_rect() or (0, 0, 1, 1), color_lut([PALETTE[0]], 0.5))
    assert rgba.shape == (600, 750, 4) and rgba[300:, :375, 3].all() and not rgba[:299, :, 3].any()


def test_zoomed_out_overlay_keeps_thin_strokes_visible() -> None:
    lm = np.zeros((8000, 10000), np.uint8)
    lm[:, 5003] = 1  # a 1-pixel line: nearest sampling at 1/13 scale would usually miss it
    lm[1234, 100:9000] = 2
    v = Viewport.for_image(10000, 8000, 900, 600)
    rect = v.image_rect()
    assert rect is not None
    rgba = overlay_rgba(lm, v, rect, color_lut(PALETTE[:2], 1.0))
    cols = np.flatnonzero(rgba[:, :, 3].all(axis=0))
    assert len(cols) == 1 and abs(v.to_image(rect[0] + cols[0] + 0.5, 0)[0] - 5003) < 1 / v.scale
    rows = np.flatnonzero((rgba[..., :3] == hex_to_rgb(PALETTE[1])).all(axis=2).any(axis=1))
    assert len(rows) == 1


def test_block_max_matches_brute_force(rng: np.random.Generator) -> None:
    lm = (rng.random((97, 131)) < 0.02).astype(np.uint8) * rng.integers(1, 4, (97, 131)).astype(np.uint8)
    v = Viewport.for_image(131, 97, 40, 30)
    v.zoom(1.3, (7, 9))
    rect = (0, 0, v.canvas_w, v.canvas_h)
    got = overlay_rgba(lm, v, rect, color_lut(PALETTE[:3], 1.0))
    # brute force: the max over image pixels whose centre falls in each canvas pixel
    cx = v.offset_x + (np.arange(131) + 0.5) * v.scale
    cy = v.offset_y + (np.arange(97) + 0.5) * v.scale
    ref = np.zeros((v.canvas_h, v.canvas_w), np.uint8)
    for y in range(97):
        for x in range(131):
            i, j = int(np.floor(cy[y])), int(np.floor(cx[x]))
            if 0 <= i < v.canvas_h and 0 <= j < v.canvas_w:
                ref[i, j] = max(ref[i, j], lm[y, x])
    assert np.array_equal(got, color_lut(PALETTE[:3], 1.0)[ref])


@pytest.mark.parametrize("style", ["fill+outline", "outline", "hidden"])
@pytest.mark.parametrize("zoom", [0.25, 1.0, 3.5])
def test_palette_overlay_decodes_to_exactly_the_rgba_overlay(style: str, zoom: float) -> None:
    """The overlay is sent as a palette PNG (issue 13: ~20x cheaper to encode); the browser must get the
    very pixels of ``styled_overlay``, contours and the highlighted instance included."""
    import io

    from PIL import Image

    from gt_widget.widget.render import (
        Viewport,
        color_lut,
        outline_lut,
        overlay_palette,
        palette_png,
        styled_overlay,
        styled_overlay_index,
    )

    rng = np.random.default_rng(7)
    index_map = np.zeros((90, 120), np.uint8)
    for v in range(1, 12):  # overlapping blobs of 11 values
        y, x = rng.integers(0, 80), rng.integers(0, 110)
        index_map[y : y + rng.integers(3, 30), x : x + rng.integers(3, 30)] = v
    colors = ["#ff0000", "#00ff00", "#0000ff", "#123456", "#abcdef", "#fedcba"] * 2
    fill, line = color_lut(colors, 0.45, highlight=3), outline_lut(colors)
    view = Viewport.for_image(120, 90, 500, 400)  # fitted: 3.33 canvas px per pixel; zoomed out: 0.83
    view.zoom(zoom, (130.0, 170.0))
    rect = view.image_rect()
    assert rect is not None
    index = styled_overlay_index(index_map, view, rect, style)
    assert index is not None
    decoded = np.asarray(Image.open(io.BytesIO(palette_png(index, overlay_palette(fill, line)))).convert("RGBA"))
    expected = styled_overlay(index_map, view, rect, fill, line, style)
    np.testing.assert_array_equal(decoded, expected)
    many = np.full_like(index_map, 200)  # past the palette: None, the caller sends RGBA
    assert (styled_overlay_index(many, view, rect, style) is None) == (style != "hidden")
