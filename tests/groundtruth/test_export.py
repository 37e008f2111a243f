"""COCO RLE (our own encoder) and the COCO / PNG exports of a job folder written in Ground Truth's layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gt_widget.errors import FormatError
from gt_widget.groundtruth.export import (
    export_coco,
    export_png_masks,
    mask_bbox,
    read_job_output,
    read_mask_png,
    rle_decode,
    rle_encode,
    rle_from_string,
    rle_to_string,
)
from gt_widget.groundtruth.formats import Instance, consolidated_png, output_manifest_line
from gt_widget.palette import label_colors


def test_rle_counts_are_column_major_and_start_with_zeros() -> None:
    m = np.zeros((3, 4), bool)
    m[0, 0] = True  # first pixel set: counts start with an empty run of zeros
    m[1:3, 2] = True
    rle = rle_encode(m)
    # column-major: col0 = [1,0,0], col1 = [0,0,0], col2 = [0,1,1], col3 = [0,0,0]
    assert rle == {"size": [3, 4], "counts": [0, 1, 6, 2, 3]}
    assert (rle_decode(rle) == m).all()


def test_compressed_string_matches_pycocotools() -> None:
    # Reference value computed once with pycocotools 2.0.11 (mask.encode on this exact mask); our encoder was
    # also compared with pycocotools on 300 random masks while writing it.
    m = np.zeros((7, 9), bool)
    m[1:5, 2:6] = True
    m[6, 8] = True
    m[0, 0] = True
    counts = rle_encode(m)["counts"]
    assert counts == [0, 1, 14, 4, 3, 4, 3, 4, 3, 4, 22, 1]
    assert rle_to_string(counts) == "01>3E00000c0M"
    assert rle_from_string("01>3E00000c0M") == counts
    assert (rle_decode({"size": [7, 9], "counts": "01>3E00000c0M"}) == m).all()


@settings(max_examples=150, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_rle_round_trip(mask: np.ndarray) -> None:
    rle = rle_encode(mask)
    assert sum(rle["counts"]) == mask.size
    assert (rle_decode(rle) == mask).all()
    text = rle_to_string(rle["counts"])
    assert rle_from_string(text) == rle["counts"]
    assert (rle_decode({"size": rle["size"], "counts": text}) == mask).all()


def test_rle_large_runs_round_trip() -> None:
    m = np.zeros((3000, 2000), bool)
    m[100:2900, 50:1999] = True
    rle = rle_encode(m)
    assert (rle_decode({"size": rle["size"], "counts": rle_to_string(rle["counts"])}) == m).all()


def test_rle_rejects_inconsistent_counts() -> None:
    with pytest.raises(FormatError, match="sum to"):
        rle_decode({"size": [2, 2], "counts": [1, 1]})
    with pytest.raises(FormatError, match="2-D"):
        rle_encode(np.zeros((2, 2, 2), bool))


def test_bbox() -> None:
    m = np.zeros((10, 10), bool)
    m[2:5, 3:9] = True
    assert mask_bbox(m) == [3.0, 2.0, 6.0, 3.0]
    assert mask_bbox(np.zeros((4, 4), bool)) == [0.0, 0.0, 0.0, 0.0]


def _write_job(job: Path, lines: list[tuple[str, np.ndarray, list[Instance] | None]], labels: list[str]) -> None:
    out = job / "annotations" / "consolidated-annotation" / "output"
    out.mkdir(parents=True)
    manifest = []
    colors = list(label_colors(labels).values())
    for n, (ref, index_map, instances) in enumerate(lines):
        png = out / f"{n}_2024-01-01T00:00:00.000000.png"
        cols = [i.color for i in instances] if instances is not None else colors
        png.write_bytes(consolidated_png(index_map, cols))
        manifest.append(
            output_manifest_line(
                ref,
                "label-ref",
                f"s3://bucket/out/{job.name}/annotations/consolidated-annotation/output/{png.name}",
                labels,
                job_name=job.name,
                mode="instance" if instances is not None else "semantic",
                instances=instances,
                extra={"note": n},
            )
        )
    (job / "manifests" / "output").mkdir(parents=True)
    (job / "manifests" / "output" / "output.manifest").write_text("\n".join(json.dumps(x) for x in manifest) + "\n")


def test_export_coco_semantic(tmp_path: Path) -> None:
    labels = ["cat", "dog", "bird"]
    a = np.zeros((20, 30), np.uint8)
    a[2:8, 3:10] = 1
    a[10:15, 20:28] = 3
    b = np.zeros((12, 16), np.uint8)
    b[0:4, 0:4] = 2
    job = tmp_path / "job"
    _write_job(job, [("s3://bucket/in/a.jpg", a, None), ("s3://bucket/in/b.png", b, None)], labels)
    path = export_coco(job, tmp_path / "coco.json", labels=labels)
    coco = json.loads(path.read_text())
    assert [c["name"] for c in coco["categories"]] == labels
    assert [(i["file_name"], i["height"], i["width"]) for i in coco["images"]] == [("a.jpg", 20, 30), ("b.png", 12, 16)]
    got = {(ann["image_id"], ann["category_id"]): ann for ann in coco["annotations"]}
    assert set(got) == {(1, 1), (1, 3), (2, 2)}
    for (image_id, cat), ann in got.items():
        source = a if image_id == 1 else b
        expected = source == cat
        assert (rle_decode(ann["segmentation"]) == expected).all()
        assert ann["area"] == int(expected.sum())
        assert ann["bbox"] == mask_bbox(expected)
    # compressed strings decode to the same masks
    coco2 = json.loads(export_coco(job, tmp_path / "coco2.json", labels=labels, compressed=True).read_text())
    for ann, ann2 in zip(coco["annotations"], coco2["annotations"], strict=True):
        assert isinstance(ann2["segmentation"]["counts"], str)
        assert (rle_decode(ann2["segmentation"]) == rle_decode(ann["segmentation"])).all()


def test_export_instances_coco_and_png(tmp_path: Path) -> None:
    labels = ["cat", "dog"]
    im = np.zeros((10, 10), np.uint8)
    im[0:3, 0:3] = 1
    im[5:9, 5:9] = 2
    im[0:2, 7:10] = 3
    instances = [Instance("cat", "#2ca02c"), Instance("cat", "#1f77b4"), Instance("dog", "#ff7f0e")]
    job = tmp_path / "job"
    _write_job(job, [("/data/x.png", im, instances)], labels)
    (rec,) = list(read_job_output(job))
    assert rec.instances == instances and rec.line["note"] == 0
    coco = json.loads(export_coco(job, tmp_path / "c.json").read_text())
    assert [a["category_id"] for a in coco["annotations"]] == [1, 1, 2]
    for k, ann in enumerate(coco["annotations"], start=1):
        assert (rle_decode(ann["segmentation"]) == (im == k)).all()
    files = export_png_masks(job, tmp_path / "png", labels=labels)
    names = sorted(p.name for p in files)
    assert names == [
        "00000_x.png",
        "00000_x_instance1_cat.png",
        "00000_x_instance2_cat.png",
        "00000_x_instance3_dog.png",
        "labels.json",
    ]
    lm = read_mask_png(tmp_path / "png" / "00000_x.png")
    expected = np.zeros_like(im)
    expected[(im == 1) | (im == 2)] = 1
    expected[im == 3] = 2
    assert (lm == expected).all()
    assert (read_mask_png(tmp_path / "png" / "00000_x_instance2_cat.png") == (im == 2) * 255).all()
    assert json.loads((tmp_path / "png" / "labels.json").read_text()) == {"0": "BACKGROUND", "1": "cat", "2": "dog"}


def test_export_without_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no output manifest"):
        export_coco(tmp_path, tmp_path / "c.json")
