"""The one byte budget for what a labeling session keeps per image visited (issue: ~0.7 GB grew per image).

Everything kept for images *other than the one shown* counts against it: unsaved snapshots (``store.py``
keeps them zlib-compressed beyond it), and whatever the widget keeps to make coming back fast (per-image
undo histories, decoded images, model states). The shown image's own arrays are not counted: they are needed.
"""

from __future__ import annotations

import numpy as np

MEMORY_BUDGET_BYTES = 256 * 2**20
"""Bytes of uncompressed per-image data kept for images other than the one shown (256 MiB)."""


def nbytes(*objects: object) -> int:
    """Bytes held by the arrays reachable from ``objects``: numpy arrays, torch tensors, and the attributes /
    items of plain objects, dataclasses, dicts, lists and tuples (4 levels deep; a model state such as
    MobileSAM's ``SamImageState`` with its embedding and crop embeddings). An array (or a view of one) reached
    twice is counted once; other objects count 0."""
    seen: set[int] = set()

    def walk(obj: object, depth: int) -> int:
        if obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            return len(obj) if isinstance(obj, bytes) else 0
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            if id(base) in seen:
                return 0
            seen.add(id(base))
            return int(base.nbytes)
        numel, element_size = getattr(obj, "numel", None), getattr(obj, "element_size", None)
        if callable(numel) and callable(element_size):  # a torch tensor, without importing torch
            if id(obj) in seen:
                return 0
            seen.add(id(obj))
            return int(numel()) * int(element_size())
        if depth <= 0 or id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, dict):
            return sum(walk(v, depth - 1) for v in obj.values())
        if isinstance(obj, (list, tuple)):
            return sum(walk(v, depth - 1) for v in obj)
        fields = getattr(obj, "__dict__", None)
        return sum(walk(v, depth - 1) for v in fields.values()) if isinstance(fields, dict) else 0

    return sum(walk(obj, 4) for obj in objects)
