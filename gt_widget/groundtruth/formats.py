"""Ground Truth's image-segmentation output formats, written and read.

Source of every fact: ../shared/reference/ground-truth.md (§ numbers below). Conventions:
- a *label map* is ``uint8`` (H, W): 0 = BACKGROUND, i = ``labels[i - 1]``;
- an *instance map* is ``uint8`` (H, W): 0 = no instance, k = ``instances[k - 1]``;
- colours are ``"#rrggbb"`` strings.

Choices where the reference is silent (each marked "choice" in the code):
- worker PNG: RGBA, painted pixels opaque in the label colour, unpainted pixels fully transparent (§1.6
  says the encoding of unpainted pixels is not documented; readers match RGB of opaque pixels, so both
  transparent and white decode as background);
- ``labelMappings`` lists only labels that are painted (the real payload in §1.3 lists only ``Bird``);
- instance mode has no built-in consolidated format (§3.2, §8): sessions write instance jobs as a custom job
  writes them (``groundtruth/output.py: instance_line``). ``output_manifest_line(mode="instance")`` (a palette
  PNG indexed by instance, with an ``instances`` list) is our earlier, invented format, kept only so that
  folders written by earlier versions and adjustment inputs built from them still read.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
from PIL import Image

from gt_widget.errors import FormatError
from gt_widget.palette import BACKGROUND_HEX, BACKGROUND_LABEL, MAX_LABELS, hex_to_rgb, label_colors

SEMANTIC_ELEMENT_NAME = "crowd-semantic-segmentation"
INSTANCE_ELEMENT_NAME = "crowd-instance-segmentation"


@dataclass
class Instance:
    """One object of instance mode: its label and its own colour."""

    label: str
    color: str


@dataclass
class SemanticResult:
    """A decoded semantic answer: ``label_map`` (uint8 HxW, 0 = background) over ``labels``."""

    label_map: np.ndarray
    labels: list[str]
    colors: dict[str, str] = field(default_factory=dict)
    initial_value_modified: bool | None = None

    def mask(self, label: str) -> np.ndarray:
        """Bool HxW mask of one label."""
        return np.asarray(self.label_map == self.labels.index(label) + 1)


@dataclass
class InstanceResult:
    """A decoded instance answer: ``instance_map`` (uint8 HxW, 0 = none) over ``instances``."""

    instance_map: np.ndarray
    instances: list[Instance]

    def masks(self) -> list[np.ndarray]:
        """Bool HxW mask of each instance, in instance order."""
        return [np.asarray(self.instance_map == k + 1) for k in range(len(self.instances))]

    def label_map(self, labels: Sequence[str]) -> np.ndarray:
        """Collapse to a semantic label map over ``labels`` (later instances paint over earlier ones)."""
        out = np.zeros(self.instance_map.shape, np.uint8)
        for k, inst in enumerate(self.instances):
            if inst.label not in labels:
                raise FormatError(f"instance {k + 1} has label {inst.label!r}, which is not in {list(labels)}")
            out[self.instance_map == k + 1] = list(labels).index(inst.label) + 1
        return out


# --------------------------------------------------------------------------------------------- PNG helpers


def encode_png(array: np.ndarray, *, palette: Sequence[str] | None = None) -> bytes:
    """PNG bytes of a uint8 (H, W) / (H, W, 3) / (H, W, 4) array; with ``palette``, an 8-bit "P" PNG."""
    if palette is not None:
        img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode="P")
        flat: list[int] = []
        for color in palette:
            flat.extend(hex_to_rgb(color))
        flat.extend([255, 255, 255] * (256 - len(palette)))  # unused entries white, as AWS's fix script does
        img.putpalette(flat)
    else:
        img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _open_png(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except Exception as exc:
        raise FormatError(f"not a readable PNG ({len(data)} bytes): {exc}") from None


def _b64decode(text: str) -> bytes:
    if text.startswith("data:"):
        text = text.split(",", 1)[-1]
    try:
        return base64.b64decode(text, validate=False)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"pngImageData is not valid base64: {exc}") from None


def colors_to_indices(rgba: np.ndarray, colors: Sequence[str]) -> np.ndarray:
    """Map each pixel whose RGB equals ``colors[i]`` (and is not transparent) to i + 1; others to 0."""
    if rgba.ndim != 3 or rgba.shape[2] not in (3, 4):
        raise FormatError(f"expected an RGB(A) image, got shape {rgba.shape}")
    key = (rgba[..., 0].astype(np.int32) << 16) | (rgba[..., 1].astype(np.int32) << 8) | rgba[..., 2]
    out = np.zeros(rgba.shape[:2], np.uint8)
    for i, color in enumerate(colors):
        r, g, b = hex_to_rgb(color)
        out[key == ((r << 16) | (g << 8) | b)] = i + 1
    if rgba.shape[2] == 4:
        out[rgba[..., 3] == 0] = 0
    return out


def _indices_to_rgba(index_map: np.ndarray, colors: Sequence[str]) -> np.ndarray:
    lut = np.zeros((256, 4), np.uint8)  # index 0 and unused: transparent (choice, see module docstring)
    for i, color in enumerate(colors):
        lut[i + 1, :3] = hex_to_rgb(color)
        lut[i + 1, 3] = 255
    return lut[index_map]


def _check_map(index_map: np.ndarray, count: int, what: str) -> np.ndarray:
    a = np.asarray(index_map)
    if a.ndim != 2:
        raise FormatError(f"{what} must be 2-D (H, W), got shape {a.shape}")
    if count > MAX_LABELS:
        raise FormatError(f"{count} {what} entries; Ground Truth's 8-bit PNG holds at most {MAX_LABELS}")
    if a.size and int(a.max()) > count:
        raise FormatError(f"{what} holds index {int(a.max())} but only {count} entries are defined")
    return a.astype(np.uint8, copy=False)


# ---------------------------------------------------------------------------------- worker answers (§1.3)


def semantic_answer(
    label_map: np.ndarray,
    labels: Sequence[str],
    *,
    colors: Mapping[str, str] | None = None,
    initial_value_modified: bool | None = None,
) -> dict[str, Any]:
    """What ``<crowd-semantic-segmentation>`` submits under its ``name`` (§1.3)."""
    lm = _check_map(label_map, len(labels), "label")
    palette = dict(colors) if colors else label_colors(labels)
    ordered = [palette[label] for label in labels]
    painted = set(np.unique(lm).tolist()) - {0}
    answer: dict[str, Any] = {
        "inputImageProperties": {"height": int(lm.shape[0]), "width": int(lm.shape[1])},
        # choice: only painted labels, like the real payload in §1.3
        "labelMappings": {labels[i - 1]: {"color": ordered[i - 1]} for i in sorted(painted)},
        "labeledImage": {"pngImageData": base64.b64encode(encode_png(_indices_to_rgba(lm, ordered))).decode()},
    }
    if initial_value_modified is not None:
        answer["initialValueModified"] = bool(initial_value_modified)
    return answer


def instance_answer(instance_map: np.ndarray, instances: Sequence[Instance]) -> dict[str, Any]:
    """What ``<crowd-instance-segmentation>`` submits under its ``name`` (§1.3)."""
    im = _check_map(instance_map, len(instances), "instance")
    colors = [inst.color for inst in instances]
    if len(set(colors)) != len(colors):
        raise FormatError("two instances share a colour; each instance needs its own colour")
    return {
        "inputImageProperties": {"height": int(im.shape[0]), "width": int(im.shape[1])},
        "instances": [{"color": inst.color, "label": inst.label} for inst in instances],
        "labeledImage": {"pngImageData": base64.b64encode(encode_png(_indices_to_rgba(im, colors))).decode()},
    }


def worker_response(
    answer: Mapping[str, Any],
    *,
    element_name: str = SEMANTIC_ELEMENT_NAME,
    worker_id: str = "local-notebook",
    acceptance_time: datetime | None = None,
    submission_time: datetime | None = None,
) -> dict[str, Any]:
    """A worker-response file as Ground Truth writes it to ``annotations/worker-response/`` (§1.3)."""
    submitted = submission_time or datetime.now(timezone.utc)
    accepted = acceptance_time or submitted
    return {
        "answers": [
            {
                "acceptanceTime": _iso_z(accepted),
                "answerContent": {element_name: dict(answer)},
                "submissionTime": _iso_z(submitted),
                "timeSpentInSeconds": max(0.0, round((submitted - accepted).total_seconds(), 3)),
                "workerId": worker_id,
                # choice: a private workforce's shape, {"identityData": {identityProviderType, issuer, sub}}
                # (reference §8, DG sms-data-output.md "Worker Metadata"), so readers written for real jobs work;
                # the values say honestly that a local notebook user, not a Cognito/OIDC identity, answered
                "workerMetadata": {
                    "identityData": {"identityProviderType": "Local", "issuer": "gt_widget", "sub": worker_id}
                },
            }
        ]
    }


def _iso_z(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _find_answer(payload: Any) -> tuple[dict[str, Any], str | None]:
    """Dig the element's value out of any of the shapes Ground Truth uses (§1.3)."""
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise FormatError(f"worker answer is not valid JSON: {exc}") from None
    if isinstance(payload, list):
        if not payload:
            raise FormatError("worker answer is an empty list")
        payload = payload[0]
    if not isinstance(payload, dict):
        raise FormatError(f"worker answer must be a JSON object, got {type(payload).__name__}")
    if "answers" in payload:
        answers = payload["answers"]
        if not answers:
            raise FormatError("worker-response file has no answers")
        payload = answers[0].get("answerContent", answers[0])
    if "labeledImage" in payload:
        return payload, None
    for name, value in payload.items():
        if isinstance(value, dict) and "labeledImage" in value:
            return value, name
    raise FormatError(
        "no segmentation answer found: expected an object with 'labeledImage' (directly, under the element's "
        f"name, or in a worker-response file's answers[0].answerContent); got keys {sorted(payload)}"
    )


def read_answer(payload: Any, labels: Sequence[str] | None = None) -> SemanticResult | InstanceResult:
    """Decode a worker answer (any shape of §1.3) into a ``SemanticResult`` or ``InstanceResult``.

    ``labels`` fixes the label order of the semantic map (needed because ``labelMappings`` lists only
    painted labels); by default the order of ``labelMappings`` is used.
    """
    answer, _name = _find_answer(payload)
    try:
        png = _open_png(_b64decode(answer["labeledImage"]["pngImageData"]))
    except (KeyError, TypeError):
        raise FormatError("answer has no labeledImage.pngImageData") from None
    rgba = np.asarray(png.convert("RGBA"))
    props = answer.get("inputImageProperties")
    if props and (int(props["height"]), int(props["width"])) != rgba.shape[:2]:
        raise FormatError(
            f"labeledImage is {rgba.shape[1]}x{rgba.shape[0]} but inputImageProperties say "
            f"{props['width']}x{props['height']}"
        )
    if "instances" in answer:
        instances = [Instance(label=str(i["label"]), color=str(i["color"]).lower()) for i in answer["instances"]]
        return InstanceResult(colors_to_indices(rgba, [i.color for i in instances]), instances)
    mappings: dict[str, Any] = answer.get("labelMappings") or {}
    order = list(labels) if labels is not None else list(mappings)
    unknown = [name for name in mappings if name not in order]
    if unknown:
        raise FormatError(f"labelMappings name labels {unknown} that are not in the given labels {order}")
    defaults = label_colors(order)
    colors = {name: str(mappings[name]["color"]).lower() if name in mappings else defaults[name] for name in order}
    painted = [i for i, name in enumerate(order) if name in mappings]  # unlisted labels are not painted
    idx = colors_to_indices(rgba, [colors[order[i]] for i in painted])
    lut = np.zeros(256, np.uint8)
    lut[1 : len(painted) + 1] = [i + 1 for i in painted]
    lm = lut[idx]
    modified = answer.get("initialValueModified")
    return SemanticResult(lm, order, colors, None if modified is None else bool(modified))


# ------------------------------------------------------------------------- consolidated output (§1.6, §3.2)


def internal_color_map(
    names: Sequence[str], colors: Sequence[str] | None = None, *, confidence: float = 0.0
) -> dict[str, dict[str, Any]]:
    """``internal-color-map``: "0" = BACKGROUND #ffffff, then one entry per label in label order (§3.2)."""
    cols = list(colors) if colors is not None else list(label_colors(names).values())
    out = {"0": {"class-name": BACKGROUND_LABEL, "hex-color": BACKGROUND_HEX, "confidence": confidence}}
    for i, (name, color) in enumerate(zip(names, cols, strict=False)):
        out[str(i + 1)] = {"class-name": name, "hex-color": color, "confidence": confidence}
    return out


def consolidated_png(index_map: np.ndarray, colors: Sequence[str]) -> bytes:
    """8-bit palette PNG: pixel value = ``internal-color-map`` key, palette = white + ``colors`` (§1.6)."""
    im = _check_map(index_map, len(colors), "colour")
    return encode_png(im, palette=[BACKGROUND_HEX, *colors])


def read_consolidated_png(data: bytes, color_map: Mapping[str, Mapping[str, Any]] | None = None) -> np.ndarray:
    """uint8 (H, W) index map of a consolidated PNG.

    A palette PNG's pixel values are the keys themselves. For an RGB(A) PNG, ``color_map`` (the
    ``internal-color-map``) is needed to match colours to keys.
    """
    img = _open_png(data)
    if img.mode in ("P", "L"):
        return np.asarray(img, dtype=np.uint8).copy()
    if color_map is None:
        raise FormatError(f"consolidated PNG is {img.mode}, not a palette PNG: pass its internal-color-map")
    keys = sorted(int(k) for k in color_map if int(k) != 0)
    rgba = np.asarray(img.convert("RGBA"))
    idx = colors_to_indices(rgba, [str(color_map[str(k)]["hex-color"]) for k in keys])
    lut = np.array([0, *keys] + [0] * (255 - len(keys)), np.uint8)
    return lut[idx]


def creation_date(moment: datetime | None = None) -> str:
    """ISO 8601 with microseconds and no zone, as in real outputs (§3.2)."""
    m = moment or datetime.now(timezone.utc)
    if m.tzinfo is not None:
        m = m.astimezone(timezone.utc).replace(tzinfo=None)
    return m.isoformat(timespec="microseconds")


def consolidated_png_key(job_name: str, dataset_object_id: int | str, moment: datetime | None = None) -> str:
    """``<job>/annotations/consolidated-annotation/output/<id>_<ts>.png`` (§1.6), relative to S3OutputPath."""
    return f"{job_name}/annotations/consolidated-annotation/output/{dataset_object_id}_{creation_date(moment)}.png"


def output_manifest_line(
    source_ref: str,
    label_attribute: str,
    png_ref: str,
    labels: Sequence[str],
    *,
    job_name: str,
    mode: Literal["semantic", "instance"] = "semantic",
    instances: Sequence[Instance] | None = None,
    colors: Sequence[str] | None = None,
    confidence: float = 0.0,
    human_annotated: bool = True,
    moment: datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One line of ``output.manifest`` (§3.2). ``extra`` keys of the input line pass through unchanged."""
    if not label_attribute.endswith("-ref"):
        raise FormatError(
            f"label attribute {label_attribute!r} must end in '-ref' for image segmentation (§3.2); "
            f"use {label_attribute + '-ref'!r}"
        )
    meta: dict[str, Any]
    if mode == "instance":
        insts = list(instances or [])
        meta = {
            "internal-color-map": internal_color_map(
                [i.label for i in insts], [i.color for i in insts], confidence=confidence
            ),
            "instances": [{"color": i.color, "label": i.label} for i in insts],
            "type": "groundtruth/custom",  # choice: no built-in instance format exists (§3.2)
        }
    else:
        meta = {
            "internal-color-map": internal_color_map(labels, colors, confidence=confidence),
            "type": "groundtruth/semantic-segmentation",
        }
    meta.update(
        {
            "human-annotated": "yes" if human_annotated else "no",
            "creation-date": creation_date(moment),
            "job-name": job_name if job_name.startswith("labeling-job/") else f"labeling-job/{job_name}",
        }
    )
    line: dict[str, Any] = dict(extra or {})
    line["source-ref"] = source_ref
    line[label_attribute] = png_ref
    line[f"{label_attribute}-metadata"] = meta
    return line


def find_label_attribute(line: Mapping[str, Any]) -> str:
    """The ``-ref`` label attribute of an output manifest line (the one with a ``-ref-metadata`` twin)."""
    found = [k for k in line if k.endswith("-ref") and k != "source-ref" and f"{k}-metadata" in line]
    if len(found) != 1:
        raise FormatError(
            f"cannot tell the label attribute of this output line: found {found or 'none'} among keys "
            f"{sorted(line)}; pass label_attribute explicitly"
        )
    return found[0]


def color_map_names(color_map: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Class names of an ``internal-color-map`` in key order, BACKGROUND excluded."""
    return [str(color_map[k]["class-name"]) for k in sorted(color_map, key=int) if int(k) != 0]
