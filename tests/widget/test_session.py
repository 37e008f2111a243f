"""LabelingSession: Ground Truth's output layout, atomic autosave, resume after a restart, navigation, S3, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gt_widget.errors import GtWidgetError, LabelError
from gt_widget.groundtruth.formats import (
    INSTANCE_ELEMENT_NAME,
    SEMANTIC_ELEMENT_NAME,
    InstanceResult,
    SemanticResult,
    read_answer,
    read_consolidated_png,
)
from gt_widget.sources import s3_client
from gt_widget.widget import LabelingSession, SessionError
from gt_widget.widget import session as session_mod
from gt_widget.widget.testing import BoxSegmenter
from tests.support.sessions import LABELS
from tests.support.sessions import box_session as _session
from tests.support.sessions import make_images as _images


def test_saved_files_are_ground_truths_format(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in")
    s = _session([str(p) for p in imgs], tmp_path / "out", job_name="my-job")
    w = s.widget
    w.auto_segment([(10, 5), (30, 20), (20, 5), (20, 30)])
    w.label = "dog"
    w.brush([(50, 40), (55, 40)], radius=3)
    s.flush()
    answer_path, png_path = s.saved_files()  # type: ignore[misc]
    job = tmp_path / "out" / "my-job"
    assert answer_path.parent == job / "annotations" / "worker-response" / "iteration-1" / "0"
    assert png_path.parent == job / "annotations" / "consolidated-annotation" / "output"
    # Ground Truth's worker-response names, YYYY-MM-DD_HH:MM:SS.json (reference §8)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.json", answer_path.name)
    assert png_path.name.startswith("0_") and png_path.suffix == ".png"
    response = json.loads(answer_path.read_text())
    (answer,) = response["answers"]
    assert set(answer) >= {"answerContent", "acceptanceTime", "submissionTime", "timeSpentInSeconds", "workerId"}
    assert list(answer["answerContent"]) == [SEMANTIC_ELEMENT_NAME]
    result = read_answer(response, LABELS)
    assert isinstance(result, SemanticResult)
    assert (result.label_map == w.label_map).all()
    assert (w.label_map == 1).any() and (w.label_map == 2).any()
    assert (read_consolidated_png(png_path.read_bytes()) == w.label_map).all()
    assert Image.open(png_path).mode == "P"
    # one line per input line, in input order; images not labeled yet are their input line (output.py doc)
    line, *rest = [json.loads(x) for x in s.output_manifest_path.read_text().splitlines()]
    assert rest == [{"source-ref": str(imgs[1])}, {"source-ref": str(imgs[2])}]
    assert line["source-ref"] == str(imgs[0])
    assert line["label-ref"] == str(png_path)
    meta = line["label-ref-metadata"]
    assert meta["type"] == "groundtruth/semantic-segmentation"
    assert meta["job-name"] == "labeling-job/my-job"
    assert meta["internal-color-map"]["1"] == {"class-name": "cat", "hex-color": "#2ca02c", "confidence": 0.0}
    # only the latest version of the object is kept, and no temp files remain
    assert [p.name for p in answer_path.parent.iterdir()] == [answer_path.name]
    assert [p.name for p in png_path.parent.iterdir()] == [png_path.name]
    assert not list(job.rglob("*.tmp"))
    s.close()


def test_every_edit_autosaves_and_undo_is_saved_too(tmp_path: Path) -> None:
    s = _session(_images(tmp_path / "in"), tmp_path / "out")
    w = s.widget
    assert s.saved_files() is None and s.progress_text == "0 / 3 labeled"
    w.brush([(5, 5)], radius=2)
    s.flush()
    first = s.result()
    assert first is not None and int((first.label_map == 1).sum()) == int((w.label_map == 1).sum()) > 0  # type: ignore[union-attr]
    w.undo()
    s.flush()
    after = s.result()
    assert isinstance(after, SemanticResult) and not after.label_map.any()
    assert s.progress_text == "1 / 3 labeled"  # an emptied image still has a saved (empty) answer


def test_resume_after_restart(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in", n=4)
    manifest = tmp_path / "in.manifest"
    manifest.write_text("".join(json.dumps({"source-ref": str(p), "batch": i}) + "\n" for i, p in enumerate(imgs)))
    s = _session(manifest, tmp_path / "out")
    s.widget.brush([(10, 10)], radius=4)
    s.go(2)
    s.widget.label = "dog"
    s.widget.polygon([(30, 10), (60, 10), (60, 40)])
    maps = {0: s.result(0).label_map.copy(), 2: s.widget.label_map.copy()}  # type: ignore[union-attr]
    s.flush()
    del s  # the "kernel" goes away; a new one builds everything from the files

    s2 = _session(manifest, tmp_path / "out")
    assert s2.index == 2
    assert s2.progress_text == "2 / 4 labeled"
    assert (s2.widget.label_map == maps[2]).all()
    s2.go(0)
    assert (s2.widget.label_map == maps[0]).all()
    lines = [json.loads(x) for x in s2.output_manifest_path.read_text().splitlines()]
    assert [x["batch"] for x in lines] == [0, 1, 2, 3]  # one line per input line, keys pass through, in order
    assert [x["batch"] for x in lines if "label-ref" in x] == [0, 2]
    # editing after resume keeps working and keeps one version per object
    s2.widget.erase([(10, 10)], radius=10)
    s2.flush()
    assert not s2.result(0).label_map.any()  # type: ignore[union-attr]
    assert len(list((s2.job_dir / "annotations" / "worker-response" / "iteration-1" / "0").iterdir())) == 1


def test_resume_after_dying_mid_save(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in")
    s = _session(imgs, tmp_path / "out")
    s.widget.brush([(20, 20)], radius=5)
    s.flush()
    _answer_path, png_path = s.saved_files()  # type: ignore[misc]
    expected = s.widget.label_map.copy()
    # the kernel died after writing the worker response but before the PNG and the manifest; a temp file is
    # left from a write that never reached os.replace
    png_path.unlink()
    s.output_manifest_path.write_text("")
    (png_path.parent / ".0_x.png.abc.tmp").write_bytes(b"half a png")
    s2 = _session(imgs, tmp_path / "out")
    assert (s2.widget.label_map == expected).all()
    assert png_path.exists() and (read_consolidated_png(png_path.read_bytes()) == expected).all()
    assert sum("label-ref" in x for x in s2.output_manifest_path.read_text().splitlines()) == 1
    assert not list(s2.job_dir.rglob("*.tmp"))


def test_a_failed_write_leaves_the_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _session(_images(tmp_path / "in"), tmp_path / "out")
    s.widget.brush([(20, 20)], radius=5)
    s.flush()
    before = s.output_manifest_path.read_bytes()
    saved_before = s.saved_files()

    def boom(_fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(session_mod.os, "fsync", boom)
    s.widget.brush([(40, 30)], radius=5)
    s.flush()
    assert s.last_save_error is not None and "disk full" in s.last_save_error
    assert s.output_manifest_path.read_bytes() == before
    assert s.saved_files() == saved_before
    assert not list(s.job_dir.rglob("*.tmp"))
    monkeypatch.undo()
    s.widget.brush([(41, 30)], radius=5)
    s.flush()
    assert s.last_save_error is None and s.saved_files() != saved_before


def test_navigation_and_progress(tmp_path: Path) -> None:
    s = _session(_images(tmp_path / "in", n=3), tmp_path / "out")
    assert (s.index, s.prev()) == (0, 0)
    assert s.next() == 1 and s.next() == 2 and s.next() == 2
    s.widget.brush([(1, 1)])
    assert s.go(-3) == 0
    assert s.next_unlabeled() == 1
    assert "1 / 3 labeled" in s._progress.value and "image 2 of 3" in s._progress.value
    with pytest.raises(SessionError, match="out of range"):
        s.go(3)
    s._ui_call(lambda: s.go(7))  # a bad jump from the UI goes to the status line
    assert s.notice is not None and "out of range" in s._status.value
    assert s.labels == LABELS and s.mode == "semantic" and len(s.sources) == 3 and s.label_attribute == "label-ref"


def test_instance_mode_saves_and_resumes(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in")
    s = LabelingSession(imgs, LABELS, tmp_path / "out", mode="instance", segmenter=BoxSegmenter(), prefetch=False)
    w = s.widget
    w.add_instance("cat")
    w.auto_segment([(5, 5), (20, 20), (5, 12), (20, 12)])
    w.add_instance("dog")
    w.brush([(40, 30)], radius=4)
    w.add_instance("cat")
    w.brush([(55, 10)], radius=3)
    s.flush()
    answer_path, png_path = s.saved_files()  # type: ignore[misc]
    assert png_path is None  # a custom job has no consolidated PNG (reference §8)
    response = json.loads(answer_path.read_text())
    assert list(response["answers"][0]["answerContent"]) == [INSTANCE_ELEMENT_NAME]
    result = read_answer(response, LABELS)
    assert isinstance(result, InstanceResult)
    assert [i.label for i in result.instances] == ["cat", "dog", "cat"]
    assert (result.instance_map == w.instance_map).all()
    # written as a custom Ground Truth job writes it: "<attr>": {} + metadata naming the worker response
    line = json.loads(s.output_manifest_path.read_text().splitlines()[0])
    assert s.label_attribute == "label" and line["label"] == {}
    meta = line["label-metadata"]
    assert meta["type"] == "groundTruth/custom" and meta["job_name"] == "labeling-job/gt-widget-local"
    assert meta["human-annotated"] == "yes" and meta["worker-response-ref"] == str(answer_path)
    assert set(meta) == {"job_name", "type", "human-annotated", "creation_date", "worker-response-ref"}
    expected = w.instance_map.copy()
    s2 = LabelingSession(imgs, LABELS, tmp_path / "out", mode="instance", segmenter=BoxSegmenter(), prefetch=False)
    assert (s2.widget.instance_map == expected).all()
    assert [i.label for i in s2.widget.instances] == ["cat", "dog", "cat"]


def test_s3_manifest_session(s3_endpoint: str, tmp_path: Path) -> None:
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="session-in")
    imgs = _images(tmp_path / "up", n=2)
    lines = []
    for i, p in enumerate(imgs):
        client.upload_file(str(p), "session-in", f"imgs/{p.name}")
        lines.append(json.dumps({"source-ref": f"s3://session-in/imgs/{p.name}", "id": f"x{i}"}))
    client.put_object(Bucket="session-in", Key="in.manifest", Body="\n".join(lines).encode())
    s = _session(
        "s3://session-in/in.manifest", tmp_path / "out", s3_endpoint_url=s3_endpoint, output_uri="s3://out-bucket/jobs"
    )
    assert s.sources == ["s3://session-in/imgs/img0.png", "s3://session-in/imgs/img1.png"]
    assert s.widget.image.shape == (48, 64, 3)
    s.next()
    s.widget.brush([(3, 3)])
    s.flush()
    first, line = [json.loads(x) for x in s.output_manifest_path.read_text().splitlines()]
    assert first == {"source-ref": "s3://session-in/imgs/img0.png", "id": "x0"}
    assert line["source-ref"] == "s3://session-in/imgs/img1.png" and line["id"] == "x1"
    assert line["label-ref"].startswith(
        "s3://out-bucket/jobs/gt-widget-local/annotations/consolidated-annotation/output/1_"
    )


def test_unreadable_image_is_reported_and_session_continues(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in", n=2)
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"this is not a png")
    s = _session([imgs[0], bad, imgs[1]], tmp_path / "out")
    s.next()
    assert s.error is not None and "broken.png" in s.error and "cannot be shown" in s._status.value
    s.widget.brush([(2, 2)])  # drawing on the placeholder saves nothing for the broken image
    s.flush()
    assert not s.is_labeled(1)
    s.next()
    assert s.error is None and s.index == 2
    s.widget.brush([(2, 2)])
    s.flush()
    assert s.is_labeled(2)


def test_odd_images_load_correctly(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    Image.fromarray(np.full((20, 30), 40000, np.uint16)).save(folder / "a16.png")
    Image.new("L", (30, 20), 128).save(folder / "b_gray.png")
    Image.new("RGBA", (30, 20), (255, 0, 0, 0)).save(folder / "c_rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display: the browser shows it 20 wide, 30 high
    Image.new("RGB", (30, 20), (0, 0, 255)).save(folder / "d_exif.jpg", exif=exif)
    s = _session(folder, tmp_path / "out")
    shapes = []
    for i in range(4):
        s.go(i)
        assert s.error is None
        shapes.append(s.widget.image.shape)
        s.widget.brush([(5, 5)])
    s.flush()
    assert shapes == [(20, 30, 3), (20, 30, 3), (20, 30, 3), (30, 20, 3)]
    s.go(2)
    assert s.widget.image[0, 0].tolist() == [255, 255, 255]  # transparent composited over white
    assert s.result(3).label_map.shape == (30, 20)  # type: ignore[union-attr]


@pytest.mark.slow
def test_huge_image(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (10000, 8000), (90, 90, 90)).save(big, compress_level=1)
    s = _session([big], tmp_path / "out")
    s.widget.brush([(9000, 7000), (9500, 7500)], radius=30)
    assert s.flush(timeout=300)
    result = s.result()
    assert result is not None and result.label_map.shape == (8000, 10000)  # type: ignore[union-attr]
    assert result.label_map[7000, 9000] == 1 and result.label_map[0, 0] == 0  # type: ignore[union-attr]


def test_bad_arguments(tmp_path: Path) -> None:
    imgs = _images(tmp_path / "in")
    for labels, match in (([], "empty"), (["a", "a"], "unique"), ("cat", "list of strings"), ([""], "blank")):
        with pytest.raises(LabelError, match=match):
            LabelingSession(imgs, labels, tmp_path / "out")  # type: ignore[arg-type]
    with pytest.raises(SessionError, match="mode"):
        LabelingSession(imgs, LABELS, tmp_path / "out", mode="panoptic")
    with pytest.raises(SessionError, match="-ref"):
        LabelingSession(imgs, LABELS, tmp_path / "out", label_attribute="label")
    with pytest.raises(SessionError, match="job_name"):
        LabelingSession(imgs, LABELS, tmp_path / "out", job_name="bad name!")
    _session(imgs, tmp_path / "out")
    with pytest.raises(SessionError, match="different labels"):
        LabelingSession(imgs, ["cat", "bird"], tmp_path / "out", segmenter=BoxSegmenter())
    with pytest.raises(SessionError, match="different sources"):
        LabelingSession(imgs[:2], LABELS, tmp_path / "out", segmenter=BoxSegmenter())
    with pytest.raises(GtWidgetError, match="holds no image files"):
        LabelingSession(tmp_path / "out", LABELS, tmp_path / "out2")


def test_next_image_embedding_is_prefetched(tmp_path: Path) -> None:
    import time

    class Recording(BoxSegmenter):
        def __init__(self) -> None:
            super().__init__()
            self.images: list[int] = []

        def set_image(self, image: object) -> None:
            super().set_image(image)  # type: ignore[arg-type]
            self.images.append(int(np.asarray(image)[0, 0, 0]))  # the red value tells the images apart

        def prepare(self, image: object) -> object:  # the background encoding of a Prefetchable segmenter
            self.images.append(int(np.asarray(image)[0, 0, 0]))
            return super().prepare(image)  # type: ignore[arg-type]

    seg = Recording()
    s = LabelingSession(_images(tmp_path / "in"), LABELS, tmp_path / "out", segmenter=seg, prefetch=True)
    deadline = time.monotonic() + 30
    while 30 not in seg.images and time.monotonic() < deadline:  # image 1 (red 30) embedded in the background
        time.sleep(0.05)
    assert s.widget.wait_idle(30)
    assert seg.images.count(0) == 1 and seg.images.count(30) == 1, seg.images
    s.next()
    assert s.widget.wait_idle(30)
    time.sleep(0.3)
    assert s.widget.wait_idle(30)
    assert seg.images.count(30) == 1, seg.images  # restored from the prefetch, not recomputed
    assert seg.images.count(60) == 1, seg.images  # and image 2 is prefetched in turn


def test_navigation_says_why_it_cannot_move_and_disables_prev_on_the_first_image(tmp_path: Path) -> None:
    """Finding 8: Prev on image 1 and "Next unlabeled" with all done did nothing and said nothing."""
    s = _session(_images(tmp_path / "in"), tmp_path / "out")
    assert s.index == 0 and s._prev_button.disabled and not s._next_button.disabled
    s._prev_button.click()
    assert s.index == 0 and "already at the first image" in s._status.value
    for i in range(len(s)):
        s.go(i)
        s.widget.brush([(3, 3)], radius=2)
        s.flush()
    s._unlabeled_button.click()
    assert f"all {len(s)} images are labeled" in s._status.value
    assert s._next_button.disabled  # on the last image
    s.widget.handle_key_down("ArrowLeft")  # keys navigate too
    assert s.index == len(s) - 2 and not s._prev_button.disabled
    s.widget.handle_key_down("PageDown")
    assert s.index == len(s) - 1
    s.close()


def test_enter_in_the_jump_box_goes_there_and_an_autosave_never_resets_the_typed_number(tmp_path: Path) -> None:
    """Finding 8: Enter in the jump box did nothing; Go right after an edit went to the current image."""
    s = _session(_images(tmp_path / "in"), tmp_path / "out")
    s._jump.value = 3  # the user types 3...
    s.widget.brush([(3, 3)], radius=2)  # ...right after an edit, whose autosave refreshes the bar
    s.flush()
    s._refresh_ui()
    assert s._jump.value == 3
    s._jump_button.click()
    assert s.index == 2
    s.widget.scope._handle(None, {"type": "key", "key": "Enter", "target": "input", "value": "1"})
    assert s.index == 0
    s.widget.scope._handle(None, {"type": "key", "key": "Enter", "target": "input", "value": "x"})
    assert s.index == 0 and "type an image number" in s._status.value
    s.close()


def test_coming_back_to_an_image_brings_its_undo_history_back(tmp_path: Path) -> None:
    """Finding 8: undo history was gone when you came back to an image."""
    s = _session(_images(tmp_path / "in"), tmp_path / "out")
    s.widget.brush([(3, 3)], radius=2)
    s.widget.brush([(10, 10)], radius=2)
    s.next()
    assert s.widget.history == (0, 0)
    s.prev()
    assert s.widget.history == (2, 0) and "2 undo steps kept" in s.widget.status
    assert s.widget.undo() and s.widget.label_map[10, 10] == 0 and s.widget.label_map[3, 3] == 1
    s.close()
