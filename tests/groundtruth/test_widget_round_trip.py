"""Widget -> Ground Truth's output on S3 -> fetch -> numpy and back into a widget: identical masks.

Needs the SegmentationWidget (engineer C's) and its deterministic test segmenter; skipped until both exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.stub import Stubber

from gt_widget.groundtruth.aws import fetch_results, open_in_widget
from gt_widget.groundtruth.formats import InstanceResult, SemanticResult, consolidated_png_key, output_manifest_line
from tests.groundtruth.test_aws import describe

widget_pkg = pytest.importorskip("gt_widget.widget")
if not hasattr(widget_pkg, "SegmentationWidget"):
    pytest.skip("gt_widget.widget.SegmentationWidget has not landed yet", allow_module_level=True)
testing = pytest.importorskip("gt_widget.widget.testing")


def _image() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _put(s3: Any, uri: str, body: bytes) -> None:
    bucket, key = uri[5:].split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_semantic_widget_round_trip(s3: Any, bucket: str, tmp_path: Path) -> None:
    labels = ["cat", "dog"]
    w = widget_pkg.SegmentationWidget(_image(), labels, mode="semantic", segmenter=testing.BoxSegmenter())
    w.label = "cat"
    w.brush([(5, 5), (30, 6)], radius=3)
    w.label = "dog"
    w.polygon([(35, 20), (60, 20), (60, 45), (35, 45)])
    assert w.wait_idle(30)
    painted = w.label_map.copy()
    assert set(np.unique(painted).tolist()) == {0, 1, 2}
    png_uri = f"s3://{bucket}/out/" + consolidated_png_key("pets", 0)
    _put(s3, png_uri, w.consolidated_png())
    line = output_manifest_line(f"s3://{bucket}/img/0.jpg", "label-ref", png_uri, labels, job_name="pets")
    manifest = f"s3://{bucket}/out/pets/manifests/output/output.manifest"
    _put(s3, manifest, (json.dumps(line) + "\n").encode())
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("describe_labeling_job", describe("pets", "Completed", manifest), {"LabelingJobName": "pets"})
        (item,) = fetch_results("pets", tmp_path, labels=labels, sagemaker=client)
    assert isinstance(item.result, SemanticResult)
    np.testing.assert_array_equal(item.result.label_map, painted)
    again = open_in_widget(item, _image(), labels=labels, segmenter=testing.BoxSegmenter())
    assert again.wait_idle(30)
    np.testing.assert_array_equal(again.label_map, painted)


def test_instance_widget_round_trip(s3: Any, bucket: str, tmp_path: Path) -> None:
    w = widget_pkg.SegmentationWidget(_image(), ["cat", "dog"], mode="instance", segmenter=testing.BoxSegmenter())
    w.add_instance("cat")
    w.brush([(5, 5), (20, 5)], radius=3)
    w.add_instance("cat")
    w.polygon([(30, 10), (50, 10), (50, 30), (30, 30)])
    w.add_instance("dog")
    w.brush([(10, 40), (40, 40)], radius=2)
    assert w.wait_idle(30)
    imap = w.instance_map.copy()
    response = w.to_worker_response()
    _put(
        s3,
        f"s3://{bucket}/out/inst/annotations/worker-response/iteration-1/0/2024-05-01T10:00:00.000Z.json",
        json.dumps(response).encode(),
    )
    line = {"source-ref": f"s3://{bucket}/img/0.jpg", "pets": {"passthrough": True}}
    manifest = f"s3://{bucket}/out/inst/manifests/output/output.manifest"
    _put(s3, manifest, (json.dumps(line) + "\n").encode())
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_labeling_job", describe("inst", "Completed", manifest, attr="pets"), {"LabelingJobName": "inst"}
        )
        (item,) = fetch_results("inst", tmp_path, sagemaker=client)
    assert isinstance(item.result, InstanceResult)
    np.testing.assert_array_equal(item.result.instance_map, imap)
    assert [i.label for i in item.result.instances] == ["cat", "cat", "dog"]
    again = open_in_widget(item, _image(), labels=["cat", "dog"], segmenter=testing.BoxSegmenter())
    assert again.wait_idle(30)
    np.testing.assert_array_equal(again.instance_map, imap)
