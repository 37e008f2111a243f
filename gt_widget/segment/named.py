"""Named segmenter recipes that users pick by name (``gt-widget evaluate`` / ``resegment --recipe``).

- ``default``: MobileSAM with its default extreme-points recipe (zoomed second pass for small objects);
- ``fast``: MobileSAM, one encoder pass per image (``zoom="off"``) of the image's own area only
  (``encode_area="real"``: 0.39 vs 0.66 CPU-s for a 16:9 frame, box mIoU +0.2; benchmarks/README.md);
- ``fallback``: the OpenCV GrabCut fallback (no weights).
Extra ``key=value`` flags (``parse_flags``) go to the segmenter's constructor on top of the recipe.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from gt_widget.errors import GtWidgetError
from gt_widget.segment.base import Segmenter

RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("mobilesam", {}),
    "fast": ("mobilesam", {"zoom": "off", "encode_area": "real"}),
    "fallback": ("grabcut", {}),
}


def parse_flags(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings -> constructor flags (numbers, true/false, comma lists for ``*variants``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise GtWidgetError(f"recipe flag {item!r} must look like key=value (e.g. zoom=off)")
        value: Any = raw
        if key.endswith("variants"):
            value = tuple(v for v in raw.split(",") if v)
        elif raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            try:
                value = float(raw) if "." in raw else int(raw)
            except ValueError:
                value = raw
        out[key] = value
    return out


def load_recipe(name: str, *, weights: str | os.PathLike[str] | None = None, **flags: Any) -> Segmenter:
    """The segmenter of recipe ``name`` (module doc), with ``flags`` on top."""
    from gt_widget.segment import load_segmenter

    if name not in RECIPES:
        raise GtWidgetError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    model, base = RECIPES[name]
    kwargs = dict(base, **flags)
    if model == "mobilesam" and weights is not None:
        kwargs["weights"] = weights
    return load_segmenter(model, **kwargs)
