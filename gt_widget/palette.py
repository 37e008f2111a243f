"""Ground Truth's label colours.

Facts (../shared/reference/ground-truth.md §1.5): BACKGROUND is ``#ffffff`` at index 0; labels take the
d3 category10 colours starting at ``#2ca02c`` (2ca02c, 1f77b4, ff7f0e, d62728, 9467bd). A real 10-label
job showed 8c564b, e377c2, 7f7f7f, bcbd22, ff9896 next, in an order that is *not established*: we use the
order seen. Our choice beyond 10: the rest of d3 category20, then deterministic golden-angle hues. In
instance mode every instance takes the next colour of the same sequence (the docs show 2ca02c, 1f77b4, ...).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

BACKGROUND_LABEL = "BACKGROUND"
BACKGROUND_HEX = "#ffffff"
MAX_LABELS = 255
"""Index 0 is BACKGROUND in an 8-bit palette PNG, so at most 255 labels (or instances) fit."""

_OBSERVED = [
    "#2ca02c",
    "#1f77b4",
    "#ff7f0e",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#ff9896",
]
_CATEGORY20_REST = [
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]


def _generated(count: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    hue = 0.11
    while len(out) < count:
        hue = (hue + 0.618033988749895) % 1.0
        for sat, val in ((0.75, 0.85), (0.55, 0.65), (0.9, 0.5)):
            r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
            hx = rgb_to_hex((round(r * 255), round(g * 255), round(b * 255)))
            if hx not in taken and hx != BACKGROUND_HEX:
                taken.add(hx)
                out.append(hx)
                break
    return out


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#2ca02c"`` (or ``"2ca02c"``, ``"#2a2"``) -> (44, 160, 44)."""
    s = color.strip().lstrip("#")
    if len(s) == 3:
        s = "".join(ch * 2 for ch in s)
    if len(s) != 6:
        raise ValueError(f"not a hex colour: {color!r}; expected '#rrggbb'")
    try:
        return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)
    except ValueError:
        raise ValueError(f"not a hex colour: {color!r}; expected '#rrggbb'") from None


def rgb_to_hex(rgb: Sequence[int]) -> str:
    """(44, 160, 44) -> ``"#2ca02c"``."""
    r, g, b = (int(v) for v in rgb[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


PALETTE: tuple[str, ...] = tuple(
    _OBSERVED + _CATEGORY20_REST + _generated(MAX_LABELS - 20, set(_OBSERVED + _CATEGORY20_REST))
)
"""Colour of label/instance i (0-based) is ``PALETTE[i]``; 255 distinct colours, none white."""


def label_color(index: int) -> str:
    """Colour of the label (or instance) at 0-based ``index``."""
    if not 0 <= index < MAX_LABELS:
        raise ValueError(f"label index {index} out of range: Ground Truth's 8-bit PNGs hold at most {MAX_LABELS}")
    return PALETTE[index]


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    """Ground Truth's default colour for each label, in label order."""
    if len(labels) > MAX_LABELS:
        raise ValueError(f"{len(labels)} labels given; at most {MAX_LABELS} fit in Ground Truth's 8-bit PNG")
    return {label: PALETTE[i] for i, label in enumerate(labels)}
