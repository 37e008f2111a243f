"""The Python side of the preview over real HTTP on 127.0.0.1: page rewriting, static JS, images (local and
a real S3-compatible server), the auto-segment endpoint, submit capture, the CLI, and JS/Python parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gt_widget.groundtruth.formats import SemanticResult, read_answer, semantic_answer
from gt_widget.palette import PALETTE
from gt_widget.preview import PreviewError, preview_template
from gt_widget.preview.server import STATIC_DIR, mask_to_rle, rle_to_mask, wrap_page
from tests.preview.helpers import extreme_points

REPO = Path(__file__).resolve().parents[2]


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def _post(url: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError as e:  # the server went away (a --once preview after its answer)
        return 599, {"error": str(e)}


# ------------------------------------------------------------------------------------------------ RLE


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.data())
def test_rle_round_trip(h: int, w: int, data: st.DataObject) -> None:
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    mask = np.array(bits, bool).reshape(h, w)
    counts = mask_to_rle(mask)
    assert sum(counts) == h * w and all(c >= 0 for c in counts)
    assert all(c > 0 for c in counts[1:]), "only the first run may be empty"
    assert (counts[0] == 0) == bool(mask.flat[0])
    assert np.array_equal(rle_to_mask(counts, h, w), mask)


def _node(script: str) -> Any:
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script], cwd=REPO / "js", capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_js_decodes_python_rle_and_shares_the_palette(rng: np.random.Generator) -> None:
    mask = rng.random((37, 53)) < 0.3
    mask[:, :5] = True
    counts = mask_to_rle(mask)
    decoded = _node(
        "import { decodeRle } from './src/rle.js';"
        f"console.log(JSON.stringify(Array.from(decodeRle({{width: 53, height: 37, counts: {json.dumps(counts)}}}))))"
    )
    assert np.array_equal(np.array(decoded, bool).reshape(37, 53), mask)
    js_palette = _node("import { PALETTE } from './src/palette.js'; console.log(JSON.stringify(PALETTE))")
    assert js_palette == list(PALETTE)


# ----------------------------------------------------------------------------------------------- page


def test_wrap_page_rewrites_the_crowd_script_and_adds_endpoints() -> None:
    page = wrap_page('<script src="https://assets.crowd.aws/crowd-html-elements.js"></script><crowd-form></crowd-form>')
    assert "assets.crowd.aws" not in page
    assert '<script src="/static/crowd-html-elements.js"></script>' in page
    assert '<meta name="gt-widget-segment-url" content="/api/segment">' in page
    assert page.startswith("<!doctype html>")
    full = wrap_page("<html><head><title>x</title></head><body><crowd-form></crowd-form></body></html>")
    assert full.index("gt-widget-submit-url") < full.index("<title>")
    assert "/static/crowd-html-elements.js" not in full  # a full page is left alone apart from the metas
    bare = wrap_page("<crowd-form></crowd-form>")
    assert '<script src="/static/crowd-html-elements.js"></script>' in bare


def test_static_js_is_the_js_source() -> None:
    assert (STATIC_DIR / "index.js").read_bytes() == (REPO / "js" / "src" / "index.js").read_bytes()
    names = {p.name for p in (REPO / "js" / "src").glob("*.js")}
    assert names == {p.name for p in STATIC_DIR.glob("*.js")}


@pytest.fixture
def llama_task(grabcut_dir: Path) -> dict[str, Any]:
    return {"taskObject": str(grabcut_dir / "images" / "llama.png"), "labels": ["llama"]}


def test_served_page_static_files_and_images(llama_task: dict[str, Any], grabcut_dir: Path) -> None:
    with preview_template("builtin:semantic", llama_task, segmenter="grabcut") as p:
        assert p.url.startswith("http://127.0.0.1:")
        status, body, ctype = _get(p.url)
        html = body.decode()
        assert status == 200 and ctype.startswith("text/html")
        assert "assets.crowd.aws" not in html and "/static/crowd-html-elements.js" in html
        src = html.split('src="', 2)[2].split('"', 1)[0]  # the element's src (after the script's)
        assert src.startswith(p.url + "images/") and src.endswith("/llama.png")
        status, data, ctype = _get(src)
        assert status == 200 and ctype == "image/png"
        assert data == (grabcut_dir / "images" / "llama.png").read_bytes()
        status, js, ctype = _get(p.url + "static/segmentation.js")
        assert status == 200 and "javascript" in ctype and b"crowd-semantic-segmentation" in js
        assert _get(p.url + "static/../preview.py")[0] == 404
        assert _get(p.url + "static/nope.js")[0] == 404
        assert _get(p.url + "images/0123/x.png")[0] == 404
        # another origin cannot use the server: foreign Host (DNS rebinding) and non-JSON posts are refused
        req = urllib.request.Request(p.url, headers={"Host": "attacker.example:80"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 403
        plain = urllib.request.Request(p.url + "api/submit", data=b"{}", headers={"Content-Type": "text/plain"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(plain, timeout=10)
        assert err.value.code == 400 and b"application/json" in err.value.read()
        assert p.submissions == []
        assert "<iframe" in p._repr_html_() and p.url in p._repr_html_()
        assert p.show().src == p.url
    with pytest.raises(OSError):
        urllib.request.urlopen(p.url, timeout=2)  # stopped: the port is closed


class RecordingSegmenter:
    """A deterministic test double of the Segmenter interface that records every call."""

    name = "recording"

    def __init__(self) -> None:
        self.shape: tuple[int, int] | None = None
        self.set_images = 0
        self.calls: list[tuple[Any, list[Any], Any]] = []

    def set_image(self, image: Any) -> None:
        self.shape = tuple(np.asarray(image).shape[:2])  # type: ignore[assignment]
        self.set_images += 1

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self.shape

    def predict(self, extreme_points: Any = None, clicks: Any = (), previous: Any = None, box: Any = None) -> Any:
        from gt_widget.segment.base import Prediction, validate_clicks, validate_extreme_points

        assert self.shape is not None
        pts = validate_extreme_points(extreme_points, self.shape)
        xy, positive = validate_clicks(clicks, self.shape)
        mask = np.zeros(self.shape, bool)
        x0, y0 = np.floor(pts.min(axis=0)).astype(int)
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
        for (x, y), pos in zip(xy.astype(int), positive, strict=True):
            mask[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3] = pos
        pred = Prediction(mask=mask, score=0.5)
        self.calls.append((pts.tolist(), [tuple(c) for c in clicks], previous))
        return pred


def test_segment_endpoint_rle_and_corrective_click_chaining(llama_task: dict[str, Any]) -> None:
    seg = RecordingSegmenter()
    with preview_template("builtin:semantic", llama_task, segmenter=seg) as p:  # type: ignore[arg-type]
        src = p.images.url_for(llama_task["taskObject"])
        pts = [[200.0, 50.0], [210.0, 300.0], [100.0, 200.0], [400.5, 180.0]]
        status, body = _post(p.url + "api/segment", {"src": src, "points": pts})
        assert status == 200, body
        h, w = 371, 513
        assert (body["width"], body["height"], body["segmenter"]) == (w, h, "recording")
        expected = np.zeros((h, w), bool)
        expected[50:301, 100:402] = True  # x from floor(100) to ceil(400.5)
        assert np.array_equal(rle_to_mask(body["counts"], h, w), expected)
        assert seg.calls[-1][2] is None and seg.set_images == 1
        # a corrective click (same points, the clicks so far plus one) gets the previous prediction
        status, body = _post(p.url + "api/segment", {"src": src, "points": pts, "clicks": [[150, 100, False]]})
        expected[98:103, 148:153] = False
        assert np.array_equal(rle_to_mask(body["counts"], h, w), expected)
        first_pred = seg.calls[0]
        assert seg.calls[1][2] is not None and seg.calls[1][1] == [(150, 100, False)]
        assert first_pred[2] is None
        _post(p.url + "api/segment", {"src": src, "points": pts, "clicks": [[150, 100, False], [300, 250, True]]})
        assert seg.calls[2][2] is not None and seg.calls[2][2] is not seg.calls[1][2]
        # new extreme points start a new object: no previous; the image is set once for all of it
        _post(p.url + "api/segment", {"src": src, "points": [[1, 1], [5, 9], [0, 5], [9, 5]]})
        assert seg.calls[3][2] is None and seg.set_images == 1
        assert body["set_image_s"] == 0


def test_segment_endpoint_with_grabcut_and_bad_requests(llama_task: dict[str, Any], grabcut_dir: Path) -> None:
    gt = np.asarray(Image.open(grabcut_dir / "masks" / "llama.png").convert("L")) > 127
    with preview_template("builtin:semantic", llama_task, segmenter="grabcut") as p:
        src = p.images.url_for(llama_task["taskObject"])
        pts = extreme_points(gt)
        status, body = _post(p.url + "api/segment", {"src": src, "points": pts})
        assert status == 200, body
        assert body["segmenter"] == "grabcut"
        got = rle_to_mask(body["counts"], *gt.shape)
        assert (got & gt).sum() / (got | gt).sum() > 0.6  # a real GrabCut answer, not an empty or full mask

        status, body = _post(p.url + "api/segment", {"src": src, "points": pts[:3]})
        assert status == 400 and "exactly 4 extreme points" in body["error"]
        status, body = _post(p.url + "api/segment", {"src": src, "points": [[9999, 1], *pts[1:]]})
        assert status == 400 and "outside" in body["error"]
        status, body = _post(p.url + "api/segment", {"src": "http://example.com/x.png", "points": pts})
        assert status == 400 and "not an image this preview serves" in body["error"]
        status, body = _post(p.url + "api/segment", {"points": pts})
        assert status == 400 and '"src"' in body["error"]


def test_submit_validates_saves_and_calls_back(llama_task: dict[str, Any], tmp_path: Path) -> None:
    got: list[dict[str, Any]] = []
    out = tmp_path / "answers" / "response.json"
    lm = np.zeros((6, 8), np.uint8)
    lm[1:3, 2:5] = 1
    good = {"crowd-semantic-segmentation": semantic_answer(lm, ["llama"])}
    with preview_template("builtin:semantic", llama_task, on_submit=got.append, save_to=out) as p:
        with pytest.raises(PreviewError, match="nothing submitted yet"):
            p.answer()
        bad = {"crowd-semantic-segmentation": {"labeledImage": {"pngImageData": "bm90IGEgcG5n"}}}
        status, body = _post(p.url + "api/submit", bad)
        assert status == 400 and "not a valid Ground Truth answer" in body["error"]
        status, body = _post(p.url + "api/submit", [1, 2])
        assert status == 400 and "JSON object" in body["error"]
        assert not out.exists() and got == []
        status, body = _post(p.url + "api/submit", good)
        assert status == 200 and body == {"ok": True, "submissions": 1, "closed": False}
        assert got == [good] and p.submissions == [good]
        status, listed, _ = _get(p.url + "api/submissions")
        assert json.loads(listed) == [good]
        result = p.answer()
        assert isinstance(result, SemanticResult) and np.array_equal(result.label_map, lm)
    saved = json.loads(out.read_text())
    assert saved["answers"][0]["workerId"] == "local-preview"
    assert saved["answers"][0]["answerContent"] == good
    assert np.array_equal(read_answer(saved).label_map, lm)  # type: ignore[union-attr]
    assert [f.name for f in out.parent.iterdir()] == ["response.json"], "no temp files left behind"


def test_bad_inputs_get_clear_errors(tmp_path: Path, llama_task: dict[str, Any]) -> None:
    with pytest.raises(PreviewError, match="template file not found"):
        preview_template(tmp_path / "missing.html", llama_task)
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(PreviewError, match="must hold a JSON object"):
        preview_template("builtin:semantic", tmp_path / "list.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(PreviewError, match="cannot read task input"):
        preview_template("builtin:semantic", tmp_path / "broken.json")
    from gt_widget.groundtruth.templates import TemplateError

    with pytest.raises(TemplateError, match="template error"):
        preview_template("{% if %}<p>", llama_task)
    with preview_template("builtin:semantic", llama_task) as p, pytest.raises(PreviewError, match="cannot serve"):
        p.images.url_for("no/such/file.png")
    with pytest.raises(PreviewError, match=r"image 'no/such\.png' not found \(looked in .*\); fix the path"):
        preview_template("builtin:semantic", {"taskObject": "no/such.png", "labels": ["a"]})


def test_s3_images_through_a_real_s3_server(
    s3_endpoint: str, grabcut_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    data = (grabcut_dir / "images" / "llama.png").read_bytes()
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="preview-bucket")
    s3.put_object(Bucket="preview-bucket", Key="in/llama.png", Body=data, ContentType="image/png")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)  # the default client (E's s3_client) finds it
    task = {"taskObject": "s3://preview-bucket/in/llama.png", "labels": ["llama"]}
    with preview_template("builtin:semantic", task, segmenter="grabcut") as p:
        assert "X-Amz-Signature" not in p.html  # grant_read_access gave a local URL, not a presigned one
        src = p.images.url_for("s3://preview-bucket/in/llama.png")
        assert src in p.html
        status, body, ctype = _get(src)
        assert status == 200 and body == data and ctype == "image/png"
        gt = np.asarray(Image.open(grabcut_dir / "masks" / "llama.png").convert("L")) > 127
        status, seg = _post(p.url + "api/segment", {"src": src, "points": extreme_points(gt)})
        assert status == 200 and seg["width"] == gt.shape[1]
        missing = p.images.url_for("s3://preview-bucket/in/missing.png")
        status, body, _ = _get(missing)
        assert status == 404 and "cannot read s3://preview-bucket/in/missing.png" in json.loads(body)["error"]


def test_cli_preview_once_saves_the_worker_response(tmp_path: Path, llama_task: dict[str, Any]) -> None:
    from tests.support.servers import free_port

    (tmp_path / "task.json").write_text(json.dumps(llama_task))
    port = free_port()
    out = tmp_path / "resp.json"
    cmd = [sys.executable, "-m", "gt_widget.cli", "template", "preview", "builtin:semantic", "--input"]
    cmd += [str(tmp_path / "task.json"), "--no-browser", "--once", "--port", str(port), "--save", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first, first + (proc.stderr.read() if proc.poll() is not None else "")
        url = first.split(" at ", 1)[1].split()[0]  # http://127.0.0.1:PORT/<token>/
        lm = np.zeros((4, 4), np.uint8)
        lm[0, 0] = 1
        answer = {"crowd-semantic-segmentation": semantic_answer(lm, ["llama"])}
        status, reply = _post(url + "api/submit", answer)
        assert status == 200 and reply["closed"] is True  # --once: the page is told the preview closed
        status, reply = _post(url + "api/submit", answer)  # a second one (if it gets in before the exit) is refused
        assert status in (400, 403, 599)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "submitted: crowd-semantic-segmentation: 4x4, labels ['llama']" in stdout
    assert np.array_equal(read_answer(json.loads(out.read_text())).label_map, lm)  # type: ignore[union-attr]

    bad_cmd = [sys.executable, "-m", "gt_widget.cli", "template", "preview", str(tmp_path / "nope.html")]
    bad = subprocess.run(
        [*bad_cmd, "--input", str(tmp_path / "task.json"), "--no-browser"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: template file not found")


def test_local_example_images_are_served_with_a_warning(llama_task: dict[str, Any], grabcut_dir: Path) -> None:
    from gt_widget.groundtruth.templates import builtin_template

    sheep = str(grabcut_dir / "images" / "sheep.jpg")
    src = builtin_template("semantic", good_examples=[(sheep, "a sheep")], bad_examples=["https://example.com/b.jpg"])
    with preview_template(src, llama_task) as p:
        assert p.local_images == [sheep]
        html = _get(p.url)[1].decode()
        served = p.images.url_for(sheep)
        assert f'src="{served}"' in html
        assert 'src="https://example.com/b.jpg"' in html  # URLs are left alone
        assert "upload them to S3" in html
        status, body, _ = _get(served)
        assert status == 200 and body == Path(sheep).read_bytes()
