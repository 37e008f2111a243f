"""The preview's auto-segment experience in Chromium (issue 12 and issue 10's preview items): the fast first
answer painted before the refined one, corrective clicks straight after a result (left adds, right click and
Shift+click remove), small images fitted to the work area, instances added but never painted kept in the
answer, and a ``once`` preview that says it is closed after its answer. Screenshots go to
``$GT_WIDGET_SCREENSHOTS`` (default: pytest's tmp dir) to be looked at."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gt_widget.groundtruth.formats import InstanceResult, read_answer
from gt_widget.preview import preview_template
from tests.preview.helpers import ImagePointer, TwoStageSegmenter

pytestmark = pytest.mark.browser

SEM = "crowd-semantic-segmentation"
INST = "crowd-instance-segmentation"


def _shot(page: Any, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("GT_WIDGET_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"preview-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _count(page: Any, tag: str, value: int = 1) -> int:
    return int(page.locator(tag).evaluate(f"e => e.getIndexMap().data.filter(v => v === {value}).length"))


def test_first_answer_is_painted_before_the_refined_one(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    image, _, _ = llama
    seg = TwoStageSegmenter(delay=1.5, inset=10)
    with preview_template("builtin:semantic", {"taskObject": str(image), "labels": ["llama"]}, segmenter=seg) as p:  # type: ignore[arg-type]
        page, outside = open_page(p.url)
        page.wait_for_selector(f"{SEM}[data-ready]", timeout=20_000)
        page.evaluate(
            f"""() => {{
              const e = document.querySelector('{SEM}');
              window.stages = [];
              e.addEventListener('auto-segment-first', () => window.stages.push(['first', performance.now(),
                e.getIndexMap().data.filter(v => v === 1).length, e.hasAttribute('data-refining')]));
              e.addEventListener('auto-segment-done', () => window.stages.push(['done', performance.now(),
                e.getIndexMap().data.filter(v => v === 1).length, e.hasAttribute('data-refining')]));
            }}"""
        )
        ptr = ImagePointer(page, SEM)
        ptr.tool("auto-segment")
        for x, y in [(250, 60), (250, 300), (100, 180), (400, 180)]:
            ptr.click(x, y)
        # while the refinement runs, the page already shows the first answer and says it is refining
        page.wait_for_selector(f"{SEM}[data-refining]", timeout=20_000)
        first_box = (300 - 60 - 20 + 1) * (400 - 100 - 20 + 1)
        assert _count(page, SEM) == first_box
        assert "refining" in page.locator(f"{SEM} .message").inner_text()
        _shot(page, tmp_path, "first-answer")
        page.wait_for_function("() => window.stages.some(s => s[0] === 'done')", timeout=30_000)
        stages = page.evaluate("window.stages")
        timings = page.locator(SEM).evaluate("e => e.autoSegmentTimings")
        assert outside == []
    (_, t_first, n_first, refining), (_, t_done, n_done, still) = stages
    assert n_first == first_box and refining is True
    assert n_done == (300 - 60 + 1) * (400 - 100 + 1) and still is False, "the refined mask replaced the first"
    assert t_done - t_first > 1000, "the first answer came about 1.5 s before the refined one"
    assert timings["first"] < timings["refined"]
    assert [c[0] for c in seg.calls] == ["set_image", "first", "refine-start", "refined"]


def test_corrective_clicks_left_adds_right_and_shift_remove(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    image, _, _ = llama
    seg = TwoStageSegmenter(delay=12, inset=0)  # the refinement is still running when the worker corrects
    with preview_template("builtin:semantic", {"taskObject": str(image), "labels": ["llama"]}, segmenter=seg) as p:  # type: ignore[arg-type]
        page, outside = open_page(p.url)
        page.wait_for_selector(f"{SEM}[data-ready]", timeout=20_000)
        help_text = page.locator(f"{SEM} .help").inner_text()
        assert "right click (or Shift+click) removes" in help_text and "Left click adds" in help_text
        ptr = ImagePointer(page, SEM)
        ptr.tool("auto-segment")
        for x, y in [(250, 60), (250, 300), (100, 180), (400, 180)]:
            ptr.click(x, y)
        page.wait_for_selector(f"{SEM}[data-refining]", timeout=20_000)
        assert seg.refine_started.wait(10)
        assert "right click" in page.locator(f"{SEM} .message").inner_text()

        def settled(n_clicks: int) -> None:
            page.wait_for_function(
                f"() => {{ const e = document.querySelector('{SEM}'); return !e.hasAttribute('data-busy') && "
                f"e._auto && e._auto.clicks.length === {n_clicks}; }}",
                timeout=20_000,
            )

        ptr.click(200, 150, button="right")  # right click inside: removes
        settled(1)
        assert page.locator(f"{SEM} .message").inner_text().startswith("Auto-segment: done")
        page.keyboard.down("Shift")
        ptr.click(300, 150)  # Shift+click inside: removes (trackpads)
        page.keyboard.up("Shift")
        settled(2)
        ptr.click(450, 180)  # a plain left click outside: adds, without switching tools
        settled(3)
        _shot(page, tmp_path, "corrective-clicks")
        index = np.array(page.locator(SEM).evaluate("e => Array.from(e.getIndexMap().data)"), np.uint8)
        assert page.locator(SEM).evaluate("e => e._undo.done.length") == 1, "corrections replace the result"
        assert page.locator(SEM).evaluate("e => e._tool") == "auto-segment"

        # Enter finishes the object: the next left clicks place extreme points of a new one
        page.keyboard.press("Enter")
        ptr.click(20, 20)
        assert page.locator(SEM).evaluate("e => e._extreme.length") == 1
        assert outside == []
        assert page.errors == []  # type: ignore[attr-defined]
    clicks = [c for c in seg.calls if c[0] == "predict"]
    events = [c[0] for c in seg.calls]
    # the corrections were answered while the (superseded) refinement was still running, not after it
    assert events.index("refine-start") < events.index("predict")
    assert "refined" not in events[: events.index("predict") + 3]
    assert [c[1] for c in clicks] == [
        [(200, 150, False)],
        [(200, 150, False), (300, 150, False)],
        [(200, 150, False), (300, 150, False), (450, 180, True)],
    ]
    mask = index.reshape(371, 513) == 1
    assert not mask[150, 200] and not mask[150, 300] and mask[180, 450] and mask[100, 250]
    assert mask.sum() == (241 * 301) - 2 * 25 + 25


def test_small_images_fill_the_work_area(open_page: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    small = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    Image.fromarray(small).save(tmp_path / "small.png")
    with preview_template("builtin:semantic", {"taskObject": str(tmp_path / "small.png"), "labels": ["a"]}) as p:
        page, outside = open_page(p.url)
        page.wait_for_selector(f"{SEM}[data-ready]", timeout=20_000)
        box = page.locator(f"{SEM} canvas.ui").bounding_box()
        area = page.locator(SEM).evaluate("e => e.shadowRoot.querySelector('.workarea').clientWidth")
        zoom = float(page.locator(SEM).get_attribute("data-zoom") or 0)
        _shot(page, tmp_path, "small-image")
        # enlarged to fill the area (up to 8x), pixels stay sharp; a click still lands on the right pixel
        assert zoom == 8 or abs(box["width"] - area) <= 2, (zoom, box, area)
        assert box["width"] >= 60 * 7.9
        ptr = ImagePointer(page, SEM)
        ptr.click(59, 39)  # the brush at the bottom-right pixel
        index = np.array(page.locator(SEM).evaluate("e => Array.from(e.getIndexMap().data)")).reshape(40, 60)
        assert index[39, 59] == 1 and index[0, 0] == 0
        assert outside == []


def test_instances_added_but_never_painted_are_submitted(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    image, _, _ = llama
    with preview_template("builtin:instance", {"taskObject": str(image), "labels": ["stone", "llama"]}) as p:
        page, outside = open_page(p.url)
        page.wait_for_selector(f"{INST}[data-ready]", timeout=20_000)
        page.locator(f"{INST} li[data-label='llama'] button.add-instance").click()  # never painted
        page.locator(f"{INST} li[data-label='stone'] button.add-instance").click()
        ptr = ImagePointer(page, INST)
        ptr.tool("brush")
        ptr.drag([(30.0, 30.0), (60.0, 30.0)])
        page.locator("crowd-form crowd-button").last.click()
        page.wait_for_function("() => document.querySelector('crowd-form').dataset.submitted === '1'")
        content = p.wait_for_submission(timeout=5)
        assert outside == []
    answer = content[INST]
    assert answer["instances"] == [{"color": "#2ca02c", "label": "llama"}, {"color": "#1f77b4", "label": "stone"}]
    result = read_answer(content)
    assert isinstance(result, InstanceResult)
    first, second = result.masks()
    assert not first.any() and second[30, 30:61].all()  # the same shape Python's instance_answer writes


def test_once_preview_says_it_is_closed_after_submit(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    image, _, _ = llama
    with preview_template("builtin:semantic", {"taskObject": str(image), "labels": ["llama"]}, once=True) as p:
        page, outside = open_page(p.url)
        page.wait_for_selector(f"{SEM}[data-ready]", timeout=20_000)
        page.locator("crowd-form crowd-button").last.click()
        page.wait_for_selector("crowd-form[data-closed]", timeout=20_000)
        status = page.locator("crowd-form").evaluate("f => f.shadowRoot.querySelector('.status').textContent")
        assert "This preview is now closed" in status
        assert page.locator("crowd-form crowd-button").last.get_attribute("disabled") == ""
        _shot(page, tmp_path, "closed")
        assert len(p.submissions) == 1
        page.locator("crowd-form").evaluate("f => f.submit()")  # a scripted second submit is refused
        assert "closed" in page.locator("crowd-form").evaluate("f => f.shadowRoot.querySelector('.status').textContent")
        assert len(p.submissions) == 1
        assert outside == []
