"""load_image: every input kind a user hands us becomes RGB uint8 (H, W, 3), or a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gt_widget.errors import ImageLoadError
from gt_widget.imageio import image_size, load_image


def test_uint16_gray_scales_full_range() -> None:
    a = np.array([[0, 65535], [257, 32896]], np.uint16)
    out = load_image(a)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[..., 0].tolist() == [[0, 255], [1, 128]]


def test_float_unit_range_and_rgba_over_white() -> None:
    assert load_image(np.full((2, 2), 0.5))[0, 0].tolist() == [128, 128, 128]
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]  # opaque red stays red
    rgba[0, 1] = [255, 0, 0, 0]  # transparent shows the white page
    assert load_image(rgba)[0].tolist() == [[255, 0, 0], [255, 255, 255]]


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (10, 20, 30))
    img.paste((255, 0, 0), (0, 0, 8, 8))  # a red top-left block (JPEG blurs single pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=100)
    out = load_image(path)
    assert out.shape == (40, 20, 3)
    assert image_size(path) == (20, 40)
    assert out[1, -2, 0] > 200 and out[-2, 1, 0] < 100  # the red corner moved to the top-right


def test_unreadable_file_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ImageLoadError, match="cannot read image"):
        load_image(bad)
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageLoadError, match="expected"):
        load_image(np.zeros((3, 3, 2), np.uint8))


def test_too_many_pixels_is_refused_with_hint() -> None:
    with pytest.raises(ImageLoadError, match="downscale"):
        load_image(np.zeros((100, 100), np.uint8), max_pixels=5000)


def test_large_image_within_quota_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (10000, 8000), 7).save(path)
    out = load_image(path)
    assert out.shape == (8000, 10000, 3) and int(out[4000, 5000, 1]) == 7


def test_large_images_are_copied_in_row_bands_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large images go through the banded copy (less peak memory than ``np.asarray``): same pixels, any height."""
    import gt_widget.imageio as imageio

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (101, 67, 3), dtype=np.uint8)  # 101 rows: the last band is partial
    path = tmp_path / "big.png"
    Image.fromarray(pixels).save(path)
    monkeypatch.setattr(imageio, "BAND_PIXELS", 67 * 10)  # 10 rows per band
    out = load_image(path)
    assert out.shape == pixels.shape and out.flags.c_contiguous and out.dtype == np.uint8
    assert np.array_equal(out, pixels)
    gray = tmp_path / "gray.png"
    Image.fromarray(pixels[..., 0]).save(gray)
    assert np.array_equal(load_image(gray), np.repeat(pixels[..., :1], 3, axis=2))
