"""Widget sessions that use clear, relabel, delete, accept-all and instance edits -> prompt log -> resegment.

Real MobileSAM on a GrabCut-50 image, driven through the widget's own methods (the editor's recording hook
writes the log). Proposals use a 4 x 4 grid here (the tool's default is 16 x 16) to keep the suite quick.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gt_widget.groundtruth.export import read_job_output
from gt_widget.promptlog import PromptLog, log_path
from gt_widget.resegment import resegment
from gt_widget.widget import SegmentationWidget
from gt_widget.widget.session import LabelingSession
from tests.support.objects import load_grabcut_object
from tests.support.proposals import proposal_tool

GRID = 4


def _session(tmp_path: Path, grabcut_dir: Path, mobilesam: Any, labels: list[str], mode: str) -> tuple[Any, Any]:
    obj = load_grabcut_object(grabcut_dir, "llama")
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(obj.image, images / obj.image.name)
    s = LabelingSession(images, labels, tmp_path / "out", segmenter=mobilesam, prefetch=False, mode=mode)
    return s, obj


def _instance_masks(index_map: np.ndarray, instances: list[Any]) -> list[tuple[str, np.ndarray]]:
    return [(inst.label, index_map == k) for k, inst in enumerate(instances, start=1)]


@pytest.fixture(scope="module")
def semantic_job(tmp_path_factory: pytest.TempPathFactory, grabcut_dir: Path, mobilesam: Any) -> dict[str, Any]:
    """A semantic session: accept-all proposals, auto-segment + click, strokes, clear (undone), clear again."""
    tmp = tmp_path_factory.mktemp("semantic")
    s, obj = _session(tmp, grabcut_dir, mobilesam, ["animal", "sky", "thing"], "semantic")
    w = s.widget
    h, wd = obj.gt.shape
    w.label = "sky"
    w.brush([(5, 5), (60, 8), (120, 5)], radius=4)  # cleared below: gone for good
    w.clear()
    w.label = "thing"
    tool = proposal_tool(w, GRID)
    found = tool.wait(w)
    scores = sorted((p.score for p in found), reverse=True)
    threshold = scores[min(2, len(scores) - 1)]  # the 3 most confident: a quick pre-labeling pass
    accepted = tool.accept_all(w, threshold=threshold)
    assert accepted >= 1
    w.tool = "auto"
    w.label = "animal"
    w.auto_segment(obj.points)
    ys, xs = np.nonzero(obj.gt)
    w.corrective_click(float(xs.mean()), float(ys.min() + 3), positive=True)
    w.label = "sky"
    w.brush([(5, 5), (60, 8), (120, 5)], radius=4)
    w.clear()
    w.undo()  # the clear is taken back: everything above stays
    w.polygon([(200, 2), (260, 2), (260, 20), (200, 20)])
    s.flush()
    final = w.label_map
    log = PromptLog.load(log_path(s.job_dir, 0))
    s.close()
    return {"job": s.job_dir, "map": final, "log": log, "accepted": accepted, "shape": (h, wd)}


def test_clear_and_accept_all_are_replayable_events(semantic_job: dict[str, Any]) -> None:
    log = semantic_job["log"]
    kinds = [e["kind"] for e in log.events]
    assert "unreplayable" not in kinds
    assert kinds.count("clear") == 2 and "proposals" in kinds, kinds
    (acc,) = [e for e in log.events if e["kind"] == "proposals"]
    assert len(acc["accepted"]) == semantic_job["accepted"]
    assert all(len(a["point"]) == 2 and len(a["box"]) == 4 for a in acc["accepted"])


def test_semantic_session_resegments_to_identical_masks(
    semantic_job: dict[str, Any], weights_path: Path, tmp_path: Path
) -> None:
    report = resegment(semantic_job["job"], tmp_path, recipe="recorded", weights=weights_path, progress=False)
    assert report.model_edits == report.reproduced == 2 + semantic_job["accepted"]
    (item,) = list(read_job_output(report.job_dir))
    np.testing.assert_array_equal(item.index_map, semantic_job["map"])
    assert report.objects and all(row["iou"] == 1.0 for row in report.objects)


def test_semantic_session_other_recipe_changes_only_model_made_objects(
    semantic_job: dict[str, Any], tmp_path: Path
) -> None:
    report = resegment(semantic_job["job"], tmp_path, recipe="fallback", progress=False)  # GrabCut: no proposals
    rows = {row["object"]: row for row in report.objects}
    assert rows["animal"]["model_made"] and rows["thing"]["model_made"] and not rows["sky"]["model_made"]
    assert rows["sky"]["iou"] == 1.0  # strokes and polygon replayed on top, exactly
    assert min(rows["animal"]["iou"], rows["thing"]["iou"]) < 0.999
    (item,) = list(read_job_output(report.job_dir))
    np.testing.assert_array_equal(item.index_map == 2, semantic_job["map"] == 2)
    assert report.objects[0]["model_made"]  # changed most comes first


def test_instance_session_resegments_to_identical_per_instance_masks(
    tmp_path: Path, grabcut_dir: Path, mobilesam: Any, weights_path: Path
) -> None:
    s, obj = _session(tmp_path, grabcut_dir, mobilesam, ["animal", "sky", "ground"], "instance")
    w = s.widget
    h, wd = obj.gt.shape
    ys, xs = np.nonzero(obj.gt)
    w.label = "animal"
    w.auto_segment(obj.points)  # instance 1, created by the model edit itself
    w.corrective_click(float(xs.mean()), float(ys.min() + 3), positive=True)
    w.object_finished()
    w.label = "ground"
    w.brush([(10, h - 8), (wd - 10, h - 8)], radius=5)  # instance 2, created by the stroke
    w.undo()  # takes back the stroke AND its instance (one step in the editor)
    w.redo()
    w.object_finished()
    sky = w.add_instance("sky")  # instance 3, explicit
    w.polygon([(200, 2), (260, 2), (260, 20), (200, 20)])
    w.brush([(5, 5), (60, 8), (120, 5)], radius=4)  # into the selected sky instance
    w.object_finished()
    w.label = "animal"
    w.brush([(20, 30), (40, 30)], radius=3)  # instance 4 ...
    w.undo()  # ... taken back with its instance
    w.undo()  # and the sky brush stroke too
    w.relabel_instance(sky, "ground")
    w.delete_instance(w.instance_ids[0])  # the animal: later positions shift down
    w.select_instance(w.instance_ids[0])  # the ground strip: a corrective click segments into it
    w.corrective_click(float(xs.mean()), float(ys.mean()), positive=True)
    w.clear()
    w.undo()
    s.flush()
    expect = _instance_masks(w.instance_map, w.instances)
    assert len(expect) == 2 and [lab for lab, _m in expect] == ["ground", "ground"]
    log = PromptLog.load(log_path(s.job_dir, 0))
    assert "unreplayable" not in [e["kind"] for e in log.events]
    s.close()

    report = resegment(s.job_dir, tmp_path / "again", recipe="recorded", weights=weights_path, progress=False)
    assert report.model_edits == report.reproduced == 3
    (item,) = list(read_job_output(report.job_dir))
    assert item.instances is not None
    got = _instance_masks(item.index_map, item.instances)
    assert [lab for lab, _m in got] == [lab for lab, _m in expect]
    for (_l, a), (_l2, b) in zip(got, expect, strict=True):
        np.testing.assert_array_equal(a, b)
    # the per-object report names the relabeled instances and knows which ones a model made
    rows = {row["object"]: row for row in report.objects}
    assert set(rows) == {"instance 1 (ground)", "instance 2 (ground)"}
    assert rows["instance 1 (ground)"]["model_made"]  # the click segmented into the selected strip
    assert not rows["instance 2 (ground)"]["model_made"]  # the relabeled sky: polygon only
    assert all(row["iou"] == 1.0 for row in report.objects)


def test_a_resumed_session_continues_the_saved_log(
    tmp_path: Path, grabcut_dir: Path, mobilesam: Any, weights_path: Path
) -> None:
    """Reopening a labeled image in a new session (a kernel restart) keeps its earlier events in the log."""
    s, obj = _session(tmp_path, grabcut_dir, mobilesam, ["animal", "sky"], "semantic")
    s.widget.auto_segment(obj.points)
    s.flush()
    s.close()
    again = LabelingSession(
        tmp_path / "images", ["animal", "sky"], tmp_path / "out", segmenter=mobilesam, prefetch=False
    )
    w = again.widget
    w.label = "sky"
    w.brush([(5, 5), (60, 8), (120, 5)], radius=4)
    again.flush()
    final = w.label_map
    log = PromptLog.load(log_path(again.job_dir, 0))
    assert [e["kind"] for e in log.events] == ["model", "stroke"]
    again.close()
    report = resegment(again.job_dir, tmp_path / "re", recipe="recorded", weights=weights_path, progress=False)
    (item,) = list(read_job_output(report.job_dir))
    np.testing.assert_array_equal(item.index_map, final)


# ---------------------------------------------------------------------------------- labels an image started with
def _job_of(w: SegmentationWidget, image: Path, tmp_path: Path) -> Path:
    """The widget's result as a Ground Truth job folder with its prompt log beside it (what a session writes)."""
    from gt_widget.segment.prelabel_output import MachineLabel, write_job

    log = w.prompts.log
    assert log is not None
    log.index, log.source_ref = 0, str(image)
    instances = w.instances if w.editor.mode == "instance" else None
    index_map = w.instance_map if instances is not None else w.label_map
    job = write_job(tmp_path, "job", w.labels, [MachineLabel(str(image), 0, index_map, instances)])
    log.save(job)
    return job


def _seed(obj: Any) -> np.ndarray:
    """An imported semantic map: the animal (label 1, its true mask), a sky band (2) on top, a ground band (3)."""
    h, wd = obj.gt.shape
    seed = np.zeros((h, wd), np.uint8)
    seed[:12] = 2
    seed[h - 15 :] = 3
    seed[obj.gt] = 1
    return seed


def test_imported_labels_are_the_logs_first_event_and_survive_resegment(
    tmp_path: Path, grabcut_dir: Path, mobilesam: Any, weights_path: Path
) -> None:
    """A pre-labeled image (``initial_value``): the log starts from its labels, so a resegment keeps them."""
    from gt_widget.imageio import load_image

    obj = load_grabcut_object(grabcut_dir, "llama")
    seed = _seed(obj)
    w = SegmentationWidget(load_image(obj.image), ["animal", "sky", "ground"], segmenter=mobilesam, initial_value=seed)
    w.label = "animal"
    w.auto_segment(obj.points)  # the model redoes the imported animal
    w.label = "sky"
    w.brush([(150, 20), (220, 20)], radius=4)
    w.undo()  # back to the model edit: the imported labels are not an undo step
    w.undo()
    np.testing.assert_array_equal(w.label_map, seed)
    w.redo()
    w.redo()
    final = w.label_map
    log = w.prompts.log
    assert log is not None
    kinds = [e["kind"] for e in log.events]
    assert kinds[0] == "initial" and kinds.count("initial") == 1, kinds
    first = log.events[0]
    assert first["model_made"] is False
    assert [o["label"] for o in first["objects"]] == ["animal", "sky", "ground"]
    job = _job_of(w, obj.image, tmp_path)

    same = resegment(job, tmp_path / "same", recipe="recorded", weights=weights_path, progress=False)
    (item,) = list(read_job_output(same.job_dir))
    np.testing.assert_array_equal(item.index_map, final)
    assert same.model_edits == same.reproduced == 1

    other = resegment(job, tmp_path / "other", recipe="fallback", progress=False)  # GrabCut
    (item,) = list(read_job_output(other.job_dir))
    changed = item.index_map != final
    assert changed.any()  # the model's animal is GrabCut's now
    # only where the model edit painted (before or now) may a pixel differ: imported sky / ground stay
    assert np.all((final[changed] == 1) | (item.index_map[changed] == 1))
    rows = {row["object"]: row for row in other.objects}
    assert rows["animal"]["model_made"] and rows["animal"]["imported"]
    assert not rows["ground"]["model_made"] and rows["ground"]["imported"]  # its pixels: the check above
    assert not rows["sky"]["model_made"] and rows["sky"]["imported"]  # imported band + a manual stroke


def test_imported_instances_are_replayed_and_reported_as_not_model_made(
    tmp_path: Path, grabcut_dir: Path, mobilesam: Any, weights_path: Path
) -> None:
    from gt_widget.groundtruth.formats import Instance, InstanceResult
    from gt_widget.imageio import load_image

    obj = load_grabcut_object(grabcut_dir, "llama")
    h, wd = obj.gt.shape
    imap = np.zeros((h, wd), np.uint8)
    imap[h - 15 :] = 1
    imap[:12, : wd // 2] = 2
    seed = InstanceResult(imap, [Instance("ground", "#2ca02c"), Instance("sky", "#1f77b4")])
    w = SegmentationWidget(
        load_image(obj.image), ["animal", "sky", "ground"], mode="instance", segmenter=mobilesam, initial_value=seed
    )
    w.label = "animal"
    w.auto_segment(obj.points)  # instance 3, model-made
    w.object_finished()
    w.relabel_instance(w.instance_ids[1], "ground")  # an imported instance relabeled
    expect = _instance_masks(w.instance_map, w.instances)
    log = w.prompts.log
    assert log is not None and [e["kind"] for e in log.events][:1] == ["initial"]
    assert [(o["value"], o["label"], o["color"]) for o in log.events[0]["objects"]] == [
        (1, "ground", "#2ca02c"),
        (2, "sky", "#1f77b4"),
    ]
    job = _job_of(w, obj.image, tmp_path)

    same = resegment(job, tmp_path / "same", recipe="recorded", weights=weights_path, progress=False)
    (item,) = list(read_job_output(same.job_dir))
    assert item.instances is not None
    got = _instance_masks(item.index_map, item.instances)
    assert [lab for lab, _m in got] == [lab for lab, _m in expect] == ["ground", "ground", "animal"]
    for (_l, a), (_l2, b) in zip(got, expect, strict=True):
        np.testing.assert_array_equal(a, b)

    other = resegment(job, tmp_path / "other", recipe="fallback", progress=False)
    rows = {row["object"]: row for row in other.objects}
    for name in ("instance 1 (ground)", "instance 2 (ground)"):
        assert not rows[name]["model_made"] and rows[name]["imported"], rows[name]
    assert rows["instance 3 (animal)"]["model_made"] and not rows["instance 3 (animal)"]["imported"]
    (item,) = list(read_job_output(other.job_dir))
    for k in (1, 2):  # imported instances: pixels outside the new animal unchanged
        keep = item.index_map != 3
        np.testing.assert_array_equal((item.index_map == k) & keep, (imap == k) & keep)


def test_labels_without_a_log_become_the_initial_event_once_across_resumes(
    tmp_path: Path, grabcut_dir: Path, mobilesam: Any, weights_path: Path
) -> None:
    """Saved labels whose log is gone (an import, an older gt-widget): the next session starts the log from
    them; sessions after it continue that log and never record the initial event again."""
    s, obj = _session(tmp_path, grabcut_dir, mobilesam, ["animal", "sky"], "semantic")
    s.widget.auto_segment(obj.points)
    s.flush()
    s.close()
    shutil.rmtree(s.job_dir / "gt-widget" / "prompt-log")
    for n, x in enumerate((5, 100)):
        again = LabelingSession(
            tmp_path / "images", ["animal", "sky"], tmp_path / "out", segmenter=mobilesam, prefetch=False
        )
        again.widget.label = "sky"
        again.widget.brush([(x, 5), (x + 40, 8)], radius=4)
        again.flush()
        final = again.widget.label_map
        log = PromptLog.load(log_path(again.job_dir, 0))
        assert [e["kind"] for e in log.events] == ["initial", *["stroke"] * (n + 1)]
        again.close()
    report = resegment(again.job_dir, tmp_path / "re", recipe="recorded", weights=weights_path, progress=False)
    (item,) = list(read_job_output(report.job_dir))
    np.testing.assert_array_equal(item.index_map, final)
    rows = {row["object"]: row for row in report.objects}
    assert not rows["animal"]["model_made"] and rows["animal"]["imported"]
