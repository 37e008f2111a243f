"""Turn a previous result (``initial_value``, for adjustment jobs) into the widget's maps.

Accepted (reference §1.3, §1.4):
- any worker-answer shape ``formats.read_answer`` reads (the element's value, a form result, a
  worker-response file; as a dict, JSON string or bytes);
- Ground Truth's ``initial-value`` attribute: ``{"labelMappings": {...}, "src": ...}`` (semantic) or
  ``{"instances": [...], "src": ...}`` (instance), where ``src`` is a local path, a ``file://`` or ``data:``
  URL, or an http(s) URL (e.g. a presigned S3 URL);
- a ``SemanticResult`` / ``InstanceResult``; a uint8 (H, W) label map (semantic mode).

Choices: a semantic result loaded into an instance-mode widget becomes one instance per painted label; an
instance result loaded into a semantic widget is collapsed to its labels (later instances on top).
"""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gt_widget.errors import FormatError
from gt_widget.groundtruth.formats import Instance, InstanceResult, SemanticResult, colors_to_indices, read_answer
from gt_widget.palette import PALETTE
from gt_widget.widget.state import Mode, WidgetError


def _read_src(src: str) -> np.ndarray:
    try:
        if src.startswith("data:"):
            data = base64.b64decode(src.split(",", 1)[1])
        elif src.startswith(("http://", "https://")):
            with urllib.request.urlopen(src, timeout=30) as resp:  # the user's own URL
                data = resp.read()
        else:
            path = Path(urllib.parse.urlparse(src).path if src.startswith("file://") else src)
            data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGBA"))
    except (OSError, ValueError, IndexError) as exc:
        raise WidgetError(
            f"cannot read the initial-value image {src[:120]!r}: {exc}. Give a readable PNG path, file:// or "
            "data: URL, or a reachable http(s) URL"
        ) from None


def _from_initial_value_attr(value: Mapping[str, Any], labels: Sequence[str]) -> SemanticResult | InstanceResult:
    rgba = _read_src(str(value["src"]))
    if "instances" in value:
        instances = [Instance(str(i["label"]), str(i["color"]).lower()) for i in value["instances"]]
        return InstanceResult(colors_to_indices(rgba, [i.color for i in instances]), instances)
    mappings = value.get("labelMappings") or {}
    unknown = [name for name in mappings if name not in labels]
    if unknown:
        raise WidgetError(f"initial value names labels {unknown} that are not in this widget's labels {list(labels)}")
    colors = [str(mappings[name]["color"]).lower() if name in mappings else "#000000" for name in labels]
    return SemanticResult(colors_to_indices(rgba, colors), list(labels), dict(zip(labels, colors, strict=True)))


def decode(value: Any, labels: Sequence[str], mode: Mode, shape: tuple[int, int]) -> tuple[np.ndarray, list[Instance]]:
    """(map, instances) for a widget with ``labels``/``mode`` on an image of ``shape`` = (H, W)."""
    result: SemanticResult | InstanceResult
    if isinstance(value, np.ndarray):
        if mode == "instance":
            raise WidgetError(
                "an instance-mode initial value needs its instance list: pass an InstanceResult or answer"
            )
        result = SemanticResult(np.asarray(value), list(labels))
        if result.label_map.ndim != 2 or (result.label_map.size and int(result.label_map.max()) > len(labels)):
            raise WidgetError(
                f"an initial label map must be uint8 (H, W) with values 0..{len(labels)}, got shape "
                f"{result.label_map.shape} and max {int(result.label_map.max()) if result.label_map.size else 0}"
            )
    elif isinstance(value, (SemanticResult, InstanceResult)):
        result = value
    else:
        payload = value
        if isinstance(payload, (str, bytes)):
            try:
                payload = json.loads(payload)
            except json.JSONDecodeError as exc:
                raise WidgetError(f"initial value is not valid JSON: {exc}") from None
        try:
            if isinstance(payload, Mapping) and "src" in payload and "labeledImage" not in payload:
                result = _from_initial_value_attr(payload, labels)
            else:
                result = read_answer(payload, labels)
        except FormatError as exc:
            raise WidgetError(f"cannot use this initial value: {exc}") from None
    return _to_widget(result, labels, mode, shape)


def _to_widget(
    result: SemanticResult | InstanceResult, labels: Sequence[str], mode: Mode, shape: tuple[int, int]
) -> tuple[np.ndarray, list[Instance]]:
    got = result.label_map.shape if isinstance(result, SemanticResult) else result.instance_map.shape
    if tuple(got) != tuple(shape):
        raise WidgetError(
            f"the initial value is {got[1]}x{got[0]} pixels but the image is {shape[1]}x{shape[0]}: it belongs "
            "to another image"
        )
    if isinstance(result, InstanceResult):
        unknown = sorted({i.label for i in result.instances if i.label not in labels})
        if unknown:
            raise WidgetError(f"initial value has instances of labels {unknown} not in this widget's labels {labels}")
        if mode == "instance":
            return result.instance_map.astype(np.uint8), list(result.instances)
        return result.label_map(labels), []
    # semantic result: re-index its labels onto ours by name
    lut = np.zeros(256, np.uint8)
    for i, name in enumerate(result.labels):
        if name not in labels:
            raise WidgetError(f"initial value has label {name!r}, which is not in this widget's labels {list(labels)}")
        lut[i + 1] = list(labels).index(name) + 1
    label_map = lut[result.label_map]
    if mode == "semantic":
        return label_map, []
    present = [int(v) for v in np.unique(label_map) if v]
    inst_lut = np.zeros(256, np.uint8)
    instances = []
    for k, v in enumerate(present):
        inst_lut[v] = k + 1
        instances.append(Instance(labels[v - 1], PALETTE[k]))
    return inst_lut[label_map], instances
