"""Prompt log -> resegment with the real MobileSAM on a GrabCut-50 image.

The "labeling" is done the way the editor does it (paint a model mask, replace it on a corrective click,
strokes painted on top, undo/redo) with plain numpy here, while the same edits go to the recording API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gt_widget.errors import FormatError
from gt_widget.groundtruth.export import read_job_output
from gt_widget.imageio import load_image
from gt_widget.promptlog import PromptLog, load_logs, log_path, mask_digest
from gt_widget.resegment import replay, resegment
from gt_widget.segment.prelabel_output import MachineLabel, write_job
from gt_widget.widget.state import polygon_footprint, stroke_footprint
from tests.support.objects import load_grabcut_object


def _footprint(found: tuple[tuple[int, int, int, int], np.ndarray] | None, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    assert found is not None
    (y0, y1, x0, x1), crop = found
    out[y0:y1, x0:x1] = crop
    return out


@pytest.fixture(scope="module")
def labeled(tmp_path_factory: pytest.TempPathFactory, grabcut_dir: Path, weights_path: Path) -> dict[str, Any]:
    """A job folder labeled with MobileSAM (default recipe) + manual strokes, its log saved beside it."""
    from gt_widget.segment import load_segmenter

    seg = load_segmenter("mobilesam", weights=weights_path)
    obj = load_grabcut_object(grabcut_dir, "llama")
    image = load_image(obj.image)
    seg.set_image(image)
    h, w = image.shape[:2]
    labels = ["animal", "sky"]
    log = PromptLog(w, h, labels, source_ref=str(obj.image), index=0)
    label_map = np.zeros((h, w), np.uint8)

    # 1. four extreme points -> mask painted as "animal"
    pred = seg.predict(extreme_points=obj.points)
    before = label_map.copy()
    label_map[pred.mask] = 1
    first = log.record_model_edit(seg, pred.mask, value=1, label="animal", extreme_points=obj.points)
    # 2. a corrective click replaces that mask (same chain, one undo step in the editor)
    ys, xs = np.nonzero(obj.gt & ~pred.mask)
    click = (
        (float(xs[len(xs) // 2]), float(ys[len(ys) // 2]), True)
        if len(xs)
        else (obj.points[0][0], obj.points[0][1], True)
    )
    pred2 = seg.predict(extreme_points=obj.points, clicks=[click], previous=pred)
    label_map[pred.mask] = before[pred.mask]
    label_map[pred2.mask] = 1
    log.record_model_edit(
        seg, pred2.mask, value=1, label="animal", extreme_points=obj.points, clicks=[click], refines=first
    )
    # 3. manual "sky": a brush stroke and a polygon along the top of the image
    brush_pts = [(5.0, 5.0), (60.0, 8.0), (120.0, 6.0)]
    label_map[_footprint(stroke_footprint(brush_pts, 4.0, (h, w)), (h, w))] = 2
    log.record_stroke("brush", brush_pts, value=2, label="sky", radius=4.0)
    poly = [(200.0, 2.0), (260.0, 2.0), (260.0, 20.0), (200.0, 20.0)]
    label_map[_footprint(polygon_footprint(poly, (h, w)), (h, w))] = 2
    log.record_stroke("polygon", poly, value=2, label="sky")
    # 4. an eraser stroke, undone and redone
    erase_pts = [(210.0, 10.0)]
    after_poly = label_map.copy()
    label_map[_footprint(stroke_footprint(erase_pts, 3.0, (h, w)), (h, w))] = 0
    log.record_stroke("eraser", erase_pts, value=0, radius=3.0)
    erased = label_map.copy()
    log.record_undo()
    label_map = after_poly.copy()
    log.record_redo()
    label_map = erased

    out = tmp_path_factory.mktemp("labeled")
    job = write_job(out, "job", labels, [MachineLabel(str(obj.image), 0, label_map)])
    log.save(job)
    return {"job": job, "map": label_map, "log": log, "weights": weights_path, "sky": label_map == 2}


def test_log_is_versioned_json_outside_what_ground_truth_reads(labeled: dict[str, Any]) -> None:
    job = labeled["job"]
    assert isinstance(job, Path)
    path = log_path(job, 0)
    data = json.loads(path.read_text())
    assert data["format"] == "gt-widget-prompt-log" and data["version"] == 2
    assert [e["kind"] for e in data["events"]] == ["model", "model", "stroke", "stroke", "stroke", "undo", "redo"]
    model = data["models"][data["events"][0]["model"]]
    assert model["name"] == "mobilesam" and len(model["weights_sha256"]) == 64 and model["recipe"]["zoom"] == "auto"
    assert data["events"][1]["refines"] == 0 and data["events"][1]["prompt"]["clicks"][0][2] is True
    manifest = (job / "manifests" / "output" / "output.manifest").read_text()
    assert "prompt-log" not in manifest and "gt-widget/" not in manifest
    assert set(load_logs(job)) == {0}


def test_resegment_same_recipe_gives_identical_masks(labeled: dict[str, Any], tmp_path: Path) -> None:
    report = resegment(labeled["job"], tmp_path, recipe="recorded", weights=labeled["weights"], progress=False)
    assert report.model_edits == 2 and report.reproduced == 2
    (item,) = list(read_job_output(report.job_dir))
    np.testing.assert_array_equal(item.index_map, labeled["map"])
    assert all(row["iou"] == 1.0 for row in report.objects)
    again = PromptLog.load(log_path(report.job_dir, 0))  # the new log replays the same way
    assert [e["kind"] for e in again.events] == [e["kind"] for e in labeled["log"].events]
    saved = json.loads((report.job_dir / "resegment-report.json").read_text())
    assert saved["reproduced_exactly"] == 2


def test_resegment_other_recipe_changes_only_model_made_objects(labeled: dict[str, Any], tmp_path: Path) -> None:
    report = resegment(labeled["job"], tmp_path, recipe="fallback", progress=False)  # GrabCut
    rows = {row["object"]: row for row in report.objects}
    assert rows["animal"]["model_made"] and not rows["sky"]["model_made"]
    assert rows["animal"]["iou"] < 0.999  # another model, another mask
    assert rows["sky"]["iou"] == 1.0  # strokes replayed on top, exactly
    (item,) = list(read_job_output(report.job_dir))
    np.testing.assert_array_equal(item.index_map == 2, labeled["sky"])
    assert report.objects[0]["object"] == "animal"  # changed most comes first
    assert "changed most" in report.summary()


def test_bad_logs_get_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"format": "gt-widget-prompt-log", "version": 9}')
    with pytest.raises(FormatError, match="version 9"):
        PromptLog.load(tmp_path / "x.json")
    with pytest.raises(FormatError, match="no prompt logs"):
        load_logs(tmp_path)
    log = PromptLog(10, 10, ["a"])
    with pytest.raises(FormatError, match="radius"):
        log.record_stroke("brush", [(1, 1)], value=1)
    with pytest.raises(FormatError, match="refines"):
        log.record_model_edit(object(), np.zeros((10, 10), bool), value=1, label="a", refines=3)
    assert mask_digest(np.eye(3, dtype=bool)) != mask_digest(np.eye(3, dtype=bool)[::-1])


def test_version_1_logs_are_read_and_replayed(tmp_path: Path) -> None:
    """A version-1 file (instance "new" as its own step) still replays; its unreplayable events say why not."""
    v1 = {
        "format": "gt-widget-prompt-log",
        "version": 1,
        "image": {"source_ref": "x.png", "index": 3, "width": 20, "height": 10},
        "mode": "instance",
        "labels": ["a", "b"],
        "models": {},
        "events": [
            {"kind": "instance", "seq": 0, "op": "new", "value": 1, "label": "b", "color": "#2ca02c"},
            {
                "kind": "stroke",
                "seq": 1,
                "tool": "polygon",
                "value": 1,
                "label": "b",
                "points": [[2, 2], [8, 2], [8, 6]],
            },
        ],
    }
    (tmp_path / "3.json").write_text(json.dumps(v1))
    log = PromptLog.load(tmp_path / "3.json")
    assert log.events[0]["op"] == "add" and log.to_dict()["version"] == 2

    def no_model(_model_id: str) -> Any:
        raise AssertionError("strokes need no model")

    done = replay(log, np.zeros((10, 20, 3), np.uint8), no_model)
    assert done.instances is not None and [i.label for i in done.instances] == ["b"]
    assert done.index_map[3, 6] == 1 and not done.model_values
    log.events.append({"kind": "unreplayable", "seq": 2, "what": "clear"})
    with pytest.raises(FormatError, match="older gt-widget"):
        replay(log, np.zeros((10, 20, 3), np.uint8), no_model)


def test_every_event_goes_through_one_envelope() -> None:
    log = PromptLog(10, 10, ["a"], mode="instance")
    born = [{"value": 1, "label": "a", "color": "#2ca02c"}]
    log.record_stroke("polygon", [(1, 1), (5, 1), (5, 5)], value=1, label="a", new_instances=born)
    log.record_relabel(1, "a")
    log.record_delete(1)
    log.record_clear()
    assert [e["seq"] for e in log.events] == [0, 1, 2, 3]
    assert log.events[0]["new_instances"] == born and "new_instances" not in log.events[1]
    with pytest.raises(FormatError, match="unknown event kind"):
        log.record("paint")
    with pytest.raises(FormatError, match="needs op"):
        log.record("instance", value=1)


def test_initial_event_is_the_replays_start_and_not_an_undo_step(tmp_path: Path) -> None:
    """An image that started with labels: its map (PNG in the JSON) comes back bit-exact, first, once."""
    rng = np.random.default_rng(0)
    seed = rng.integers(0, 3, (10, 20), dtype=np.uint8)
    log = PromptLog(20, 10, ["a", "b"], source_ref="x.png", index=0)
    assert log.record_initial(seed) == 0
    log.record_stroke("polygon", [(2, 2), (8, 2), (8, 6)], value=2, label="b")
    log.record_undo()
    log.record_undo()  # past the stroke: the imported labels stay
    log.save(tmp_path)
    back = PromptLog.load(log_path(tmp_path, 0))
    assert back.events[0]["model_made"] is False
    assert [o["label"] for o in back.events[0]["objects"]] == ["a", "b"]

    def no_model(_model_id: str) -> Any:
        raise AssertionError("no model edit here")

    done = replay(back, np.zeros((10, 20, 3), np.uint8), no_model)
    np.testing.assert_array_equal(done.index_map, seed)
    assert done.imported_values == {1, 2} and not done.model_values
    assert done.log.events[0]["map"] == back.events[0]["map"]  # the new log starts the same way

    with pytest.raises(FormatError, match="first and only"):
        log.record_initial(seed)
    with pytest.raises(FormatError, match="only 2 labels"):
        PromptLog(20, 10, ["a", "b"]).record_initial(seed + 1)
    with pytest.raises(FormatError, match="20x10"):
        PromptLog(20, 10, ["a", "b"]).record_initial(seed[:5])
    late = PromptLog(20, 10, ["a", "b"])
    late.record_clear()
    late.events.append(back.events[0] | {"seq": 1})
    with pytest.raises(FormatError, match="after other events"):
        replay(late, np.zeros((10, 20, 3), np.uint8), no_model)
    damaged = PromptLog.from_dict(back.to_dict())
    damaged.events[0] = damaged.events[0] | {"map": {"png": "bm90IGEgcG5n", "sha256": "0"}}
    with pytest.raises(FormatError, match="damaged"):
        replay(damaged, np.zeros((10, 20, 3), np.uint8), no_model)
