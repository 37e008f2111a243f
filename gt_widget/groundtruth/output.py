"""Ground Truth job output in one place: the folder layout's paths, writing its files, reading them back.

Every module that touches a job's output goes through here: the labeling session's writer, batch
pre-labeling (``gt-widget segment``), the exports and the job reader (``aws.fetch_results``). The byte formats
of each file (worker answer, palette PNG, manifest line) live in ``formats.py``; this module knows where the
files go and how a line points at them.

Layout under ``<S3OutputPath or output_dir>/<job-name>/`` (../shared/reference/ground-truth.md §3.3)::

    annotations/worker-response/iteration-1/<datasetObjectId>/YYYY-MM-DD_HH:MM:SS.json
    annotations/consolidated-annotation/output/<datasetObjectId>_<creation-date>.png   (semantic only)
    manifests/output/output.manifest

Facts and choices (reference section in brackets):
- worker-response file names are ``YYYY-MM-DD_HH:MM:SS.json`` (UTC) [§8: the developer guide's custom-job
  example and real keys such as ``.../iteration-1/9/2020-04-05_14:20:40.json``];
- ``datasetObjectId`` is the 0-based position of the input line [§3.2, the post-annotation payload];
- semantic lines: ``"<attr>-ref"`` = the consolidated palette PNG plus ``-metadata`` with
  ``internal-color-map`` [§3.2];
- instance lines: Ground Truth has no built-in instance task, so an instance job is a custom job with the
  PassThrough (or no) post-annotation Lambda; its line holds ``"<attr>": {}`` and ``"<attr>-metadata"`` with
  ``job_name``, ``type: "groundTruth/custom"``, ``human-annotated``, ``creation_date`` and
  ``worker-response-ref``, spelled exactly as the developer guide's current custom-job "Output data" example
  (``sms-custom-templates-step2``) [§8]; the masks live only in the worker-response file; the attribute must
  not end in ``-ref`` [§8];
- every output line is its input line plus the label attribute pair; ``source-ref`` and the other keys are
  carried through unchanged [§8, "Each line in the output data file is identical to the manifest file with
  the addition of an attribute"];
- one output line per input line, in input order [§8]. Choice (sessions in progress): an image not labeled
  yet appears as its input line with no label attribute; readers report it as unlabeled (``result`` None)
  and exports skip it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from gt_widget.errors import FormatError
from gt_widget.fileio import atomic_write_bytes
from gt_widget.groundtruth.formats import (
    Instance,
    InstanceResult,
    SemanticResult,
    color_map_names,
    creation_date,
    read_answer,
    read_consolidated_png,
)
from gt_widget.groundtruth.manifest import loads_manifest

ITERATION = 1
WORKER_RESPONSE_TIME_FORMAT = "%Y-%m-%d_%H:%M:%S"
"""strftime pattern of a worker-response file's name (without ``.json``), UTC (reference §8)."""
CUSTOM_TYPE = "groundTruth/custom"
"""``type`` of a custom (e.g. instance segmentation) job's metadata, spelled as the developer guide's current
custom-job output example (reference §8)."""
SEMANTIC_TYPE = "groundtruth/semantic-segmentation"
_RESPONSE_NAME = re.compile(r"^\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d$")


def worker_response_name(moment: datetime) -> str:
    """``YYYY-MM-DD_HH:MM:SS.json`` of ``moment`` in UTC (reference §8)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(WORKER_RESPONSE_TIME_FORMAT) + ".json"


def parse_worker_response_name(name: str) -> datetime | None:
    """The UTC moment a worker-response file name stands for, or None when it is not one."""
    stem = name.removesuffix(".json")
    if not _RESPONSE_NAME.match(stem):
        return None
    return datetime.strptime(stem, WORKER_RESPONSE_TIME_FORMAT).replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class OutputLayout:
    """Paths of one job's output folder ``job_dir`` (``<output_dir>/<job-name>``).

    ``output_uri`` (e.g. ``s3://bucket/prefix``): where the folder will live once uploaded; ``ref`` then spells
    ``-ref`` values as ``<output_uri>/<job-name>/...`` instead of local paths.
    """

    job_dir: Path
    output_uri: str | None = None

    @property
    def job_name(self) -> str:
        """The job's name (the folder's name)."""
        return self.job_dir.name

    @property
    def output_manifest_path(self) -> Path:
        """``manifests/output/output.manifest``."""
        return self.job_dir / "manifests" / "output" / "output.manifest"

    @property
    def consolidated_dir(self) -> Path:
        """``annotations/consolidated-annotation/output``."""
        return self.job_dir / "annotations" / "consolidated-annotation" / "output"

    def worker_response_dir(self, object_id: int, iteration: int = ITERATION) -> Path:
        """``annotations/worker-response/iteration-N/<datasetObjectId>``."""
        return self.job_dir / "annotations" / "worker-response" / f"iteration-{iteration}" / str(object_id)

    def worker_response_path(self, object_id: int, moment: datetime, iteration: int = ITERATION) -> Path:
        """The worker-response file of ``object_id`` submitted at ``moment``."""
        return self.worker_response_dir(object_id, iteration) / worker_response_name(moment)

    def consolidated_png_path(self, object_id: int, moment: datetime) -> Path:
        """``<datasetObjectId>_<creation-date>.png`` (reference §1.6)."""
        return self.consolidated_dir / f"{object_id}_{creation_date(moment)}.png"

    def worker_responses(self, object_id: int) -> list[Path]:
        """Worker-response files of ``object_id`` in every iteration, oldest first (iteration, then time)."""
        root = self.job_dir / "annotations" / "worker-response"
        found: list[tuple[int, str, Path]] = []
        if root.is_dir():
            for it_dir in root.glob("iteration-*"):
                number = it_dir.name.rsplit("-", 1)[-1]
                obj_dir = it_dir / str(object_id)
                if number.isdigit() and obj_dir.is_dir():
                    found += [(int(number), p.name, p) for p in obj_dir.glob("*.json")]
        return [p for _n, _name, p in sorted(found)]

    def consolidated_pngs(self, object_id: int) -> list[Path]:
        """Consolidated PNGs of ``object_id`` (all versions present)."""
        return sorted(self.consolidated_dir.glob(f"{object_id}_*.png"))

    def ref(self, path: Path) -> str:
        """How a line names ``path``: the local absolute path, or ``<output_uri>/<job-name>/<relative>``."""
        if self.output_uri is None:
            return str(path)
        return f"{self.output_uri.rstrip('/')}/{self.job_name}/{path.relative_to(self.job_dir).as_posix()}"

    def local(self, ref: str) -> Path:
        """The local file a ``-ref`` value names: itself when it exists, else the same path inside this job
        folder (for S3 URIs or moved folders, matched on ``/<job-name>/``)."""
        if not ref.startswith("s3://") and Path(ref).is_file():
            return Path(ref)
        marker = f"/{self.job_name}/"
        if marker in ref:
            return self.job_dir / ref.split(marker, 1)[1]
        return self.job_dir / "annotations" / "consolidated-annotation" / "output" / ref.rsplit("/", 1)[-1]


# ------------------------------------------------------------------------------------------ manifest lines


def instance_line(
    input_line: Mapping[str, Any],
    label_attribute: str,
    *,
    job_name: str,
    worker_response_ref: str,
    moment: datetime | None = None,
    human_annotated: bool = True,
) -> dict[str, Any]:
    """The output line of a custom (instance segmentation) job: ``"<attr>": {}`` plus metadata pointing at the
    worker response, spelled as the developer guide's custom-job example (reference §8)."""
    check_custom_attribute(label_attribute)
    line = dict(input_line)
    line[label_attribute] = {}
    line[f"{label_attribute}-metadata"] = {
        # reference §8 (DG sms-custom-templates-step2 "Output data"): underscores in job_name and creation_date,
        # hyphens in human-annotated and worker-response-ref, "groundTruth" with a capital T
        "job_name": job_name if job_name.startswith("labeling-job/") else f"labeling-job/{job_name}",
        "type": CUSTOM_TYPE,
        "human-annotated": "yes" if human_annotated else "no",
        "creation_date": creation_date(moment),
        "worker-response-ref": worker_response_ref,
    }
    return line


def check_custom_attribute(label_attribute: str) -> None:
    """Custom-job attribute names must not end in ``-ref`` nor ``-metadata`` (reference §3.2, §8)."""
    if label_attribute.endswith("-ref") or label_attribute.endswith("-metadata"):
        stem = label_attribute.removesuffix("-ref").removesuffix("-metadata") or "label"
        raise FormatError(
            f"label attribute {label_attribute!r} cannot end in '-ref' or '-metadata' for an instance "
            f"segmentation (custom) job (Ground Truth's rule, reference §8); use e.g. {stem!r}"
        )


def label_attribute_of(line: Mapping[str, Any]) -> str | None:
    """The label attribute of an output line (the key with a ``-metadata`` twin), or None (not labeled)."""
    found = [k for k in line if k != "source-ref" and not k.endswith("-metadata") and f"{k}-metadata" in line]
    if len(found) > 1:
        raise FormatError(
            f"this output line has several label attributes {sorted(found)} (a chained job?); pass "
            "label_attribute= to say which one to read"
        )
    return found[0] if found else None


# ----------------------------------------------------------------------------------------- writing files


def write_output_manifest(path: Path, lines: Iterable[Mapping[str, Any]]) -> Path:
    """JSON Lines, one compact object per line, written atomically."""
    text = "".join(json.dumps(dict(line), separators=(",", ":"), ensure_ascii=False) + "\n" for line in lines)
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_output_manifest(path: Path) -> list[dict[str, Any]]:
    """The lines of a local output manifest (the one JSON Lines reader, ``manifest.loads_manifest``)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FormatError(
            f"no output manifest at {str(path)!r}; pass the job folder (<output_dir>/<job_name>) of a labeling "
            "session or a downloaded Ground Truth job"
        ) from None
    return loads_manifest(data, source=str(path), check=False)


# ------------------------------------------------------------------------------------------------ reading


@dataclass
class OutputItem:
    """One output line decoded: ``result`` is None for an image not labeled yet; ``instances`` mode keeps the
    per-instance masks (``InstanceResult.masks()``)."""

    index: int
    source_ref: str
    line: dict[str, Any]
    result: SemanticResult | InstanceResult | None
    png_ref: str | None = None
    worker_response_ref: str | None = None


def decode_line(
    line: Mapping[str, Any],
    index: int,
    get_bytes: Callable[[str], bytes],
    *,
    newest_response: Callable[[int], str | None],
    label_attribute: str | None = None,
    labels: Sequence[str] | None = None,
) -> OutputItem:
    """Decode one output line of ours or of a real job, wherever its files live.

    ``get_bytes(ref)`` reads a ``-ref`` / ``worker-response-ref`` value; ``newest_response(index)`` names the
    newest worker-response file of an object (for custom lines without ``worker-response-ref``).
    Semantic: the consolidated PNG and ``internal-color-map``. Instance (custom job): the worker response named
    by ``worker-response-ref`` (or the newest one). Our pre-2026 instance lines (a ``-ref`` PNG with an
    ``instances`` list in the metadata) are still read.
    """
    attr = label_attribute or label_attribute_of(line)
    source_ref = str(line.get("source-ref", ""))
    if attr is None or attr not in line:
        return OutputItem(index, source_ref, dict(line), None)
    value = line[attr]
    meta = line.get(f"{attr}-metadata") or {}
    if isinstance(value, str):
        png = get_bytes(value)
        if "instances" in meta:  # our earlier instance format
            insts = [Instance(str(i["label"]), str(i["color"]).lower()) for i in meta["instances"]]
            result: SemanticResult | InstanceResult = InstanceResult(
                read_consolidated_png(png, meta.get("internal-color-map")), insts
            )
        else:
            result = semantic_from_png(png, meta, attr, labels)
        return OutputItem(index, source_ref, dict(line), result, png_ref=value)
    if isinstance(value, Mapping) and ("labeledImage" in value or any(isinstance(v, Mapping) for v in value.values())):
        try:  # a post-annotation Lambda that put the answer itself into the line
            return OutputItem(index, source_ref, dict(line), read_answer(dict(value), labels))
        except FormatError:
            pass
    ref = meta.get("worker-response-ref") if isinstance(meta, Mapping) else None
    if not isinstance(ref, str):
        ref = newest_response(index)
    if ref is None:
        raise FormatError(
            f"output line {index + 1} ({source_ref}) has no answer, no worker-response-ref and no worker-response "
            "file; was the job's output copied completely?"
        )
    return OutputItem(index, source_ref, dict(line), read_answer(get_bytes(ref), labels), worker_response_ref=ref)


def semantic_from_png(
    png: bytes, meta: Mapping[str, Any], attr: str, labels: Sequence[str] | None = None
) -> SemanticResult:
    """A consolidated palette PNG and its line's metadata -> label map over ``labels`` (default: the
    ``internal-color-map`` order)."""
    color_map = meta.get("internal-color-map")
    if not isinstance(color_map, Mapping):
        raise FormatError(
            f"output line has no {attr}-metadata.internal-color-map; is {attr!r} a segmentation attribute?"
        )
    index_map = read_consolidated_png(png, color_map)
    names = color_map_names(color_map)
    order = list(labels) if labels is not None else names
    missing = [n for n in names if n not in order]
    if missing:
        raise FormatError(f"internal-color-map names {missing}, which are not among the labels {order}")
    lut = np.zeros(256, np.uint8)
    for key in sorted(int(k) for k in color_map if int(k) != 0):
        lut[key] = order.index(str(color_map[str(key)]["class-name"])) + 1
    colors = {str(color_map[k]["class-name"]): str(color_map[k]["hex-color"]).lower() for k in color_map if k != "0"}
    return SemanticResult(lut[index_map], order, colors)


def read_job_output(
    job_dir: str | os.PathLike[str], *, label_attribute: str | None = None, labels: Sequence[str] | None = None
) -> list[OutputItem]:
    """Every line of a local job folder's output manifest, decoded (files found via ``OutputLayout.local``)."""
    layout = OutputLayout(Path(job_dir))
    lines = read_output_manifest(layout.output_manifest_path)

    def get_bytes(ref: str) -> bytes:
        path = layout.local(ref)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise FormatError(f"{ref!r} not found (looked for {str(path)!r})") from None

    def newest(index: int) -> str | None:
        found = layout.worker_responses(index)
        return str(found[-1]) if found else None

    return [
        decode_line(line, i, get_bytes, newest_response=newest, label_attribute=label_attribute, labels=labels)
        for i, line in enumerate(lines)
    ]


def instance_adjustment_lines(
    job_dir: str | os.PathLike[str], label_attribute: str
) -> tuple[list[dict[str, Any]], str]:
    """Lines of a labeled instance job ready to be adjusted by workers, and their attribute (``<attr>-ref``).

    A custom job's line keeps its masks in the worker response; ``crowd-instance-segmentation``'s
    ``initial-value`` needs an overlay image and the instance list (reference §1.4). So each labeled line gets
    ``<attr>-ref`` = an overlay PNG in the instances' colours (written to ``<job>/gt-widget-prior/``, ours)
    and ``<attr>-ref-metadata.instances``; lines not labeled yet are left out.
    """
    from gt_widget.groundtruth.formats import consolidated_png

    root = Path(job_dir)
    prior = f"{label_attribute}-ref"
    out: list[dict[str, Any]] = []
    for item in read_job_output(root, label_attribute=label_attribute):
        if not isinstance(item.result, InstanceResult):
            continue
        result = item.result
        png = atomic_write_bytes(
            root / "gt-widget-prior" / f"{item.index}.png",
            consolidated_png(result.instance_map, [i.color for i in result.instances]),
        )
        line = {k: v for k, v in item.line.items() if k not in (label_attribute, f"{label_attribute}-metadata")}
        line[prior] = str(png)
        line[f"{prior}-metadata"] = {
            "instances": [{"color": i.color, "label": i.label} for i in result.instances],
            "type": CUSTOM_TYPE,
        }
        out.append(line)
    return out, prior
