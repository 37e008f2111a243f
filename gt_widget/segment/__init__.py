"""Kernel-side segmentation: ``load_segmenter("mobilesam" | "grabcut")`` -> a ``Segmenter``.

See ``gt_widget.segment.base`` for the conventions shared by every segmenter::

    seg = load_segmenter()                 # MobileSAM, or GrabCut with a warning when no weights
    seg.set_image(image)                   # expensive, once per image (safe in a background thread)
    pred = seg.predict(extreme_points=[(x, y)] * 4)
    pred = seg.predict(extreme_points=pts, clicks=[(x, y, True)], previous=pred)   # refine

A missed part: place 4 extreme points on the part alone and union its mask with the object's
(``mask = pred.mask | part.mask``); the segmenters never merge predictions themselves.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from gt_widget.errors import GtWidgetError, WeightsError
from gt_widget.segment.base import Candidate, Click, Point, Prediction, Segmenter

__all__ = ["Candidate", "Click", "Point", "Prediction", "Segmenter", "load_segmenter", "resolve_device"]

NAMES = ("mobilesam", "grabcut")


def resolve_device(device: str | None = None) -> str:
    """The torch device to run a model on: ``device`` as given (``"cpu"``, ``"cuda"``, ``"cuda:1"``), or, when
    None, ``"cuda"`` when PyTorch sees a GPU (e.g. one Ray lent to a worker) and ``"cpu"`` otherwise."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    key = str(device).strip().lower()
    if key.startswith("cuda") and not torch.cuda.is_available():
        raise GtWidgetError(f"device {device!r} asked for, but PyTorch sees no CUDA GPU; use device='cpu'")
    if not (key == "cpu" or key.startswith("cuda")):
        raise GtWidgetError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N' (or None to choose)")
    return key


def load_segmenter(name: str | None = None, *, device: str | None = None, **kwargs: Any) -> Segmenter:
    """A ready segmenter by name.

    ``"mobilesam"``: MobileSAM with the extreme-points recipe (``weights=`` path, else the cached or
    downloaded checkpoint; raises ``WeightsError`` when none can be had). ``"grabcut"``: the OpenCV
    fallback (no weights). ``None``: MobileSAM, else GrabCut with a ``RuntimeWarning`` saying why.
    Other keyword arguments go to the segmenter's constructor (recipe flags, ``max_side``, ...).
    ``device``: where MobileSAM runs (``resolve_device``: CUDA when available, else CPU, whose path is
    unchanged); GrabCut always runs on the CPU.
    """
    if name is None:
        try:
            return load_segmenter("mobilesam", device=device, **kwargs)
        except (WeightsError, ImportError) as exc:
            warnings.warn(
                f"MobileSAM is unavailable ({exc}); using the GrabCut fallback, which is slower to correct "
                "and less accurate. Run `gt-widget weights fetch` (or pass weights=PATH) to use MobileSAM.",
                RuntimeWarning,
                stacklevel=2,
            )
            import inspect

            from gt_widget.segment.grabcut import GrabCutSegmenter

            accepted = inspect.signature(GrabCutSegmenter).parameters  # MobileSAM-only flags do not apply
            return load_segmenter("grabcut", **{k: v for k, v in kwargs.items() if k in accepted})
    key = str(name).strip().lower()
    if key == "grabcut":
        from gt_widget.segment.grabcut import GrabCutSegmenter

        return GrabCutSegmenter(**kwargs)
    if key in ("mobilesam", "mobile_sam", "sam"):
        from gt_widget.segment.mobilesam_segmenter import MobileSamSegmenter

        weights = kwargs.pop("weights", None)
        target = resolve_device(device)
        segmenter = MobileSamSegmenter.from_weights(Path(weights) if weights is not None else None, **kwargs)
        if target != "cpu":
            segmenter.model.to(target)
        return segmenter
    raise GtWidgetError(f"unknown segmenter {name!r}: choose one of {', '.join(NAMES)}")
