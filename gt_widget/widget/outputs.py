"""What one image's labels become: Ground Truth's answer, worker response and consolidated PNG.

Reads a ``LabelState`` (the editor's); knows the initial value it started from and when the image was shown
(the worker response's acceptance time). Formats are ``gt_widget.groundtruth.formats`` (reference §1.3, §1.6).
"""

from __future__ import annotations

import zlib
from datetime import datetime, timezone
from typing import Any

from gt_widget.groundtruth import formats
from gt_widget.widget.state import LabelState


class Outputs:
    """The outputs of the image shown since ``loaded_at``."""

    def __init__(self, state: LabelState, has_initial: bool, worker_id: str) -> None:
        self.initial = zlib.compress(state.map.tobytes(), 1) if has_initial else None
        self.loaded_at = datetime.now(timezone.utc)
        self.worker_id = worker_id

    def initial_modified(self, state: LabelState) -> bool | None:
        """Whether the labels differ from the initial value (None when there was none)."""
        return None if self.initial is None else zlib.decompress(self.initial) != state.map.tobytes()

    def answer(self, state: LabelState) -> dict[str, Any]:
        """What ``crowd-semantic-segmentation`` / ``crowd-instance-segmentation`` submits under its name."""
        if state.mode == "instance":
            return formats.instance_answer(state.map, list(state.instances))
        return formats.semantic_answer(state.map, state.labels, initial_value_modified=self.initial_modified(state))

    def worker_response(self, state: LabelState, worker_id: str | None = None) -> dict[str, Any]:
        """The worker-response JSON Ground Truth writes to annotations/worker-response/ (§1.3)."""
        element = formats.INSTANCE_ELEMENT_NAME if state.mode == "instance" else formats.SEMANTIC_ELEMENT_NAME
        return formats.worker_response(
            self.answer(state),
            element_name=element,
            worker_id=worker_id or self.worker_id,
            acceptance_time=self.loaded_at,
        )

    @staticmethod
    def consolidated_png(state: LabelState) -> bytes:
        """The consolidated 8-bit palette PNG (value = internal-color-map key, §1.6)."""
        return formats.consolidated_png(state.map, state.colors())
