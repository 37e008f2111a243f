"""LabelingSession(initial_labels=...): imported labels (COCO, YOLO via `gt-widget import`) start a session.

Real files, the real importers, the real session and its Ground Truth output; import -> widget edit -> export
is checked equal to what the widget holds (issue #15's proof).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gt_widget.cli import main as cli_main
from gt_widget.formats import ImportedLabels, import_coco
from gt_widget.groundtruth.formats import InstanceResult, SemanticResult
from gt_widget.widget import LabelingSession, SessionError
from tests.support.sessions import LABELS, box_session, make_images

W, H = 64, 48
BOXES = {
    "img0.png": [(1, "cat", (4, 4, 30, 20))],
    "img1.png": [(2, "dog", (10, 8, 50, 40)), (1, "cat", (2, 30, 12, 44))],
}


def _rect(x0: int, y0: int, x1: int, y1: int) -> list[float]:
    return [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]


def _coco(folder: Path, boxes: dict[str, list[tuple[int, str, tuple[int, int, int, int]]]] = BOXES) -> Path:
    """A COCO JSON (polygons) over the images of ``folder``, written next to them."""
    images, anns = [], []
    for i, name in enumerate(sorted(boxes), start=1):
        images.append({"id": i, "file_name": name, "width": W, "height": H})
        for cat, _label, box in boxes[name]:
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "segmentation": [_rect(*box)]})
    path = folder / "instances.json"
    cats = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _lines(s: LabelingSession) -> list[dict[str, object]]:
    return [json.loads(x) for x in s.output_manifest_path.read_text().splitlines()]


def _human(line: dict[str, object], attr: str = "label-ref") -> object:
    return line[f"{attr}-metadata"]["human-annotated"]  # type: ignore[index]


def _imported_map(labels: ImportedLabels, path: Path) -> np.ndarray:
    result = labels.initial_value(path)
    assert isinstance(result, SemanticResult)
    lut = np.zeros(256, np.uint8)
    for i, name in enumerate(result.labels, start=1):
        lut[i] = LABELS.index(name) + 1
    return lut[result.label_map]


def test_coco_labels_start_the_session_as_imported_to_review(tmp_path: Path) -> None:
    imgs = make_images(tmp_path / "in", n=3)
    labels = import_coco(_coco(tmp_path / "in"), mode="semantic")
    s = box_session(tmp_path / "in", tmp_path / "out", initial_labels=labels)
    assert s.flush()
    for i in (0, 1):
        got = s.result(i)
        assert isinstance(got, SemanticResult) and (got.label_map == _imported_map(labels, imgs[i])).all()
        assert s.is_labeled(i) and s.is_to_review(i)
    assert not s.is_labeled(2) and not s.is_to_review(2)
    assert s.progress_text == "2 / 3 labeled, 2 imported, to review"
    assert "imported, to review" in s._progress.value and s._accept_button.layout.display is None
    lines = _lines(s)
    assert [_human(x) for x in lines[:2]] == ["no", "no"] and "label-ref" not in lines[2]
    assert (s.widget.label_map == _imported_map(labels, imgs[0])).all()  # the widget shows them
    assert s.next_unlabeled() == 1  # to review counts as work left
    assert s.next_unlabeled() == 2
    s.close()


def test_an_edit_makes_them_human_and_undo_stops_at_the_import(tmp_path: Path) -> None:
    imgs = make_images(tmp_path / "in", n=2)
    labels = import_coco(_coco(tmp_path / "in"), mode="semantic")
    s = box_session(tmp_path / "in", tmp_path / "out", initial_labels=labels)
    imported = _imported_map(labels, imgs[0])
    s.widget.label = "dog"
    s.widget.brush([(50, 40)], radius=3)
    assert s.flush() and not s.is_to_review(0) and s.is_to_review(1)
    assert _human(_lines(s)[0]) == "yes" and _human(_lines(s)[1]) == "no"
    assert s.progress_text == "2 / 2 labeled, 1 imported, to review"
    assert s.widget.undo()
    assert not s.widget.undo()  # the import itself cannot be undone
    assert s.flush()
    back = s.result(0)
    assert isinstance(back, SemanticResult) and (back.label_map == imported).all()
    s.close()


def test_accept_and_resume_never_reimport_over_edits(tmp_path: Path) -> None:
    imgs = make_images(tmp_path / "in", n=3)
    labels = import_coco(_coco(tmp_path / "in"), mode="semantic")
    s = box_session(tmp_path / "in", tmp_path / "out", initial_labels=labels)
    s.widget.erase([(10, 10)], radius=6)  # image 0 edited
    edited = s.widget.label_map.copy()
    s.go(1)
    s._accept_button.click()  # image 1 accepted as imported
    assert s.flush() and s.to_review_count == 0
    assert [_human(x) for x in _lines(s)[:2]] == ["yes", "yes"]
    accepted = s.result(1)
    assert isinstance(accepted, SemanticResult) and (accepted.label_map == _imported_map(labels, imgs[1])).all()
    s.close()

    again = box_session(tmp_path / "in", tmp_path / "out", initial_labels=labels)  # a kernel restart
    assert again.index == 1 and again.to_review_count == 0 and "not imported again" in again._status.value
    kept = again.result(0)
    assert isinstance(kept, SemanticResult) and (kept.label_map == edited).all()
    assert [_human(x) for x in _lines(again)[:2]] == ["yes", "yes"]
    again.close()


def test_unreviewed_imports_stay_to_review_after_a_restart(tmp_path: Path) -> None:
    make_images(tmp_path / "in", n=3)
    labels = import_coco(_coco(tmp_path / "in"), mode="semantic")
    s = box_session(tmp_path / "in", tmp_path / "out", initial_labels=labels)
    s.widget.brush([(60, 2)], radius=1)
    assert s.flush()
    s.close()
    again = box_session(tmp_path / "in", tmp_path / "out")  # resumed without initial_labels
    assert [again.is_to_review(i) for i in range(3)] == [False, True, False]
    assert [_human(x) for x in _lines(again)[:2]] == ["yes", "no"]
    again.close()


def test_bad_imports_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    make_images(tmp_path / "in", n=2)
    out = tmp_path / "out"
    coco = _coco(tmp_path / "in")
    with pytest.raises(SessionError, match=r"\['dog'\].*not among this session's labels"):
        LabelingSession(tmp_path / "in", ["cat"], out, initial_labels=import_coco(coco), prefetch=False)
    other = make_images(tmp_path / "other", n=1)
    (tmp_path / "other" / "img0.png").rename(tmp_path / "other" / "zebra.png")
    stranger = ImportedLabels(LABELS, "semantic")
    stranger.images = [*import_coco(coco, mode="semantic").images]
    stranger.images[0].source_ref = str(tmp_path / "other" / "zebra.png")
    with pytest.raises(SessionError, match=r"not in this session.*zebra\.png"):
        box_session(tmp_path / "in", out, initial_labels=stranger)
    small = make_images(tmp_path / "small", n=2, size=(32, 24))
    with pytest.raises(SessionError, match=r"differ in size.*labels 64x48, image 32x24"):
        box_session(small, out, initial_labels=import_coco(coco, mode="semantic"))
    with pytest.raises(SessionError, match="not a job folder"):
        box_session(tmp_path / "in", out, initial_labels=tmp_path / "in")
    assert not out.exists() and other


def test_gt_widget_import_folder_then_widget_edit_then_export_equals_the_widget(tmp_path: Path) -> None:
    """YOLO dataset -> `gt-widget import` job folder -> instance session, one edit, one accept -> COCO export,
    read back: every image's masks equal what the widget held."""
    imgs = make_images(tmp_path / "yolo" / "images", n=2)
    (tmp_path / "yolo" / "labels").mkdir()
    (tmp_path / "yolo" / "data.yaml").write_text("names:\n  0: cat\n  1: dog\n")
    for name, objs in BOXES.items():
        rows = []
        for cat, _label, (x0, y0, x1, y1) in objs:
            xy = [x0 / W, y0 / H, x1 / W, y0 / H, x1 / W, y1 / H, x0 / W, y1 / H]
            rows.append(f"{cat - 1} " + " ".join(f"{v:.6f}" for v in xy))
        (tmp_path / "yolo" / "labels" / name.replace(".png", ".txt")).write_text("\n".join(rows) + "\n")
    assert (
        cli_main(["import", "yolo", str(tmp_path / "yolo"), "--out", str(tmp_path / "imp"), "--job-name", "pre"]) == 0
    )
    job = tmp_path / "imp" / "pre"
    s = box_session(imgs, tmp_path / "out", mode="instance", initial_labels=job)
    assert s.to_review_count == 2 and _human(_lines(s)[0], "label") == "no"
    first = s.result(0)
    assert isinstance(first, InstanceResult) and [i.label for i in first.instances] == ["cat"]
    s.widget.erase([(10, 10)], radius=4)  # image 0: a human edit
    s.go(1)
    s.accept()  # image 1: accepted as imported
    held = {i: s.result(i) for i in (0, 1)}
    assert s.to_review_count == 0 and [_human(x, "label") for x in _lines(s)] == ["yes", "yes"]
    coco = s.export_coco(tmp_path / "export.json")
    back = import_coco(coco, images=imgs[0].parent)
    assert len(back.images) == 2
    for i, path in enumerate(imgs):
        want, got = held[i], back.initial_value(path)
        assert isinstance(want, InstanceResult) and isinstance(got, InstanceResult)
        assert [x.label for x in got.instances] == [x.label for x in want.instances]
        for k in range(1, len(want.instances) + 1):
            assert ((got.instance_map == k) == (want.instance_map == k)).all()
    assert held[0] is not None and not (held[0].instance_map[8:12, 8:12]).any()  # type: ignore[union-attr]
    s.close()
