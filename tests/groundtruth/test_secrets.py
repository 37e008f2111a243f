"""No credential lands in a generated file, a log record or an error message.

The fake credentials of the ``s3_endpoint`` fixture are in the environment for every test here. One
deliberate exception is checked too: HTML rendered with ``grant_read_access`` holds presigned URLs, which
by design embed the session token of temporary credentials (as Ground Truth's own do); the job folder's
preview therefore uses unsigned URLs, and ``template render`` says so on stderr.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from gt_widget.cli import main
from gt_widget.errors import GtWidgetError
from gt_widget.groundtruth.aws import fetch_results, submit
from gt_widget.groundtruth.bundle import JobBundle
from tests.groundtruth.nbfixtures import labeling_notebook
from tests.support.servers import FAKE_AWS_ENV

SECRETS = (FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"], FAKE_AWS_ENV["AWS_SESSION_TOKEN"])
ROLE = "arn:aws:iam::123456789012:role/GroundTruth"
TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets"


def assert_clean(text: str, what: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{what} contains a credential"


def test_no_credentials_in_files_logs_or_errors(
    s3: Any, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gt_widget")
    nb = labeling_notebook(tmp_path / "nb")
    folder = tmp_path / "job"
    assert (
        main(
            [
                "job",
                "init",
                str(nb),
                "--s3-prefix",
                f"s3://{bucket}/gt",
                "--role-arn",
                ROLE,
                "--workteam",
                TEAM,
                "--out",
                str(folder),
            ]
        )
        == 0
    )
    bundle = JobBundle.read(folder)
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "create_labeling_job",
            {"LabelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/x"},
            bundle.request,
        )
        submit(bundle, sagemaker=client)
    # errors from AWS and from bad input
    messages = []
    for call in (
        lambda: fetch_results(
            _status("s3://no-such-bucket-x/out/job/manifests/output/output.manifest"), tmp_path / "f"
        ),
        lambda: main(["job", "validate", str(tmp_path / "missing.json")]),
        lambda: main(
            ["template", "render", str(folder / "template.liquid.html"), "--input", str(tmp_path / "nope.json")]
        ),
    ):
        try:
            call()
        except GtWidgetError as exc:
            messages.append(str(exc))
    assert messages, "the failing calls should have raised"
    out = capsys.readouterr()
    for message in messages:
        assert_clean(message, "an error message")
    assert_clean(out.out + out.err, "the console output")
    assert_clean(caplog.text, "the logs")
    for path in [*folder.rglob("*"), *(tmp_path / "nb").rglob("*")]:
        if path.is_file():
            assert_clean(path.read_bytes().decode("utf-8", "replace"), str(path))
    for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode("utf-8", "replace")
        assert_clean(body, obj["Key"])


def _status(manifest: str) -> Any:
    from gt_widget.groundtruth.aws import JobStatus

    return JobStatus("job", "Completed", {}, manifest, None, "label-ref", None)


def test_rendered_html_with_presigned_urls_is_flagged(
    s3: Any, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.html").write_text('<img src="{{ task.input.taskObject | grant_read_access }}">')
    (tmp_path / "task.json").write_text(json.dumps({"taskObject": f"s3://{bucket}/a.jpg"}))
    assert main(["template", "render", str(tmp_path / "t.html"), "--input", str(tmp_path / "task.json")]) == 0
    out = capsys.readouterr()
    assert "X-Amz-Security-Token=" in out.out  # temporary credentials: the token travels in the URL, by design
    assert FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in out.out  # the secret key never does
    assert "session token" in out.err
