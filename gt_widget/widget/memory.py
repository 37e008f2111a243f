"""The one byte budget for what a labeling session keeps per image visited (issue: ~0.7 GB grew per image).

Everything kept for images *other than the one shown* counts against it: unsaved snapshots (``store.py``
keeps them zlib-compressed beyond it), and whatever the widget keeps to make coming back fast (per-image
undo histories, decoded images, model states). The shown image's own arrays are not counted: they are needed.
"""

MEMORY_BUDGET_BYTES = 256 * 2**20
"""Bytes of uncompressed per-image data kept for images other than the one shown (256 MiB)."""
