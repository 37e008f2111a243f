"""Submit a ``JobBundle`` to Ground Truth and bring its results back into numpy (and the widget).

Side: kernel. Clients come from boto3's usual credential chain and region; S3 honours
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (a local S3-compatible server). Every function takes
optional ``s3`` / ``sagemaker`` clients so callers (and tests, with botocore's Stubber) can supply their own.
Nothing here logs or prints credentials; errors name the bucket/key and the AWS error code only.

Facts (../shared/reference/ground-truth.md §1.3, §1.6, §3.2, §3.3): Ground Truth writes under
``<S3OutputPath>/<job>/``: ``manifests/output/output.manifest`` (one line per object, the ``-ref`` PNG and
its ``-metadata``), ``annotations/consolidated-annotation/output/<id>_<ts>.png`` and
``annotations/worker-response/iteration-N/<id>/<ts>.json``. DescribeLabelingJob gives
``LabelingJobOutput.OutputDatasetS3Uri`` and ``LabelingJobStatus``.

Lines are decoded by ``groundtruth.output.decode_line`` (the one reader of job output, shared with local
folders): semantic results from the consolidated ``-ref`` PNG; instance results (a custom job, §8) from the
worker response its metadata names, else the newest worker-response file of that object (``datasetObjectId``
= the line's 0-based position, as Ground Truth numbers manifest lines).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gt_widget.errors import FormatError, GtWidgetError, ValidationError
from gt_widget.fileio import atomic_write_bytes, atomic_write_text
from gt_widget.groundtruth.bundle import JobBundle
from gt_widget.groundtruth.formats import InstanceResult, SemanticResult, read_answer
from gt_widget.groundtruth.manifest import loads_manifest
from gt_widget.groundtruth.output import decode_line
from gt_widget.groundtruth.templates import parse_s3_location, s3_client

TERMINAL = ("Completed", "Failed", "Stopped")


class AwsError(GtWidgetError, RuntimeError):
    """An AWS call failed; the message names the resource and AWS's error code, never a credential."""


def _aws_message(action: str, exc: BaseException) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    text = getattr(exc, "response", {}).get("Error", {}).get("Message") if hasattr(exc, "response") else None
    if code:
        return f"{action} failed: {code}: {text or ''}".rstrip(": ")
    return f"{action} failed: {type(exc).__name__}: check your AWS credentials, region and network"


def sagemaker_client(region: str | None = None) -> Any:
    """A SageMaker client from boto3's usual chain (``AWS_ENDPOINT_URL_SAGEMAKER`` is honoured by boto3)."""
    import boto3

    session = boto3.session.Session()
    return session.client("sagemaker", region_name=region or session.region_name or "us-east-1")


def _call(action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise AwsError(_aws_message(action, exc)) from None


# ------------------------------------------------------------------------------------------------ submit


def upload_bundle(bundle: JobBundle, s3: Any = None) -> list[str]:
    """Put the images, instruction images, manifest, template and label config on S3; returns their URIs."""
    client = s3 or s3_client(bundle.settings.region)
    done: list[str] = []

    def put(uri: str, body: bytes, content_type: str) -> None:
        bucket, key = parse_s3_location(uri)
        _call(f"uploading {uri}", client.put_object, Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        done.append(uri)

    for up in bundle.uploads:
        put(up.uri, up.read(), _content_type(up.uri))
    put(bundle.settings.label_config_uri, bundle.label_config_text.encode("utf-8"), "application/json")
    put(bundle.settings.template_uri, bundle.template.encode("utf-8"), "text/html; charset=utf-8")
    put(bundle.settings.manifest_uri, bundle.manifest_text.encode("utf-8"), "application/jsonlines")
    return done


def _content_type(uri: str) -> str:
    ext = uri.rsplit(".", 1)[-1].lower()
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "webp": "image/webp",
        "bmp": "image/bmp",
        "tif": "image/tiff",
        "tiff": "image/tiff",
    }.get(ext, "application/octet-stream")


def s3_image_problems(bundle: JobBundle, s3: Any = None, *, threads: int = 16) -> list[str]:
    """Problems of the images already on S3 (not uploaded by us, so ``JobBundle.problems`` cannot size them):
    missing objects and objects over Ground Truth's 40 MB per-image quota (``request.MAX_IMAGE_BYTES``).
    One HeadObject per image, ``threads`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import BotoCoreError, ClientError

    from gt_widget.groundtruth.request import MAX_IMAGE_BYTES

    client = s3 or s3_client(bundle.settings.region)
    ours = {u.uri for u in bundle.uploads}
    refs = [
        (n, ref)
        for n, line in enumerate(bundle.manifest, 1)
        if isinstance(ref := line.get("source-ref"), str) and ref.startswith("s3://") and ref not in ours
    ]

    def check(item: tuple[int, str]) -> str | None:
        n, ref = item
        bucket, key = parse_s3_location(ref)
        try:
            size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                return f"manifest line {n} source-ref: {ref!r} does not exist; upload it or fix the manifest"
            return None  # no permission to look: Ground Truth's role may still read it
        except BotoCoreError:
            return None
        if size > MAX_IMAGE_BYTES:
            return (
                f"manifest line {n} source-ref: {ref!r} is {size:,} bytes; Ground Truth accepts images of at "
                f"most 40 MB ({MAX_IMAGE_BYTES:,} bytes): downscale or recompress it"
            )
        return None

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return [p for p in pool.map(check, refs) if p]


def submit(bundle: JobBundle, *, s3: Any = None, sagemaker: Any = None) -> str:
    """Validate (before any AWS call), check the images already on S3 (``s3_image_problems``), upload, then
    ``create_labeling_job``; returns the job ARN."""
    bundle.validate()
    problems = s3_image_problems(bundle, s3=s3)
    if problems:
        raise ValidationError(problems)
    upload_bundle(bundle, s3=s3)
    client = sagemaker or sagemaker_client(bundle.settings.region)
    response = _call(
        f"creating labeling job {bundle.settings.job_name!r}", client.create_labeling_job, **bundle.request
    )
    return str(response["LabelingJobArn"])


# ------------------------------------------------------------------------------------------------ status


@dataclass
class JobStatus:
    """The parts of DescribeLabelingJob a user watches."""

    name: str
    status: str
    counters: dict[str, int]
    output_manifest: str | None
    failure_reason: str | None
    label_attribute: str | None
    output_path: str | None

    @property
    def done(self) -> bool:
        """Whether the job reached Completed, Failed or Stopped."""
        return self.status in TERMINAL

    def summary(self) -> str:
        """One line for people: name, status, counters (and why it failed)."""
        counts = ", ".join(f"{k} {v}" for k, v in self.counters.items())
        tail = f" - {self.failure_reason}" if self.failure_reason else ""
        return f"{self.name}: {self.status} ({counts or 'no counters yet'}){tail}"


def job_status(job_name: str, *, sagemaker: Any = None) -> JobStatus:
    """DescribeLabelingJob, summarised."""
    client = sagemaker or sagemaker_client()
    d = _call(f"describing labeling job {job_name!r}", client.describe_labeling_job, LabelingJobName=job_name)
    return JobStatus(
        name=d.get("LabelingJobName", job_name),
        status=d.get("LabelingJobStatus", "Unknown"),
        counters={k: int(v) for k, v in (d.get("LabelCounters") or {}).items()},
        output_manifest=(d.get("LabelingJobOutput") or {}).get("OutputDatasetS3Uri"),
        failure_reason=d.get("FailureReason"),
        label_attribute=d.get("LabelAttributeName"),
        output_path=(d.get("OutputConfig") or {}).get("S3OutputPath"),
    )


def wait(
    job_name: str,
    *,
    sagemaker: Any = None,
    poll_seconds: float = 30.0,
    timeout: float | None = None,
    on_status: Callable[[JobStatus], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobStatus:
    """Poll DescribeLabelingJob until the job is Completed, Failed or Stopped (or ``timeout`` seconds pass)."""
    start = time.monotonic()
    while True:
        status = job_status(job_name, sagemaker=sagemaker)
        if on_status is not None:
            on_status(status)
        if status.done:
            return status
        if timeout is not None and time.monotonic() - start >= timeout:
            raise AwsError(
                f"labeling job {job_name!r} is still {status.status} after {timeout:.0f} s; check again later"
            )
        sleep(poll_seconds)


# ------------------------------------------------------------------------------------------------- fetch


@dataclass
class FetchedItem:
    """One labeled object: its image, its result as numpy, and where the result lives locally."""

    index: int
    source_ref: str
    result: SemanticResult | InstanceResult
    png_path: Path | None
    line: dict[str, Any]


def _get_bytes(client: Any, uri: str) -> bytes:
    bucket, key = parse_s3_location(uri)
    response = _call(f"downloading {uri}", client.get_object, Bucket=bucket, Key=key)
    return bytes(response["Body"].read())


def _worker_response_keys(client: Any, output_root: str) -> dict[str, list[str]]:
    """``{datasetObjectId: [keys of its worker-response files]}``, listed once per fetch."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_s3_location(f"{output_root.rstrip('/')}/annotations/worker-response/")
    found: dict[str, list[str]] = {}
    paginator = client.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                parts = obj["Key"][len(prefix) :].split("/")  # iteration-N / <id> / <timestamp>.json
                if len(parts) >= 3 and parts[-1].endswith(".json"):
                    found.setdefault(parts[1], []).append(f"s3://{bucket}/{obj['Key']}")
    except (BotoCoreError, ClientError) as exc:
        raise AwsError(_aws_message(f"listing s3://{bucket}/{prefix}", exc)) from None
    return found


def _newest_worker_response(responses: dict[str, list[str]], index: int) -> str | None:
    """The newest worker-response URI of object ``index``: the highest iteration, then the latest name."""
    keys = responses.get(str(index))
    if not keys:
        return None

    def order(uri: str) -> tuple[int, str]:
        iteration = uri.rsplit("/", 3)[-3]
        number = iteration.rsplit("-", 1)[-1]
        return (int(number) if number.isdigit() else 0, uri.rsplit("/", 1)[-1])

    return max(keys, key=order)


def fetch_results(
    job: str | JobStatus,
    dest: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    s3: Any = None,
    sagemaker: Any = None,
) -> list[FetchedItem]:
    """Download a finished job's output manifest and PNGs into ``dest`` and decode every result.

    ``job``: a job name (DescribeLabelingJob is called) or a ``JobStatus``. ``labels`` fixes the label
    order of semantic maps (default: the order of each line's ``internal-color-map``).
    Files: ``dest/output.manifest`` and ``dest/consolidated/<name>.png``, written atomically.
    """
    status = job if isinstance(job, JobStatus) else job_status(job, sagemaker=sagemaker)
    if not status.output_manifest:
        raise AwsError(f"labeling job {status.name!r} is {status.status} and has no output manifest yet; wait for it")
    client = s3 or s3_client()
    out = Path(dest)
    text = _get_bytes(client, status.output_manifest)
    atomic_write_bytes(out / "output.manifest", text)
    lines = loads_manifest(text, source=status.output_manifest, check=False)
    output_root = status.output_manifest.rsplit("/manifests/", 1)[0]
    items: list[FetchedItem] = []
    responses: dict[str, list[str]] | None = None

    def newest(index: int) -> str | None:
        nonlocal responses
        if responses is None:
            responses = _worker_response_keys(client, output_root)
        return _newest_worker_response(responses, index)

    for index, line in enumerate(lines):
        decoded = decode_line(
            line,
            index,
            lambda uri: _get_bytes(client, uri),
            newest_response=newest,
            label_attribute=status.label_attribute,
            labels=labels,
        )
        if decoded.result is None:  # no label attribute: a worker response may still hold the answer
            ref = newest(index)
            if ref is None:
                raise FormatError(f"object {index} has no result in the output manifest and no worker-response file")
            decoded.result = read_answer(_get_bytes(client, ref), labels)
        png_path: Path | None = None
        if decoded.png_ref is not None:  # keep a local copy of each consolidated PNG
            png = _get_bytes(client, decoded.png_ref)
            png_path = atomic_write_bytes(out / "consolidated" / decoded.png_ref.rsplit("/", 1)[-1], png)
        items.append(FetchedItem(index, decoded.source_ref, decoded.result, png_path, decoded.line))
    atomic_write_text(
        out / "fetched.json",
        json.dumps(
            [
                {"index": i.index, "source-ref": i.source_ref, "png": str(i.png_path) if i.png_path else None}
                for i in items
            ],
            indent=2,
        )
        + "\n",
    )
    return items


def open_in_widget(item: FetchedItem, image: Any, labels: Sequence[str] | None = None, **kwargs: Any) -> Any:
    """A ``SegmentationWidget`` showing a fetched result on its image, for review or adjustment."""
    import importlib

    # imported by name: the widget package imports ipywidgets/ipycanvas, which headless job tooling never needs
    SegmentationWidget = importlib.import_module("gt_widget.widget").SegmentationWidget  # noqa: N806
    result = item.result
    if isinstance(result, InstanceResult):
        names = list(labels) if labels is not None else list(dict.fromkeys(i.label for i in result.instances))
        return SegmentationWidget(image, names, mode="instance", initial_value=result, **kwargs)
    return SegmentationWidget(image, list(labels or result.labels), mode="semantic", initial_value=result, **kwargs)
