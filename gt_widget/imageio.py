"""Load any image a user is likely to hand us as an RGB ``uint8`` array of shape (H, W, 3).

Conventions: arrays are row-major (H, W[, C]); coordinates elsewhere in gt_widget are (x, y) pixels,
x to the right, y down, (0, 0) the centre of the top-left pixel.

Choices (Ground Truth shows the image in a browser, so we match what a worker would see):
- EXIF orientation is applied, as browsers do.
- RGBA / LA / P-with-transparency are composited over white (the page background), not cropped of alpha.
- 16-bit images are scaled by their full range (value / 257); float images are taken as 0..1 when their
  maximum is <= ``FLOAT_UNIT_MAX`` (2.0: a 0..1 image that overshoots a little, e.g. after resampling,
  stays 0..1; a 0..255 image whose brightest pixel is 2 is black either way), else as 0..255; both are
  clipped and rounded, with a ``GtWidgetWarning`` saying how many values were clipped.
- Animated GIFs, multi-page TIFFs (any multi-frame file): the first frame is used, with a ``GtWidgetWarning``.
- URLs (``https://...``, ``s3://...``) are not files: ``load_image`` says so instead of "not found";
  ``LabelingSession`` fetches ``s3://`` images itself.
- Grayscale becomes three equal channels.
- Images up to ``MAX_PIXELS`` (100 Mpx, Ground Truth's resolution quota) are accepted.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gt_widget.errors import GtWidgetWarning, ImageLoadError

MAX_PIXELS = 100_000_000
"""Largest image accepted, in pixels (Ground Truth's quota for non-active-learning jobs)."""

FLOAT_UNIT_MAX = 2.0
"""Float images whose maximum is at most this are read as 0..1 (values above 1 are clipped), else 0..255."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")

ImageSource = str | os.PathLike[str] | Image.Image | np.ndarray
"""What ``load_image`` accepts: a path, a PIL image or a numpy array."""


def load_image(source: ImageSource, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return ``source`` as a C-contiguous ``uint8`` array of shape (H, W, 3), RGB.

    Raises ``ImageLoadError`` with a message that says what to do for unreadable files, unsupported
    arrays, empty images and images larger than ``max_pixels``.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels=max_pixels)
    if isinstance(source, Image.Image):
        return _from_pil(source, max_pixels=max_pixels, name="PIL image")
    if isinstance(source, (str, os.PathLike)):
        _refuse_url(source)
        return _from_path(Path(source), max_pixels=max_pixels)
    raise ImageLoadError(
        f"cannot use an object of type {type(source).__name__} as an image: pass a file path, "
        "a PIL.Image.Image or a numpy array of shape (H, W), (H, W, 3) or (H, W, 4)"
    )


def image_size(source: ImageSource) -> tuple[int, int]:
    """(width, height) of ``source`` after EXIF orientation, without decoding pixels when it is a file."""
    if isinstance(source, np.ndarray):
        return int(source.shape[1]), int(source.shape[0])
    if isinstance(source, Image.Image):
        return _oriented_size(source)
    _refuse_url(source)
    path = Path(source)
    try:
        with Image.open(path) as img:
            return _oriented_size(img)
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageLoadError(_unreadable_message(path, exc)) from None


def _refuse_url(source: str | os.PathLike[str]) -> None:
    text = os.fspath(source)
    if isinstance(text, str) and _URL.match(text) and not text.startswith("file://"):
        raise ImageLoadError(
            f"{text!r} is a URL, not a local file: download it first (for s3:// images, LabelingSession "
            "and the job tools fetch them for you) and pass the local path"
        )


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    orientation = img.getexif().get(0x0112, 1)
    w, h = img.size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _unreadable_message(path: Path, exc: BaseException) -> str:
    return (
        f"cannot read image {str(path)!r}: {exc}. Check that the file exists and is a PNG, JPEG, "
        "TIFF, BMP or WebP image (re-save it with an image editor if it is damaged)"
    )


def _from_path(path: Path, *, max_pixels: int) -> np.ndarray:
    if not path.exists():
        raise ImageLoadError(f"image file not found: {str(path)!r}; check the path (relative to {str(Path.cwd())!r})")
    if path.is_dir():
        raise ImageLoadError(f"{str(path)!r} is a folder, not an image file")
    # PIL's process-wide decompression-bomb limit is never changed (another thread may be decoding an untrusted
    # image meanwhile); our per-call limit is checked from the header before decoding. PIL's warning between its
    # limit and twice it is silenced for this call only; above twice it PIL refuses first, with our message.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_size(img.size[0], img.size[1], max_pixels, str(path))
                img.load()
                return _from_pil(img, max_pixels=max_pixels, name=str(path))
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(
            f"image {str(path)!r} is too large to decode safely ({exc}); the limit is "
            f"{max_pixels / 1e6:.0f} Mpx (Ground Truth's own quota): downscale it"
        ) from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(_unreadable_message(path, exc)) from None


def _check_size(width: int, height: int, max_pixels: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageLoadError(f"image {name} is empty ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise ImageLoadError(
            f"image {name} has {width}x{height} = {width * height / 1e6:.1f} Mpx, more than the "
            f"{max_pixels / 1e6:.0f} Mpx limit (Ground Truth's own quota); downscale it or pass a larger max_pixels"
        )


def _from_pil(img: Image.Image, *, max_pixels: int, name: str) -> np.ndarray:
    frames = int(getattr(img, "n_frames", 1) or 1)
    if frames > 1:
        warnings.warn(
            f"image {name} has {frames} frames (an animated GIF or a multi-page TIFF); only the first frame "
            "is used. Save the frame you want as its own PNG to label another one",
            GtWidgetWarning,
            stacklevel=4,
        )
        img.seek(0)
    if img.getexif().get(0x0112, 1) != 1:  # exif_transpose copies even an upright image: 4 bytes/px more peak
        img = ImageOps.exif_transpose(img) or img
    _check_size(img.size[0], img.size[1], max_pixels, name)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _from_array(np.asarray(img), max_pixels=max_pixels)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite_over_white(np.asarray(img.convert("RGBA")))
    if mode != "RGB":
        img = img.convert("RGB")
    return _rgb_array(img)


BAND_PIXELS = 1 << 22
"""Pixels per row band when a large PIL image is copied into its numpy array (4 Mpx: 12 MB per band)."""


def _rgb_array(img: Image.Image) -> np.ndarray:
    """An RGB PIL image as a C-contiguous uint8 (H, W, 3) array, copied in row bands when large:
    ``np.asarray(img)`` first makes the whole image a bytes object (Pillow's ``tobytes``, which joins its
    chunks: twice the array's size at its peak), so a 99 Mpx image cost ~0.6 GB more than the array."""
    w, h = img.size
    if w * h <= BAND_PIXELS:
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    out = np.empty((h, w, 3), np.uint8)
    rows = max(1, BAND_PIXELS // w)
    for y in range(0, h, rows):
        out[y : y + rows] = np.asarray(img.crop((0, y, w, min(h, y + rows))), dtype=np.uint8)
    return out


def _to_uint8(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.bool_:
        return values.astype(np.uint8) * 255
    if values.dtype == np.uint16:
        return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(values.dtype, np.integer):
        if values.size and (values.min() < 0 or values.max() > 255):
            top = float(values.max())
            scale = 255.0 / top if top > 0 else 1.0
            return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return values.astype(np.uint8)
    if np.issubdtype(values.dtype, np.floating):
        finite = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        unit = not finite.size or float(finite.max()) <= FLOAT_UNIT_MAX
        top = 1.0 if unit else 255.0
        clipped = int(np.count_nonzero((finite < 0) | (finite > top)))
        if clipped:
            warnings.warn(
                f"{clipped} float pixel value(s) outside {'0..1' if unit else '0..255'} were clipped (float "
                f"images are read as 0..1 when their maximum is at most {FLOAT_UNIT_MAX:g}, else as 0..255); "
                "rescale the array yourself if that is not what you meant",
                GtWidgetWarning,
                stacklevel=4,
            )
        scale = 255.0 if unit else 1.0
        return np.clip(np.rint(finite * scale), 0, 255).astype(np.uint8)
    raise ImageLoadError(f"unsupported image array dtype {values.dtype}: use uint8, uint16, bool or float")


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.uint16)
    rgb = rgba[..., :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def _from_array(array: np.ndarray, *, max_pixels: int) -> np.ndarray:
    a: np.ndarray[Any, Any] = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageLoadError(
            f"image array has shape {a.shape}; expected (H, W) grayscale, (H, W, 3) RGB or (H, W, 4) RGBA"
        )
    _check_size(int(a.shape[1]), int(a.shape[0]), max_pixels, f"array {a.shape}")
    a8 = _to_uint8(a)
    if a8.ndim == 2:
        return np.ascontiguousarray(np.repeat(a8[..., None], 3, axis=2))
    if a8.shape[2] == 4:
        return _composite_over_white(a8)
    return np.ascontiguousarray(a8)
