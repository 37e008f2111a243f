"""Exports (YOLO, VOC, COCO, Hugging Face) and imports (COCO, YOLO, mask folders): round trips on real files.

YOLO files are read back with Ultralytics' documented rule, implemented here independently of our reader
(Ultralytics itself needs torchvision, which this project does not install): normalised coordinates times
the image size, resampled to 1000 points by vertex index, cast to int32, ``cv2.fillPoly`` per line.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from gt_widget.cli import main
from gt_widget.errors import FormatError
from gt_widget.formats import (
    ImportedImage,
    ImportedLabels,
    export_coco,
    export_hf,
    export_png_masks,
    export_voc,
    export_yolo,
    import_coco,
    import_masks,
    import_yolo,
)
from gt_widget.formats.labels import build_result
from gt_widget.formats.polygons import mask_to_polygon, polygon_to_mask
from gt_widget.formats.voc import voc_colormap
from gt_widget.groundtruth.formats import InstanceResult, SemanticResult

LABELS = ["cat", "dog", "tree"]


def _objects(h: int, w: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """Objects with a hole, with two parts, and a plain one; the plain one overlaps nothing."""
    yy, xx = np.mgrid[0:h, 0:w]
    ring = ((yy - h // 3) ** 2 + (xx - w // 3) ** 2 < (h // 4) ** 2) & ~((yy - h // 3) ** 2 + (xx - w // 3) ** 2 < 36)
    parts = ((yy > h - 20) & (yy < h - 8) & (xx > 5) & (xx < 25)) | (
        (yy > h - 18) & (yy < h - 6) & (xx > 40) & (xx < 50)
    )
    plain = (yy > 4 + seed) & (yy < 18 + seed) & (xx > w - 30) & (xx < w - 6)
    return [(ring, "cat"), (parts, "dog"), (plain, "tree")]


def _job(tmp_path: Path, mode: str, count: int = 2) -> tuple[Path, list[list[tuple[np.ndarray, str]]]]:
    """A Ground Truth output folder (written by ImportedLabels.write_job) over real image files."""
    rng = np.random.default_rng(7)
    (tmp_path / "imgs").mkdir(exist_ok=True)
    labels = ImportedLabels(LABELS, mode)  # type: ignore[arg-type]
    truth = []
    for k in range(count):
        h, w = 90 + 10 * k, 120
        path = tmp_path / "imgs" / f"photo{k}.png"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        objects = _objects(h, w, k)
        truth.append(objects)
        labels.images.append(ImportedImage(str(path), build_result(objects, (h, w), LABELS, mode)))  # type: ignore[arg-type]
    return labels.write_job(tmp_path / "gt", job_name=f"job-{mode}"), truth


def _ultralytics_read(txt: Path, shape: tuple[int, int], names: list[str]) -> list[tuple[np.ndarray, str]]:
    h, w = shape
    out = []
    for line in txt.read_text().splitlines():
        values = line.split()
        xy = np.array(values[1:], np.float64).reshape(-1, 2) * (w, h)
        closed = np.concatenate([xy, xy[:1]])
        t = np.linspace(0, len(closed) - 1, 1000)
        xy = np.stack([np.interp(t, np.arange(len(closed)), closed[:, i]) for i in range(2)], axis=1)
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [xy.astype(np.int32)], color=1)
        out.append((mask.astype(bool), names[int(values[0])]))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# ---------------------------------------------------------------------------------------------- YOLO


def test_polygon_keeps_holes_and_parts_and_only_adds_bridges() -> None:
    h, w = 90, 120
    for mask, _name in _objects(h, w, 0):
        back = polygon_to_mask(mask_to_polygon(mask), (h, w))
        assert not (mask & ~back).any()  # nothing lost
        added = back & ~mask
        assert added.sum() <= 2 * (h + w)  # at most the 1-px bridges
        assert _iou(back, mask) > 0.95
    ring = _objects(h, w, 0)[0][0]
    hole_centre = (h // 3, w // 3)
    assert not polygon_to_mask(mask_to_polygon(ring), (h, w))[hole_centre]  # the hole stays empty
    box = np.zeros((h, w), bool)
    box[10:40, 20:70] = True
    np.testing.assert_array_equal(polygon_to_mask(mask_to_polygon(box), (h, w)), box)  # exact when one ring
    assert mask_to_polygon(np.zeros((h, w), bool)) == []


@pytest.mark.parametrize("mode", ["semantic", "instance"])
def test_yolo_export_read_by_ultralytics_rule_and_imported_back(tmp_path: Path, mode: str) -> None:
    job, truth = _job(tmp_path, mode)
    data_yaml = export_yolo(job, tmp_path / "yolo")
    text = data_yaml.read_text()
    assert "train: images" in text and '0: "cat"' in text and '2: "tree"' in text
    assert sorted(p.name for p in (tmp_path / "yolo" / "images").iterdir()) == ["photo0.png", "photo1.png"]
    for k, objects in enumerate(truth):
        shape = objects[0][0].shape
        read = _ultralytics_read(tmp_path / "yolo" / "labels" / f"photo{k}.txt", shape, LABELS)
        if mode == "instance":
            assert [name for _, name in read] == ["cat", "dog", "tree"]  # one line per instance, parts joined
        else:  # semantic: one line per connected region
            assert [name for _, name in read] == ["cat", "dog", "dog", "tree"]
        for name in LABELS:
            got = np.any([m for m, n in read if n == name], axis=0)
            want = np.any([m for m, n in objects if n == name], axis=0)
            assert _iou(got, want) > 0.93, name

    imported = import_yolo(tmp_path / "yolo")
    assert imported.labels == LABELS and imported.mode == "instance" and len(imported.images) == 2
    result = imported.initial_value("photo0.png")
    assert isinstance(result, InstanceResult)
    got_map = result.label_map(LABELS)
    for mask, name in truth[0]:
        assert _iou(got_map == LABELS.index(name) + 1, mask) > 0.93, name
    assert len(result.instances) == (4 if mode == "semantic" else 3)


def test_yolo_import_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"data\.yaml"):
        import_yolo(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(FormatError, match="box line"):
        import_yolo(tmp_path, names=["x"])
    (tmp_path / "labels" / "a.txt").write_text("3 0.1 0.1 0.5 0.1 0.5 0.5\n")
    with pytest.raises(FormatError, match="class 3"):
        import_yolo(tmp_path, names=["x"])


# ----------------------------------------------------------------------------------------------- VOC


@pytest.mark.parametrize("mode", ["semantic", "instance"])
def test_voc_export_is_palette_index_pngs_and_imports_back_exactly(tmp_path: Path, mode: str) -> None:
    job, truth = _job(tmp_path, mode)
    root = export_voc(job, tmp_path / "voc")
    assert (root / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == ["photo0", "photo1"]
    assert (root / "labelmap.txt").read_text().splitlines()[1:3] == ["background:0,0,0::", "cat:128,0,0::"]
    with Image.open(root / "SegmentationClass" / "photo0.png") as im:
        assert im.mode == "P"
        assert im.getpalette()[3:9] == [128, 0, 0, 0, 128, 0] == [*voc_colormap()[1], *voc_colormap()[2]]
        values = np.asarray(im)
    assert set(np.unique(values)) == {0, 1, 2, 3}
    assert (root / "SegmentationObject").is_dir() == (mode == "instance")
    imported = import_masks(root)
    assert imported.mode == mode and imported.labels == LABELS
    for k, objects in enumerate(truth):
        result = imported.initial_value(str(root / "JPEGImages" / f"photo{k}.png"))
        want = build_result(objects, objects[0][0].shape, LABELS, mode)  # type: ignore[arg-type]
        if mode == "instance":
            assert isinstance(result, InstanceResult) and isinstance(want, InstanceResult)
            np.testing.assert_array_equal(result.instance_map, want.instance_map)
            assert [i.label for i in result.instances] == ["cat", "dog", "tree"]
        else:
            assert isinstance(result, SemanticResult) and isinstance(want, SemanticResult)
            np.testing.assert_array_equal(result.label_map, want.label_map)


def test_png_export_folder_imports_back(tmp_path: Path) -> None:
    job, truth = _job(tmp_path, "semantic")
    export_png_masks(job, tmp_path / "png")
    imported = import_masks(tmp_path / "png", images=tmp_path / "imgs")
    assert imported.labels == LABELS
    result = imported.initial_value(str(tmp_path / "imgs" / "photo1.png"))
    want = build_result(truth[1], truth[1][0][0].shape, LABELS, "semantic")
    assert isinstance(result, SemanticResult) and isinstance(want, SemanticResult)
    np.testing.assert_array_equal(result.label_map, want.label_map)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "png" / "zz_rgb.png")
    with pytest.raises(FormatError, match="index PNGs"):
        import_masks(tmp_path / "png")


# ---------------------------------------------------------------------------------------------- COCO


@pytest.mark.parametrize("compressed", [False, True])
def test_coco_round_trip_is_exact_and_pycocotools_agrees(tmp_path: Path, compressed: bool) -> None:
    from pycocotools import mask as mask_utils

    job, truth = _job(tmp_path, "instance")
    path = export_coco(job, tmp_path / "coco.json", compressed=compressed)
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        seg = ann["segmentation"]
        rle = seg if compressed else mask_utils.frPyObjects(seg, *seg["size"])
        assert int(mask_utils.area(rle)) == ann["area"]
    imported = import_coco(path, images=tmp_path / "imgs")
    assert imported.labels == LABELS and len(imported.images) == 2
    for k, objects in enumerate(truth):
        result = imported.initial_value(f"photo{k}.png")
        assert isinstance(result, InstanceResult)
        for got, (want, _name) in zip(result.masks(), objects, strict=True):
            np.testing.assert_array_equal(got, want)
        assert [i.label for i in result.instances] == [n for _, n in objects]


def test_coco_polygons_import_through_pycocotools(tmp_path: Path) -> None:
    coco = {
        "images": [{"id": 3, "file_name": "a.png", "height": 40, "width": 50}],
        "categories": [{"id": 7, "name": "box"}, {"id": 2, "name": "tri"}],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": 7, "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
            {"id": 2, "image_id": 3, "category_id": 2, "segmentation": [[0, 0, 5, 0, 0, 5], [40, 30, 45, 30, 45, 35]]},
        ],
    }
    imported = import_coco(coco, images=tmp_path, mode="semantic")
    assert imported.labels == ["tri", "box"]  # category id order
    result = imported.images[0].result
    assert isinstance(result, SemanticResult)
    box = result.label_map == 2
    assert box[10:20, 10:30].all() and 180 <= box.sum() <= 231
    tri = result.label_map == 1
    assert tri[1, 1] and tri[31, 44] and not tri[20, 20]  # both parts of one annotation
    with pytest.raises(FormatError, match="category_id 9"):
        import_coco({**coco, "annotations": [{**coco["annotations"][0], "category_id": 9}]})
    with pytest.raises(FormatError, match="needs 'images'"):
        import_coco({"images": []})


# ----------------------------------------------------------------------------------------- Hugging Face


@pytest.mark.parametrize("mode", ["semantic", "instance"])
def test_hf_dataset_round_trips_through_save_and_load(tmp_path: Path, mode: str) -> None:
    import datasets

    job, truth = _job(tmp_path, mode)
    ds = export_hf(job, tmp_path / "hf")
    back = datasets.load_from_disk(str(tmp_path / "hf"))
    assert back.features == ds.features and len(back) == len(ds) == 2
    names = back.features["instance_labels"].feature.names
    assert names == ["BACKGROUND", *LABELS]
    for k in range(2):
        a, b = ds[k], back[k]
        assert a["source_ref"] == b["source_ref"] == str(tmp_path / "imgs" / f"photo{k}.png")
        np.testing.assert_array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
        np.testing.assert_array_equal(np.asarray(b["image"]), np.asarray(Image.open(b["source_ref"])))
        mask = np.asarray(b["mask"])
        np.testing.assert_array_equal(mask, np.asarray(a["mask"]))
        for obj, name in truth[k]:
            assert (mask[obj & ~np.any([m for m, n in truth[k] if n != name], axis=0)] == names.index(name)).all()
        if mode == "instance":
            np.testing.assert_array_equal(np.asarray(a["instance_mask"]), np.asarray(b["instance_mask"]))
            assert [names[v] for v in b["instance_labels"]] == ["cat", "dog", "tree"]
            assert (np.asarray(b["instance_mask"]) == 2).sum() == truth[k][1][0].sum()
        else:
            assert b["instance_mask"] is None and b["instance_labels"] == []


# ------------------------------------------------------------------------------- widget and command line


@pytest.mark.parametrize("mode", ["semantic", "instance"])
def test_import_then_widget_then_export_is_equal(tmp_path: Path, mode: str) -> None:
    from gt_widget.widget import SegmentationWidget
    from gt_widget.widget.testing import BoxSegmenter

    job, _truth = _job(tmp_path, mode)
    export_coco(job, tmp_path / "in.json")
    imported = import_coco(tmp_path / "in.json", images=tmp_path / "imgs", mode=mode)  # type: ignore[arg-type]
    adjusted = ImportedLabels(imported.labels, imported.mode)
    for item in imported.images:
        widget = SegmentationWidget(
            item.source_ref, imported.labels, mode=mode, segmenter=BoxSegmenter(), initial_value=item.result
        )
        if mode == "instance":
            result = InstanceResult(widget.instance_map.copy(), list(widget.instances))
        else:
            result = SemanticResult(widget.label_map.copy(), list(imported.labels))
        adjusted.images.append(ImportedImage(item.source_ref, result))
    export_coco(adjusted.write_job(tmp_path / "gt2", job_name="again"), tmp_path / "out.json")
    a, b = json.loads((tmp_path / "in.json").read_text()), json.loads((tmp_path / "out.json").read_text())
    assert a["annotations"] == b["annotations"] and a["categories"] == b["categories"]


def test_cli_export_every_format_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job, _ = _job(tmp_path, "instance", count=1)
    for fmt in ("yolo", "voc", "hf", "png"):
        assert main(["export", str(job), "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
    assert main(["export", "coco", str(job), "--out", str(tmp_path / "c.json")]) == 0  # the older form
    assert (tmp_path / "yolo" / "labels" / "photo0.txt").is_file() and (tmp_path / "hf" / "dataset_info.json").is_file()
    assert (
        main(
            [
                "import",
                "coco",
                str(tmp_path / "c.json"),
                "--images",
                str(tmp_path / "imgs"),
                "--out",
                str(tmp_path / "i"),
            ]
        )
        == 0
    )
    assert "imported 1 image(s)" in capsys.readouterr().out
    assert main(["import", "yolo", str(tmp_path / "yolo"), "--out", str(tmp_path / "j"), "--job-name", "y"]) == 0
    assert (tmp_path / "j" / "y" / "manifests" / "output" / "output.manifest").is_file()
    assert main(["export", str(tmp_path / "nope"), "--format", "yolo", "--out", str(tmp_path / "x")]) == 2
    assert "no output manifest" in capsys.readouterr().err
