"""The preview in a real browser (Chromium through Playwright): rendered built-in and custom templates,
painting with the stand-in elements, auto-segment through the kernel's segmenter, and the exact answer JSON
that Ground Truth's elements submit, decoded with gt_widget.groundtruth.formats.read_answer."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gt_widget.groundtruth.formats import InstanceResult, SemanticResult, consolidated_png, read_answer
from gt_widget.preview import preview_template
from gt_widget.segment import load_segmenter
from tests.preview.helpers import ImagePointer, corrective_click, extreme_points, iou

pytestmark = pytest.mark.browser

SEM = "crowd-semantic-segmentation"
INST = "crowd-instance-segmentation"


def _ready(page: Any, tag: str) -> None:
    page.wait_for_selector(f"{tag}[data-ready]", timeout=20_000)


def _submit(page: Any, preview: Any, count: int = 1) -> dict[str, Any]:
    page.locator("crowd-form crowd-button").last.click()
    # wait in the browser (this keeps Playwright's event loop running) until the page saw the server's reply
    page.wait_for_function(f"() => document.querySelector('crowd-form').dataset.submitted === '{count}'")
    return preview.wait_for_submission(timeout=5, count=count)


def _png_rgba(answer: dict[str, Any]) -> np.ndarray:
    data = base64.b64decode(answer["labeledImage"]["pngImageData"])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


@pytest.mark.weights
def test_semantic_brush_and_auto_segment_submit_exact_answer(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray], weights_path: Path
) -> None:
    image, gt, void = llama
    seg = load_segmenter("mobilesam", weights=weights_path)
    task = {"taskObject": str(image), "labels": ["llama", "sky"]}
    with preview_template("builtin:semantic", task, segmenter=seg) as preview:
        page, outside = open_page(preview.url)
        _ready(page, SEM)
        ptr = ImagePointer(page, SEM)

        # auto-segment the llama (label 1, selected by default) from its GT extreme points
        ptr.tool("auto-segment")
        for x, y in extreme_points(gt):
            ptr.click(x, y)
        page.wait_for_function(
            f"() => !document.querySelector('{SEM}').hasAttribute('data-busy') && "
            f"document.querySelector('{SEM}').getIndexMap().data.some(v => v === 1)",
            timeout=60_000,
        )
        assert preview.segmenter is seg

        # the refined answer (if the segmenter refines this object) replaces the first in the same undo step
        page.wait_for_function(f"() => !document.querySelector('{SEM}').hasAttribute('data-refining')", timeout=90_000)
        assert page.locator(SEM).evaluate("e => e._undo.done.length") == 1

        # one corrective click (protocol: the interior-most pixel of the largest error region) straight after
        # it, in the same tool: left click = the pixel belongs to the object, right click = it does not; the
        # kernel refines the prediction it sent last
        pts = extreme_points(gt)
        first = preview.last_prediction
        assert first is not None
        (cx, cy), positive = corrective_click(first.mask, gt)
        ptr.click(cx, cy, button="left" if positive else "right")
        page.wait_for_function(
            f"() => !document.querySelector('{SEM}').hasAttribute('data-busy') && "
            f"document.querySelector('{SEM}')._undo.done.length === 1 && "
            f"document.querySelector('{SEM}')._auto?.clicks.length === 1",
            timeout=60_000,
        )
        page.wait_for_function(
            f"() => !document.querySelector('{SEM}').hasAttribute('data-busy') && "
            f"!document.querySelector('{SEM}').hasAttribute('data-refining')",
            timeout=90_000,
        )
        sent = preview.last_prediction  # the refined mask the kernel sent to the page
        assert sent is not None

        # a brush stroke in label 2 across the sky-ish top-left corner, away from the llama
        page.locator(f"{SEM} .labels li[data-label='sky'] .row").click()
        page.locator(f"{SEM} input.brush-size").fill("9")
        ptr.tool("brush")
        ptr.drag([(10.0, 12.0), (60.0, 12.0), (60.0, 30.0)])

        content = _submit(page, preview)
        assert outside == [], f"the preview fetched from outside 127.0.0.1: {outside}"

    assert list(content) == [SEM]
    answer = content[SEM]
    assert set(answer) == {"inputImageProperties", "labelMappings", "labeledImage"}
    h, w = gt.shape
    assert answer["inputImageProperties"] == {"height": h, "width": w}
    assert answer["labelMappings"] == {"llama": {"color": "#2ca02c"}, "sky": {"color": "#1f77b4"}}

    # every pixel is transparent or exactly one label colour: painted without antialiasing
    rgba = _png_rgba(answer)
    colours = {tuple(c) for c in rgba.reshape(-1, 4)}
    assert colours <= {(0, 0, 0, 0), (0x2C, 0xA0, 0x2C, 255), (0x1F, 0x77, 0xB4, 255)}, colours

    result = read_answer(content, labels=["llama", "sky"])
    assert isinstance(result, SemanticResult)
    llama_mask = result.mask("llama")
    brushed = result.mask("sky")
    # the brush: a 9-px-wide band along the stroke, painted in label 2's colour
    assert brushed[12, 10:61].all() and brushed[12:31, 60].all()
    assert brushed[12 - 4 : 12 + 5, 30].all() and not brushed[12 + 6, 30]
    assert 600 < brushed.sum() < 1200
    # the auto-segment: the segmenter's own mask for the same 4 points, pixel for pixel (outside the brush)
    # the page painted exactly the mask the kernel sent (outside the brush stroke painted over it)
    expected = np.asarray(sent.mask)
    assert np.array_equal(llama_mask | (brushed & expected), expected)
    # ... which is the segmenter's refinement of the first mask by that click (same calls made here;
    # a handful of boundary pixels may differ between threads' float reductions)
    refined = seg.predict(extreme_points=pts, clicks=[(cx, cy, positive)], previous=first)
    assert np.count_nonzero(refined.mask != expected) <= 50
    assert np.count_nonzero(expected != first.mask) > 0, "the corrective click changed the mask"
    assert iou(llama_mask | (brushed & gt), gt, void=void) >= 0.9


def test_instance_add_instance_two_instances(open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray]) -> None:
    image, _, _ = llama
    task = {"taskObject": str(image), "labels": ["stone", "llama"]}
    with preview_template("builtin:instance", task, segmenter="grabcut") as preview:
        page, outside = open_page(preview.url)
        _ready(page, INST)
        ptr = ImagePointer(page, INST)
        add = page.locator(f"{INST} li[data-label='stone'] button.add-instance")

        # painting before any instance exists is refused with a message
        ptr.drag([(5.0, 5.0), (20.0, 5.0)])
        assert "add instance" in page.locator(f"{INST} .message").inner_text()

        add.click()  # stone #1: a polygon (a 40x30 rectangle with corners on pixel edges)
        ptr.tool("polygon")
        for x, y in [(99.5, 199.5), (139.5, 199.5), (139.5, 229.5), (99.5, 229.5)]:
            ptr.click(x, y)
        ptr.click(99.5, 199.5)  # clicking the first corner closes the polygon
        add.click()  # stone #2: a brush dot train
        ptr.tool("brush")
        page.locator(f"{INST} input.brush-size").fill("5")
        ptr.drag([(300.0, 50.0), (340.0, 50.0)])
        rows = page.locator(f"{INST} li[data-label='stone'] .instance")
        assert rows.count() == 2
        assert rows.nth(1).inner_text().strip() == "stone #2"
        content = _submit(page, preview)
        assert outside == []

    answer = content[INST]
    assert set(answer) == {"inputImageProperties", "instances", "labeledImage"}
    assert answer["instances"] == [{"color": "#2ca02c", "label": "stone"}, {"color": "#1f77b4", "label": "stone"}]
    result = read_answer(content)
    assert isinstance(result, InstanceResult)
    first, second = result.masks()
    expected = np.zeros_like(first)
    expected[200:230, 100:140] = True
    assert np.array_equal(first, expected), "polygon fill must cover exactly the pixel centres inside"
    assert second[50, 300:341].all() and second[48:53, 320].all() and not second[54, 320]
    assert not (first & second).any()
    assert result.label_map(["stone", "llama"]).max() == 1


def test_initial_value_adjustment_and_modified_flag(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    image, gt, _ = llama
    h, w = gt.shape
    # the prior job's consolidated output: an 8-bit palette PNG, 0 = BACKGROUND, 2 = Dog (#1f77b4)
    prior = np.zeros((h, w), np.uint8)
    prior[gt] = 2
    prior[:20, :20] = 1
    (tmp_path / "prior.png").write_bytes(consolidated_png(prior, ["#2ca02c", "#1f77b4"]))
    task = {
        "taskObject": str(image),
        "labels": ["Cat", "Dog"],
        "initialValue": {
            "labelMappings": {"Cat": {"color": "#2ca02c"}, "Dog": {"color": "#1f77b4"}},
            "src": str(tmp_path / "prior.png"),
        },
    }
    with preview_template("builtin:semantic", task, segmenter="grabcut") as preview:
        assert "initial-value=" in preview.html
        page, outside = open_page(preview.url)
        _ready(page, SEM)
        untouched = _submit(page, preview)
        ptr = ImagePointer(page, SEM)
        ptr.tool("eraser")
        page.locator(f"{SEM} input.brush-size").fill("3")
        ptr.drag([(2.0, 2.0), (2.0, 2.0)])
        changed = _submit(page, preview, count=2)
        page.locator(f"{SEM} [data-action=undo]").click()  # back to the initial map -> not modified
        reverted = _submit(page, preview, count=3)
        assert outside == []

    first = read_answer(untouched, labels=["Cat", "Dog"])
    assert isinstance(first, SemanticResult)
    assert first.initial_value_modified is False
    assert np.array_equal(first.label_map, prior)
    second = read_answer(changed, labels=["Cat", "Dog"])
    assert second.initial_value_modified is True
    erased = np.zeros_like(prior, dtype=bool)
    erased[1:4, 1:4] = True  # pixel centres within 1.5 px of (2, 2)
    assert np.array_equal(second.label_map != prior, erased)
    assert (second.label_map[erased] == 0).all()
    assert read_answer(reverted, labels=["Cat", "Dog"]).initial_value_modified is False


CUSTOM = """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-semantic-segmentation id="seg" name="annotatedResult" src="{{ task.input.taskObject | grant_read_access }}"
    header="{{ task.input.question }}" labels="['Cat', 'Dog']">
    <full-instructions header="How to paint"><p id="full-text">Paint every cat. Really every cat.</p></full-instructions>
    <short-instructions><p id="short-text">Paint cats</p></short-instructions>
  </crowd-semantic-segmentation>
  <input type="hidden" name="seen" value="yes">
</crowd-form>
<script>
  window.allowSubmit = false;
  document.querySelector("crowd-form").addEventListener("submit", (e) => {
    if (!window.allowSubmit) {
      e.preventDefault();  // a template's own validation
      window.refused = (window.refused || 0) + 1;
    }
  });
  document.addEventListener("all-crowd-elements-ready", () => {
    const seg = document.querySelector("#seg");
    seg.labels = [...seg.labels, "Bird's nest"];
  });
</script>
"""


def test_custom_template_labels_property_instructions_undo(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    image, _, _ = llama
    (tmp_path / "t.liquid.html").write_text(CUSTOM)
    shutil_copy = tmp_path / "img.png"
    shutil_copy.write_bytes(image.read_bytes())
    (tmp_path / "task.json").write_text(json.dumps({"taskObject": "img.png", "question": "Where are the <cats>?"}))
    with preview_template(tmp_path / "t.liquid.html", tmp_path / "task.json", segmenter="grabcut") as preview:
        page, outside = open_page(preview.url)
        _ready(page, SEM)
        seg = page.locator(SEM)
        assert seg.evaluate("e => e.labels") == ["Cat", "Dog", "Bird's nest"]
        assert page.locator(f"{SEM} .header").inner_text() == "Where are the <cats>?"
        names = page.locator(f"{SEM} .labels li.label .name").all_inner_texts()
        assert names == ["Cat (1)", "Dog (2)", "Bird's nest (3)"]

        # short instructions in the sidebar; full instructions in a dialog behind "View full instructions"
        assert page.locator("#short-text").is_visible()
        assert not page.locator("#full-text").is_visible()
        page.get_by_text("View full instructions").click()
        assert page.locator("#full-text").is_visible()
        assert page.locator("full-instructions dialog h2").inner_text() == "How to paint"
        page.locator("full-instructions button.close").click()
        assert not page.locator("#full-text").is_visible()

        ptr = ImagePointer(page, SEM)
        page.keyboard.press("3")  # label 3 by its number
        ptr.drag([(40.0, 40.0), (80.0, 40.0)])
        painted = seg.evaluate("e => e.getIndexMap().data.filter(v => v === 3).length")
        assert painted > 100
        page.keyboard.press("Control+z")
        assert seg.evaluate("e => e.getIndexMap().data.filter(v => v === 3).length") < painted
        page.keyboard.press("Control+z")
        assert seg.evaluate("e => e.getIndexMap().data.some(v => v !== 0)") is False
        page.keyboard.press("Control+Shift+z")
        page.keyboard.press("Control+Shift+z")
        assert seg.evaluate("e => e.getIndexMap().data.filter(v => v === 3).length") == painted

        # opacity acts on the overlay only
        page.locator(f"{SEM} input.opacity").fill("25")
        assert page.locator(f"{SEM} canvas.overlay").evaluate("c => c.style.opacity") == "0.25"

        page.locator("crowd-form crowd-button").last.click()  # the template's submit listener refuses
        page.wait_for_function("() => window.refused === 1")
        assert page.locator("crowd-form").get_attribute("data-submitted") is None
        assert page.locator("crowd-form").evaluate("f => f._submitting") is False  # nothing in flight
        assert preview.submissions == []
        page.evaluate("window.allowSubmit = true")
        content = _submit(page, preview)
        assert outside == []
        assert page.errors == []  # type: ignore[attr-defined]

    assert content["seen"] == "yes"
    assert content["annotatedResult"]["labelMappings"] == {"Bird's nest": {"color": "#ff7f0e"}}
    assert "initialValueModified" not in content["annotatedResult"]
    result = read_answer(content, labels=["Cat", "Dog", "Bird's nest"])
    assert int(result.mask("Bird's nest").sum()) == painted


def test_instance_initial_value_keeps_prior_instances(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    image, gt, _ = llama
    h, w = gt.shape
    prior = np.zeros((h, w), np.uint8)
    prior[gt] = 1
    prior[10:40, 10:50] = 2
    (tmp_path / "prior.png").write_bytes(consolidated_png(prior, ["#2ca02c", "#d62728"]))
    instances = [{"color": "#2ca02c", "label": "llama"}, {"color": "#d62728", "label": "rock"}]
    task = {
        "taskObject": str(image),
        "labels": ["llama", "rock"],
        "initialValue": {"instances": instances, "src": str(tmp_path / "prior.png")},
    }
    with preview_template("builtin:instance", task, segmenter="grabcut") as preview:
        page, outside = open_page(preview.url)
        _ready(page, INST)
        assert page.locator(f"{INST} .instance").count() == 2
        page.locator(f"{INST} li[data-label='rock'] button.add-instance").click()
        ptr = ImagePointer(page, INST)
        ptr.tool("fill")
        ptr.click(300, 5)  # flood-fill the background region that holds (300, 5) with the new instance
        content = _submit(page, preview)
        assert outside == []
    answer = content[INST]
    # the new instance takes the first palette colour no prior instance uses
    assert answer["instances"] == [*instances, {"color": "#1f77b4", "label": "rock"}]
    result = read_answer(content)
    assert isinstance(result, InstanceResult)
    assert np.array_equal(result.instance_map == 1, prior == 1)
    assert np.array_equal(result.instance_map == 2, prior == 2)
    assert np.array_equal(result.instance_map == 3, prior == 0), "fill takes the connected unpainted region"


def test_template_mistakes_show_a_message_on_the_page(
    open_page: Any, llama: tuple[Path, np.ndarray, np.ndarray]
) -> None:
    image, _, _ = llama
    source = (
        '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>\n<crowd-form>\n'
        '<crowd-semantic-segmentation id="a" name="a" src="{{ task.input.taskObject | grant_read_access }}" '
        'labels="cat, dog"></crowd-semantic-segmentation>\n'
        '<crowd-semantic-segmentation id="b" name="b" src="{{ task.input.taskObject | grant_read_access }}" '
        "labels=\"['cat']\" initial-value='{\"labelMappings\": '></crowd-semantic-segmentation>\n</crowd-form>"
    )
    with preview_template(source, {"taskObject": str(image)}) as preview:
        page, outside = open_page(preview.url)
        page.wait_for_selector("#a[data-ready]")
        page.wait_for_selector("#b[data-ready]")
        assert "labels must be an array such as" in page.locator("#a .message").inner_text()
        assert "initial-value is not valid JSON" in page.locator("#b .message").inner_text()
        assert page.locator("#b .labels li.label").count() == 1  # the task stays usable
        assert outside == []
