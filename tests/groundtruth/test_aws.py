"""Submit, poll and fetch against a REAL S3-compatible server (moto's, on 127.0.0.1); SageMaker via Stubber."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.stub import Stubber
from PIL import Image

from gt_widget.errors import ValidationError
from gt_widget.groundtruth.aws import AwsError, fetch_results, job_status, submit, upload_bundle, wait
from gt_widget.groundtruth.formats import (
    INSTANCE_ELEMENT_NAME,
    Instance,
    InstanceResult,
    SemanticResult,
    consolidated_png,
    consolidated_png_key,
    instance_answer,
    output_manifest_line,
    semantic_answer,
    worker_response,
)
from gt_widget.groundtruth.notebook import job_from_notebook
from gt_widget.palette import label_colors
from tests.groundtruth.nbfixtures import labeling_notebook, tiny_png
from tests.support.servers import FAKE_AWS_ENV

ROLE = "arn:aws:iam::123456789012:role/GroundTruth"
TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets"
SECRETS = (FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"], FAKE_AWS_ENV["AWS_SESSION_TOKEN"])


def sagemaker() -> Any:
    return boto3.client("sagemaker", region_name="us-east-1")


def describe(
    name: str, status: str, output: str | None = None, attr: str = "label-ref", **counters: int
) -> dict[str, Any]:
    now = datetime(2024, 5, 1, tzinfo=timezone.utc)
    response: dict[str, Any] = {
        "LabelingJobStatus": status,
        "LabelCounters": {
            "TotalLabeled": 0,
            "HumanLabeled": 0,
            "MachineLabeled": 0,
            "FailedNonRetryableError": 0,
            "Unlabeled": 2,
            **counters,
        },
        "CreationTime": now,
        "LastModifiedTime": now,
        "JobReferenceCode": "ref",
        "LabelingJobName": name,
        "LabelingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:labeling-job/{name}",
        "LabelAttributeName": attr,
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://b/in.manifest"}}},
        "OutputConfig": {"S3OutputPath": "s3://b/out/"},
        "RoleArn": ROLE,
        "HumanTaskConfig": {
            "WorkteamArn": TEAM,
            "UiConfig": {"UiTemplateS3Uri": "s3://b/t.html"},
            "TaskTitle": "t",
            "TaskDescription": "d",
            "NumberOfHumanWorkersPerDataObject": 1,
            "TaskTimeLimitInSeconds": 600,
        },
    }
    if output:
        response["LabelingJobOutput"] = {"OutputDatasetS3Uri": output}
    return response


def read_object(s3: Any, uri: str) -> bytes:
    bucket, key = uri[5:].split("/", 1)
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def scan_for_secrets(*texts: str, folders: tuple[Path, ...] = ()) -> None:
    blobs = list(texts)
    for folder in folders:
        blobs += [p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()]
    for blob in blobs:
        for secret in SECRETS:
            assert secret not in blob


# ------------------------------------------------------------------------------------------------ submit


def test_submit_uploads_everything_then_creates_the_exact_request(
    s3: Any, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = job_from_notebook(
        labeling_notebook(tmp_path / "nb"), s3_prefix=f"s3://{bucket}/gt", role_arn=ROLE, workteam_arn=TEAM
    )
    client = sagemaker()
    arn = "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/pets-2024"
    with Stubber(client) as stub:
        stub.add_response("create_labeling_job", {"LabelingJobArn": arn}, expected_params=bundle.request)
        assert submit(bundle, sagemaker=client) == arn
        stub.assert_no_pending_responses()
    s = bundle.settings
    assert read_object(s3, s.manifest_uri).decode() == bundle.manifest_text
    assert read_object(s3, s.template_uri).decode() == bundle.template
    assert json.loads(read_object(s3, s.label_config_uri)) == bundle.label_config
    for line, value in zip(bundle.manifest, (10, 20), strict=True):
        assert read_object(s3, line["source-ref"]) == tiny_png(value)  # the images the manifest points at exist
    head = s3.head_object(Bucket=bucket, Key=s.template_uri.split("/", 3)[3])
    assert head["ContentType"].startswith("text/html")
    out = capsys.readouterr()
    scan_for_secrets(out.out, out.err, json.dumps(bundle.request), bundle.template, bundle.manifest_text)


def test_invalid_bundle_fails_before_any_aws_call(s3: Any, bucket: str, tmp_path: Path) -> None:
    bundle = job_from_notebook(
        labeling_notebook(tmp_path / "nb"),
        s3_prefix=f"s3://{bucket}/gt",
        role_arn=ROLE,
        workteam_arn=TEAM,
        label_attribute="pets",
    )
    client = sagemaker()
    with Stubber(client) as stub, pytest.raises(ValidationError) as info:
        submit(bundle, sagemaker=client)
    stub.assert_no_pending_responses()
    assert "LabelAttributeName: value 'pets' must end in '-ref'" in str(info.value)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # nothing was uploaded


def test_aws_errors_are_clear_and_secret_free(s3: Any, tmp_path: Path) -> None:
    bundle = job_from_notebook(
        labeling_notebook(tmp_path / "nb"), s3_prefix="s3://no-such-bucket-here/gt", role_arn=ROLE, workteam_arn=TEAM
    )
    with pytest.raises(AwsError) as info:
        upload_bundle(bundle)
    message = str(info.value)
    assert "no-such-bucket-here" in message and "NoSuchBucket" in message
    scan_for_secrets(message)


# ------------------------------------------------------------------------------------------------ status


def test_wait_polls_until_completed() -> None:
    client = sagemaker()
    seen: list[str] = []
    sleeps: list[float] = []
    with Stubber(client) as stub:
        for status in ("Initializing", "InProgress", "Completed"):
            stub.add_response("describe_labeling_job", describe("pets", status), {"LabelingJobName": "pets"})
        final = wait(
            "pets", sagemaker=client, poll_seconds=7, on_status=lambda s: seen.append(s.status), sleep=sleeps.append
        )
        stub.assert_no_pending_responses()
    assert seen == ["Initializing", "InProgress", "Completed"] and final.done and sleeps == [7, 7]


def test_failed_job_status_says_why() -> None:
    client = sagemaker()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_labeling_job",
            {**describe("pets", "Failed"), "FailureReason": "ClientError: bad manifest"},
            {"LabelingJobName": "pets"},
        )
        status = job_status("pets", sagemaker=client)
    assert status.summary().endswith("- ClientError: bad manifest")


# ------------------------------------------------------------------------------------------------- fetch


def _put(s3: Any, uri: str, body: bytes) -> None:
    bucket, key = uri[5:].split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_fetch_semantic_results_identical_masks(s3: Any, bucket: str, tmp_path: Path, rng: np.random.Generator) -> None:
    labels = ["cat", "dog", "bird"]
    colors = list(label_colors(labels).values())
    out_root = f"s3://{bucket}/out/pets"
    maps = [rng.integers(0, 4, (37, 53), dtype=np.uint8), np.zeros((5, 4), np.uint8)]
    lines = []
    for i, label_map in enumerate(maps):
        png_uri = f"s3://{bucket}/out/" + consolidated_png_key("pets", i)
        _put(s3, png_uri, consolidated_png(label_map, colors))
        lines.append(
            output_manifest_line(
                f"s3://{bucket}/img/{i}.jpg", "label-ref", png_uri, labels, job_name="pets", extra={"id": i}
            )
        )
    manifest_uri = f"{out_root}/manifests/output/output.manifest"
    _put(s3, manifest_uri, "".join(json.dumps(x) + "\n" for x in lines).encode())
    client = sagemaker()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_labeling_job", describe("pets", "Completed", manifest_uri), {"LabelingJobName": "pets"}
        )
        items = fetch_results("pets", tmp_path / "res", sagemaker=client)
    assert [i.source_ref for i in items] == [f"s3://{bucket}/img/0.jpg", f"s3://{bucket}/img/1.jpg"]
    for item, label_map in zip(items, maps, strict=True):
        assert isinstance(item.result, SemanticResult)
        assert item.result.labels == labels
        np.testing.assert_array_equal(item.result.label_map, label_map)
        assert item.png_path is not None and item.png_path.read_bytes() == read_object(s3, item.line["label-ref"])
        assert item.line["id"] == item.index  # extra keys pass through
    assert (tmp_path / "res" / "output.manifest").read_bytes() == read_object(s3, manifest_uri)
    scan_for_secrets(folders=(tmp_path / "res",))


def test_fetch_real_style_rgb_png_with_reordered_labels(s3: Any, bucket: str, tmp_path: Path) -> None:
    """An RGB consolidated PNG (colours, not indices) and a label order that differs from the colour map's."""
    color_map = {
        "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.8},
        "1": {"class-name": "scratch", "hex-color": "#2ca02c", "confidence": 0.8},
        "2": {"class-name": "dent", "hex-color": "#1f77b4", "confidence": 0.8},
    }
    rgb = np.full((4, 6, 3), 255, np.uint8)
    rgb[1, 1:3] = (0x2C, 0xA0, 0x2C)
    rgb[2, 4] = (0x1F, 0x77, 0xB4)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    png_uri = f"s3://{bucket}/out/job/annotations/consolidated-annotation/output/0_2020-04-21T13:48:00.091190.png"
    _put(s3, png_uri, buf.getvalue())
    line = {
        "source-ref": f"s3://{bucket}/img/0.jpg",
        "anomaly-ref": png_uri,
        "anomaly-ref-metadata": {
            "internal-color-map": color_map,
            "type": "groundtruth/semantic-segmentation",
            "human-annotated": "yes",
            "creation-date": "2020-04-21T13:48:00.562419",
            "job-name": "labeling-job/job",
        },
    }
    manifest_uri = f"s3://{bucket}/out/job/manifests/output/output.manifest"
    _put(s3, manifest_uri, (json.dumps(line) + "\n").encode())
    client = sagemaker()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_labeling_job",
            describe("job", "Completed", manifest_uri, attr="anomaly-ref"),
            {"LabelingJobName": "job"},
        )
        (item,) = fetch_results("job", tmp_path, labels=["dent", "scratch"], sagemaker=client)
    assert isinstance(item.result, SemanticResult)
    expected = np.zeros((4, 6), np.uint8)
    expected[1, 1:3] = 2  # scratch is labels[1]
    expected[2, 4] = 1  # dent is labels[0]
    np.testing.assert_array_equal(item.result.label_map, expected)


def test_fetch_instance_results_from_worker_responses(
    s3: Any, bucket: str, tmp_path: Path, rng: np.random.Generator
) -> None:
    """PassThrough jobs: results come from the newest worker-response file of each object."""
    instances = [Instance("cat", "#2ca02c"), Instance("cat", "#1f77b4"), Instance("dog", "#ff7f0e")]
    newest = rng.integers(0, 4, (20, 30), dtype=np.uint8)
    older = np.zeros((20, 30), np.uint8)
    root = f"s3://{bucket}/out/inst/annotations/worker-response"
    for iteration, stamp, imap in (
        ("iteration-1", "2024-05-01T10:00:00.000Z", older),
        ("iteration-2", "2024-05-02T10:00:00.000Z", newest),
    ):
        answer = worker_response(instance_answer(imap, instances), element_name=INSTANCE_ELEMENT_NAME)
        _put(s3, f"{root}/{iteration}/0/{stamp}.json", json.dumps(answer).encode())
    line = {
        "source-ref": f"s3://{bucket}/img/0.jpg",
        "pets": {"annotationsFromAllWorkers": "passthrough"},
        "pets-metadata": {"type": "groundtruth/custom"},
    }
    manifest_uri = f"s3://{bucket}/out/inst/manifests/output/output.manifest"
    _put(s3, manifest_uri, (json.dumps(line) + "\n").encode())
    client = sagemaker()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_labeling_job",
            describe("inst", "Completed", manifest_uri, attr="pets"),
            {"LabelingJobName": "inst"},
        )
        (item,) = fetch_results("inst", tmp_path, sagemaker=client)
    assert isinstance(item.result, InstanceResult)
    assert item.result.instances == instances
    np.testing.assert_array_equal(item.result.instance_map, newest)


def test_fetch_custom_instance_job_by_worker_response_ref(s3: Any, bucket: str, tmp_path: Path) -> None:
    """The developer guide's custom-job output (reference §8): ``"<attr>": {}`` and a ``worker-response-ref``
    naming a ``YYYY-MM-DD_HH:MM:SS.json`` file; an older response of the same object must not be read."""
    instances = [Instance("car", "#2ca02c"), Instance("person", "#1f77b4"), Instance("car", "#ff7f0e")]
    imap = np.zeros((20, 30), np.uint8)
    imap[2:8, 3:10], imap[10:18, 12:25], imap[1:4, 20:28] = 1, 2, 3
    root = f"s3://{bucket}/output/street/annotations/worker-response/iteration-1/0"
    named = f"{root}/2021-03-08_23:06:49.json"
    answer = worker_response(instance_answer(imap, instances), element_name=INSTANCE_ELEMENT_NAME)
    _put(s3, named, json.dumps(answer).encode())
    decoy = worker_response(instance_answer(np.zeros_like(imap), instances), element_name=INSTANCE_ELEMENT_NAME)
    _put(s3, f"{root}/2021-03-09_00:00:00.json", json.dumps(decoy).encode())
    line = {
        "source-ref": f"s3://{bucket}/img/street.jpg",
        "street": {},
        "street-metadata": {
            "job_name": "labeling-job/street",
            "type": "groundTruth/custom",
            "human-annotated": "yes",
            "creation_date": "2021-03-08T23:06:50.011000",
            "worker-response-ref": named,
        },
    }
    manifest_uri = f"s3://{bucket}/output/street/manifests/output/output.manifest"
    _put(s3, manifest_uri, (json.dumps(line) + "\n").encode())
    client = sagemaker()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_labeling_job",
            describe("street", "Completed", manifest_uri, attr="street"),
            {"LabelingJobName": "street"},
        )
        (item,) = fetch_results("street", tmp_path, sagemaker=client)
    assert isinstance(item.result, InstanceResult)
    assert item.result.instances == instances
    for k, mask in enumerate(item.result.masks(), start=1):
        np.testing.assert_array_equal(mask, imap == k)
    assert item.png_path is None


def test_fetch_semantic_answer_embedded_in_line(s3: Any, bucket: str, tmp_path: Path, rng: np.random.Generator) -> None:
    label_map = rng.integers(0, 3, (9, 11), dtype=np.uint8)
    line = {
        "source-ref": "s3://b/i.jpg",
        "seg": {"crowd-semantic-segmentation": semantic_answer(label_map, ["a", "b"])},
    }
    manifest_uri = f"s3://{bucket}/out/x/manifests/output/output.manifest"
    _put(s3, manifest_uri, (json.dumps(line) + "\n").encode())
    client = sagemaker()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_labeling_job", describe("x", "Completed", manifest_uri, attr="seg"), {"LabelingJobName": "x"}
        )
        (item,) = fetch_results("x", tmp_path, labels=["a", "b"], sagemaker=client)
    assert isinstance(item.result, SemanticResult)
    np.testing.assert_array_equal(item.result.label_map, label_map)


def test_fetch_before_completion_is_a_clear_error(tmp_path: Path) -> None:
    client = sagemaker()
    with Stubber(client) as stub:
        stub.add_response("describe_labeling_job", describe("pets", "InProgress"), {"LabelingJobName": "pets"})
        with pytest.raises(AwsError, match="InProgress and has no output manifest yet"):
            fetch_results("pets", tmp_path, sagemaker=client)


def test_submit_refuses_s3_images_over_40_mb_or_missing_before_creating_the_job(s3: Any, bucket: str) -> None:
    from gt_widget.groundtruth.bundle import build_bundle
    from gt_widget.groundtruth.request import MAX_IMAGE_BYTES

    s3.put_object(Bucket=bucket, Key="in/ok.png", Body=tiny_png(5))
    s3.put_object(Bucket=bucket, Key="in/huge.tif", Body=b"\0" * (MAX_IMAGE_BYTES + 1))
    sources = [f"s3://{bucket}/in/ok.png", f"s3://{bucket}/in/huge.tif", f"s3://{bucket}/in/gone.png"]
    bundle = build_bundle(
        labels=["cat"],
        mode="semantic",
        sources=sources,
        s3_prefix=f"s3://{bucket}/gt",
        role_arn=ROLE,
        workteam_arn=TEAM,
        job_name="big-images",
    )
    assert bundle.problems == []  # S3 objects cannot be sized offline
    client = sagemaker()
    with Stubber(client) as stub, pytest.raises(ValidationError) as info:  # nothing queued: a call would fail
        submit(bundle, sagemaker=client)
    stub.assert_no_pending_responses()
    assert info.value.problems == [
        f"manifest line 2 source-ref: 's3://{bucket}/in/huge.tif' is {MAX_IMAGE_BYTES + 1:,} bytes; Ground Truth "
        f"accepts images of at most 40 MB ({MAX_IMAGE_BYTES:,} bytes): downscale or recompress it",
        f"manifest line 3 source-ref: 's3://{bucket}/in/gone.png' does not exist; upload it or fix the manifest",
    ]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="gt/")  # nothing was uploaded
