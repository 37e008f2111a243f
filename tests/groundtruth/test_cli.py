"""The ``gt-widget job ...`` and ``gt-widget template render|builtin`` commands, as a newcomer runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gt_widget.cli import main
from gt_widget.groundtruth.request import JobSettings, build_request
from tests.groundtruth.nbfixtures import labeling_notebook
from tests.support.servers import FAKE_AWS_ENV

ROLE = "arn:aws:iam::123456789012:role/GroundTruth"
TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/pets"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def valid_request() -> dict[str, Any]:
    return build_request(
        JobSettings(
            job_name="pets",
            labels=["cat"],
            role_arn=ROLE,
            manifest_uri="s3://b/in.manifest",
            output_path="s3://b/out/",
            template_uri="s3://b/t.liquid.html",
            label_config_uri="s3://b/labels.json",
            workteam_arn=TEAM,
        )
    )


def test_validate_exit_codes_and_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(valid_request()))
    assert run(capsys, "job", "validate", str(good))[0] == 0
    bad_request = valid_request()
    bad_request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] = 10
    bad_request["LabelAttributeName"] = "pets"
    del bad_request["RoleArn"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_request))
    code, out, err = run(capsys, "job", "validate", str(bad))
    assert code == 1 and out == ""
    lines = err.strip().split("\n")
    assert len(lines) == 3
    assert {line.split(":", 1)[0] for line in lines} == {
        "RoleArn",
        "HumanTaskConfig.NumberOfHumanWorkersPerDataObject",
        "LabelAttributeName",
    }


def test_validate_unreadable_input_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.json").write_text("{not json")
    code, _out, err = run(capsys, "job", "validate", str(tmp_path / "x.json"))
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    code, _out, err = run(capsys, "job", "validate", str(tmp_path / "missing.json"))
    assert code == 2 and "not found" in err


def test_validate_as_a_subprocess(tmp_path: Path) -> None:
    """The fixed form other tools call: `gt-widget job validate REQUEST.json`."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**valid_request(), "LabelingJobName": "bad_name"}))
    proc = subprocess.run(
        [sys.executable, "-m", "gt_widget.cli", "job", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("LabelingJobName: value 'bad_name' does not match the pattern")


def test_init_render_validate_submit_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nb = labeling_notebook(tmp_path / "nb")
    folder = tmp_path / "job"
    code, out, err = run(
        capsys, "job", "init", str(nb), "--s3-prefix", "s3://my-bucket/gt", "--role-arn", ROLE,
        "--workteam", TEAM, "--region", "us-east-1", "--out", str(folder), "--tag", "team=vision", "--workers", "2",
    )  # fmt: skip
    assert code == 0, err
    assert "pets-2024 (semantic, 2 images, labels cat, dog)" in out and "valid" in out
    request = json.loads((folder / "request.json").read_text())
    assert request["Tags"] == [{"Key": "team", "Value": "vision"}]
    assert request["HumanTaskConfig"]["NumberOfHumanWorkersPerDataObject"] == 2
    assert run(capsys, "job", "validate", str(folder))[0] == 0
    code, html, _ = run(capsys, "job", "render", str(folder))
    assert code == 0 and html == (folder / "preview.html").read_text()
    code, out, _ = run(capsys, "job", "submit", str(folder), "--dry-run")
    assert code == 0
    assert "-> s3://my-bucket/gt/pets-2024/images/0-a.png" in out and "dry run: nothing sent" in out


def test_init_reports_problems_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nb = labeling_notebook(tmp_path / "nb")
    code, _out, err = run(
        capsys, "job", "init", str(nb), "--s3-prefix", "s3://my-bucket/gt", "--role-arn", ROLE,
        "--workteam", "public", "--region", "us-east-1", "--out", str(tmp_path / "job"),
    )  # fmt: skip
    assert code == 1
    assert "HumanTaskConfig.PublicWorkforceTaskPrice: missing" in err
    code, _out, err = run(capsys, "job", "submit", str(tmp_path / "job"))
    assert code == 1 and "not submitted" in err


def test_init_without_widget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import nbformat

    nb = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("hi")]), str(nb))
    code, _out, err = run(
        capsys, "job", "init", str(nb), "--s3-prefix", "s3://b-b-b/x", "--role-arn", ROLE, "--workteam", TEAM
    )
    assert code == 2 and "creates no SegmentationWidget" in err


def test_template_builtin_and_render_with_presigned_urls(
    s3: Any, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=bucket, Key="img/cat.jpg", Body=b"\xff\xd8 jpeg bytes")
    code, template, _ = run(capsys, "template", "builtin", "semantic", "--header", "Find <cats>")
    assert code == 0 and "<crowd-semantic-segmentation" in template and "Find &lt;cats&gt;" in template
    (tmp_path / "t.liquid.html").write_text(template)
    (tmp_path / "task.json").write_text(json.dumps({"taskObject": f"s3://{bucket}/img/cat.jpg", "labels": ["cat"]}))
    code, html, _ = run(
        capsys,
        "template",
        "render",
        str(tmp_path / "t.liquid.html"),
        "--input",
        str(tmp_path / "task.json"),
        "--expires-in",
        "120",
    )
    assert code == 0
    src = html.split('src="', 2)[2].split('"', 1)[0].replace("&amp;", "&")
    assert "X-Amz-Expires=120" in src
    with urllib.request.urlopen(src, timeout=10) as resp:
        assert resp.read() == b"\xff\xd8 jpeg bytes"
    assert FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in html


def test_template_render_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.html").write_text("{% for x in %}")
    (tmp_path / "task.json").write_text("{}")
    code, _out, err = run(
        capsys, "template", "render", str(tmp_path / "t.html"), "--input", str(tmp_path / "task.json")
    )
    assert code == 2 and "Liquid syntax" in err
    code, _out, err = run(
        capsys, "template", "render", str(tmp_path / "nope.html"), "--input", str(tmp_path / "task.json")
    )
    assert code == 2 and "not found" in err


def test_help_is_there_for_newcomers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["job", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for action in ("init", "render", "validate", "submit", "status", "fetch"):
        assert f"gt-widget job {action}" in text


def test_status_and_fetch_commands(
    s3: Any, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    import numpy as np
    from botocore.stub import Stubber

    from gt_widget.groundtruth import aws
    from gt_widget.groundtruth.formats import consolidated_png, output_manifest_line
    from tests.groundtruth.test_aws import describe

    label_map = np.zeros((4, 5), np.uint8)
    label_map[1:3, 1:4] = 1
    png_uri = f"s3://{bucket}/out/pets/annotations/consolidated-annotation/output/0_x.png"
    s3.put_object(Bucket=bucket, Key=png_uri.split("/", 3)[3], Body=consolidated_png(label_map, ["#2ca02c"]))
    line = output_manifest_line(f"s3://{bucket}/img/0.jpg", "label-ref", png_uri, ["cat"], job_name="pets")
    manifest = f"s3://{bucket}/out/pets/manifests/output/output.manifest"
    s3.put_object(Bucket=bucket, Key=manifest.split("/", 3)[3], Body=(json.dumps(line) + "\n").encode())
    client = boto3.client("sagemaker", region_name="us-east-1")
    monkeypatch.setattr(aws, "sagemaker_client", lambda region=None: client)
    with Stubber(client) as stub:
        stub.add_response("describe_labeling_job", describe("pets", "InProgress"), {"LabelingJobName": "pets"})
        stub.add_response(
            "describe_labeling_job",
            describe("pets", "Completed", manifest, TotalLabeled=1),
            {"LabelingJobName": "pets"},
        )
        stub.add_response("describe_labeling_job", describe("pets", "Completed", manifest), {"LabelingJobName": "pets"})
        code, out, _ = run(capsys, "job", "status", "pets", "--wait", "--poll", "0")
        assert code == 0
        assert out.splitlines()[0].startswith("pets: InProgress (") and "TotalLabeled 1" in out.splitlines()[1]
        code, out, err = run(capsys, "job", "fetch", "pets", "--out", str(tmp_path / "res"))
        stub.assert_no_pending_responses()
    assert code == 0 and out == f"0\ts3://{bucket}/img/0.jpg\tcat 6 px\n" and "1 results" in err
    assert (tmp_path / "res" / "output.manifest").exists()
