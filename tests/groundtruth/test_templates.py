"""The Liquid environment behaves like Ground Truth's; built-in templates render safely and correctly."""

from __future__ import annotations

import json
import re
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gt_widget.groundtruth.instructions import ExampleImage, markdown_to_html
from gt_widget.groundtruth.templates import (
    TemplateError,
    builtin_template,
    make_environment,
    parse_s3_location,
    render_template,
)
from tests.groundtruth.conftest import check_golden
from tests.support.servers import FAKE_AWS_ENV

SAMPLE = {"taskObject": "s3://bucket/images/cat 1.jpg", "labels": ["cat", "dog"]}


def fake_presign(uri: str, expires_in: int) -> str:
    return f"https://signed.example/{uri[5:]}?X-Amz-Expires={expires_in}&X-Amz-Signature=abc"


class _Elements(HTMLParser):
    """Collects (tag, attrs) of every start tag and all text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> _Elements:
    p = _Elements()
    p.feed(markup)
    p.close()
    return p


def element(markup: str, tag: str) -> dict[str, str | None]:
    found = [attrs for t, attrs in parse(markup).tags if t == tag]
    assert len(found) == 1, f"expected one <{tag}>, found {len(found)}"
    return found[0]


# ------------------------------------------------------------------------------------------ the filters


def test_autoescape_is_on_and_escape_is_identical() -> None:
    env = make_environment(presign=fake_presign)
    out = env.from_string("{{ v }}|{{ v | escape }}").render(v="<b>'&\"")
    plain, explicit = out.split("|")
    assert plain == explicit == "&lt;b&gt;&#39;&amp;&#34;"


def test_escape_once_does_not_double_escape() -> None:
    env = make_environment(presign=fake_presign)
    assert env.from_string("{{ v | escape_once }}").render(v="&amp; <") == "&amp; &lt;"


def test_skip_autoescape_outputs_raw_html() -> None:
    env = make_environment(presign=fake_presign)
    assert env.from_string("{{ v | skip_autoescape }}").render(v="<b>x</b>") == "<b>x</b>"


def test_to_json_serialises_objects_and_escapes_for_attributes() -> None:
    env = make_environment(presign=fake_presign)
    value = {"point_number": 8, "coords": [59, 76], "name": "Zoë <x>"}
    out = env.from_string('<x data="{{ v | to_json | escape }}">').render(v=value)
    assert json.loads(element(out, "x")["data"] or "") == value
    assert env.from_string("{{ nothing | to_json }}").render() == "null"


def test_grant_read_access_presigns_s3_uris_and_https_urls() -> None:
    calls: list[tuple[str, int]] = []

    def presign(uri: str, expires_in: int) -> str:
        calls.append((uri, expires_in))
        return "https://signed/?a=1&b=2"

    env = make_environment(presign=presign, expires_in=600)
    tpl = env.from_string("{{ u | grant_read_access }}")
    assert tpl.render(u="s3://bkt/dir/a.png") == "https://signed/?a=1&amp;b=2"  # escaped for HTML, like GT
    tpl.render(u="https://s3.amazonaws.com/bkt/dir/b.png")
    tpl.render(u="https://bkt.s3.eu-west-1.amazonaws.com/dir/c%20d.png")
    assert calls == [("s3://bkt/dir/a.png", 600), ("s3://bkt/dir/b.png", 600), ("s3://bkt/dir/c d.png", 600)]
    # choice: non-S3 values pass through, undefined renders empty
    assert tpl.render(u="https://example.com/x.png") == "https://example.com/x.png"
    assert env.from_string("[{{ nope | grant_read_access }}]").render() == "[]"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://b/k/e y.jpg", ("b", "k/e y.jpg")),
        ("https://s3.amazonaws.com/b/k.jpg", ("b", "k.jpg")),
        ("https://s3.us-west-2.amazonaws.com/b/k.jpg", ("b", "k.jpg")),
        ("https://s3-us-west-2.amazonaws.com/b/k.jpg", ("b", "k.jpg")),
        ("https://my.bucket.s3.amazonaws.com/k.jpg", ("my.bucket", "k.jpg")),
        ("https://b.s3.ap-south-1.amazonaws.com/a/k.jpg", ("b", "a/k.jpg")),
    ],
)
def test_parse_s3_location(location: str, expected: tuple[str, str]) -> None:
    assert parse_s3_location(location) == expected


@pytest.mark.parametrize("location", ["s3://bucket-only", "s3:///key", "https://example.com/b/k", "ftp://x/y"])
def test_parse_s3_location_rejects(location: str) -> None:
    with pytest.raises(TemplateError, match="s3://"):
        parse_s3_location(location)


def test_expiry_is_bounded() -> None:
    with pytest.raises(TemplateError, match="7 days"):
        make_environment(presign=fake_presign, expires_in=8 * 24 * 3600)


def test_render_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="Liquid syntax"):
        render_template("{% if x %}unclosed", {})
    with pytest.raises(TemplateError, match=r"task\.input"):
        render_template("x", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TemplateError, match="not found"):
        render_template(str(tmp_path / "missing.liquid.html"), {})
    path = tmp_path / "t.liquid.html"
    path.write_text("<p>{{ task.input.taskObject }}</p>", encoding="utf-8")
    assert render_template(path, SAMPLE) == "<p>s3://bucket/images/cat 1.jpg</p>"
    assert render_template(str(path), SAMPLE) == "<p>s3://bucket/images/cat 1.jpg</p>"


# ---------------------------------------------------------------------- presigning against a real S3 server


def test_grant_read_access_urls_fetch_the_image_from_s3(s3: Any, bucket: str) -> None:
    body = Path(__file__).read_bytes()[:5000]  # any bytes; the point is they come back unchanged
    s3.put_object(Bucket=bucket, Key="images/cat 1.jpg", Body=body)
    s3.put_object(Bucket=bucket, Key="examples/good.jpg", Body=body[::-1])
    src = builtin_template("semantic", good_examples=[f"s3://{bucket}/examples/good.jpg"])
    out = render_template(src, {"taskObject": f"s3://{bucket}/images/cat 1.jpg", "labels": ["cat"]}, expires_in=900)
    url = element(out, "crowd-semantic-segmentation")["src"] or ""
    assert url.startswith("http://127.0.0.1:") and "X-Amz-Signature=" in url and "X-Amz-Expires=900" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == body
    example = next(attrs["src"] for tag, attrs in parse(out).tags if tag == "img")
    with urllib.request.urlopen(example or "", timeout=10) as resp:
        assert resp.read() == body[::-1]
    # the secret key never appears in a presigned URL
    assert FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in out


# ------------------------------------------------------------------------------------- built-in templates


@pytest.mark.parametrize("kind", ["semantic", "instance"])
def test_builtin_template_has_the_documented_structure(kind: str) -> None:
    name = f"crowd-{kind}-segmentation"
    src = builtin_template(kind, header="Find the pets")  # type: ignore[arg-type]
    assert '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>' in src
    assert 'src="{{ task.input.taskObject' in src and "grant_read_access }}" in src
    assert 'labels="{{ task.input.labels | to_json | escape }}"' in src
    out = render_template(src, SAMPLE, presign=fake_presign)
    tags = [t for t, _ in parse(out).tags]
    assert tags.index("crowd-form") < tags.index(name) < tags.index("full-instructions")
    assert "short-instructions" in tags
    attrs = element(out, name)
    assert attrs["name"] == name
    assert attrs["header"] == "Find the pets"
    assert json.loads(attrs["labels"] or "") == ["cat", "dog"]
    assert attrs["src"] == fake_presign("s3://bucket/images/cat 1.jpg", 3600)
    assert "initial-value" not in attrs  # not an adjustment task


def test_builtin_semantic_adjustment_initial_value_from_task_input() -> None:
    initial = {"labelMappings": {"cat": {"color": "#2ca02c"}}, "src": "s3://bucket/prior/0.png"}
    out = render_template(builtin_template("semantic"), {**SAMPLE, "initialValue": initial}, presign=fake_presign)
    value = json.loads(element(out, "crowd-semantic-segmentation")["initial-value"] or "")
    assert value == {"labelMappings": initial["labelMappings"], "src": fake_presign("s3://bucket/prior/0.png", 3600)}


def test_builtin_instance_adjustment_initial_value_from_task_input() -> None:
    instances = [{"color": "#2ca02c", "label": "cat"}, {"color": "#1f77b4", "label": "cat"}]
    task = {**SAMPLE, "initialValue": {"instances": instances, "src": "s3://bucket/prior/0.png"}}
    out = render_template(builtin_template("instance"), task, presign=fake_presign)
    value = json.loads(element(out, "crowd-instance-segmentation")["initial-value"] or "")
    assert value["instances"] == instances


def test_builtin_adjustment_from_prior_manifest_line() -> None:
    color_map = {
        "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.8},
        "1": {"class-name": 'ca\'t "x"', "hex-color": "#2ca02c", "confidence": 0.8},
        "2": {"class-name": "dog", "hex-color": "#1f77b4", "confidence": 0.8},
    }
    line = {
        "source-ref": "s3://b/i.jpg",
        "pets-ref": "s3://b/o.png",
        "pets-ref-metadata": {"internal-color-map": color_map},
    }
    src = builtin_template("semantic", prior_label_attribute="pets-ref")
    out = render_template(src, {**SAMPLE, "manifestLine": line}, presign=fake_presign)
    value = json.loads(element(out, "crowd-semantic-segmentation")["initial-value"] or "")
    assert value == {
        "src": fake_presign("s3://b/o.png", 3600),
        "labelMappings": {'ca\'t "x"': {"color": "#2ca02c"}, "dog": {"color": "#1f77b4"}},
    }


def test_passthrough_task_input_uses_source_ref_and_baked_labels() -> None:
    """Custom jobs: the PassThrough pre-annotation Lambda hands over the manifest line itself (§2)."""
    src = builtin_template("instance", labels=["cat", "<dog>"])
    out = render_template(src, {"source-ref": "s3://b/k.jpg"}, presign=fake_presign)
    attrs = element(out, "crowd-instance-segmentation")
    assert attrs["src"] == fake_presign("s3://b/k.jpg", 3600)
    assert json.loads(attrs["labels"] or "") == ["cat", "<dog>"]


HOSTILE = "<script>alert('x')</script> & \"quoted\" {{ task.input.taskObject }} {% raw %}"


def test_hostile_text_renders_escaped_nowhere_executable() -> None:
    src = builtin_template(
        "semantic",
        header=HOSTILE,
        short_instructions=HOSTILE + "\n\n![<img onerror=alert(1)>](s3://b/x.jpg)",
        full_instructions="# " + HOSTILE + "\n\n- [click](javascript:alert(1))",
        good_examples=[ExampleImage("s3://b/good.jpg", HOSTILE)],
        bad_examples=[('https://example.com/bad.png" onerror="alert(1)', HOSTILE)],
    )
    task = {"taskObject": "s3://b/k.jpg", "labels": ["<script>alert(1)</script>", "a&b", 'q"uote']}
    out = render_template(src, task, presign=fake_presign)
    doc = parse(out)
    tags = [t for t, _ in doc.tags]
    assert tags.count("script") == 1  # only crowd-html-elements.js
    for _tag, attrs in doc.tags:
        assert not any(k.startswith("on") for k in attrs), attrs
        for value in attrs.values():
            assert not (value or "").lower().startswith("javascript:")
    attrs = element(out, "crowd-semantic-segmentation")
    assert attrs["header"] == HOSTILE  # shown verbatim, Liquid not evaluated
    assert json.loads(attrs["labels"] or "") == task["labels"]
    assert "<script>alert" not in out
    assert HOSTILE in "".join(doc.text)  # the text appears as text


def test_bad_example_locations_are_refused() -> None:
    with pytest.raises(TemplateError, match="cannot be embedded"):
        builtin_template("semantic", good_examples=["s3://b/it's.jpg"])
    with pytest.raises(TemplateError, match="semantic"):
        builtin_template("polygon")  # type: ignore[arg-type]


def test_markdown_subset() -> None:
    out = markdown_to_html("# Title\n\nSome **bold** and *it* and `c<d`.\n\n1. one\n2. two\n\n- a\n- b")
    assert out == (
        "<h3>Title</h3>\n<p>Some <strong>bold</strong> and <em>it</em> and <code>c&lt;d</code>.</p>\n"
        "<ol><li>one</li><li>two</li></ol>\n<ul><li>a</li><li>b</li></ul>"
    )


def test_builtin_templates_golden() -> None:
    for kind in ("semantic", "instance"):
        src = builtin_template(
            kind,  # type: ignore[arg-type]
            header="Segment the pets",
            short_instructions="Paint **every** pet.",
            full_instructions="1. Read.\n2. Paint.",
            good_examples=[("s3://bucket/examples/good.jpg", "tight edges")],
            bad_examples=[("s3://bucket/examples/bad.jpg", "sloppy edges")],
        )
        check_golden(f"builtin_{kind}.liquid.html", src)
        check_golden(f"builtin_{kind}.rendered.html", render_template(src, SAMPLE, presign=fake_presign))


def test_rendered_html_is_well_formed_enough() -> None:
    out = render_template(builtin_template("semantic"), SAMPLE, presign=fake_presign)
    assert not re.search(r"\{\{|\{%", out)  # no unrendered Liquid left


def test_instance_adjustment_from_passthrough_task_input() -> None:
    """PassThrough hands over the manifest line itself: the prior result is at task.input.<attr> (§2)."""
    instances = [{"color": "#2ca02c", "label": "cat"}, {"color": "#1f77b4", "label": "cat"}]
    line = {"source-ref": "s3://b/i.jpg", "pets-ref": "s3://b/o.png", "pets-ref-metadata": {"instances": instances}}
    out = render_template(
        builtin_template("instance", labels=["cat"], prior_label_attribute="pets-ref"), line, presign=fake_presign
    )
    value = json.loads(element(out, "crowd-instance-segmentation")["initial-value"] or "")
    assert value == {"src": fake_presign("s3://b/o.png", 3600), "instances": instances}


# ------------------------------------------------------------------------------ issue 12: fidelity details


def test_string_literals_are_autoescaped_as_in_the_developer_guide() -> None:
    """DG's filter example: {{ "Have you read 'James & the Giant Peach'?" }} renders with &#39; and &amp;."""
    env = make_environment(presign=fake_presign)
    out = env.from_string("""{{ "Have you read 'James & the Giant Peach'?" }}""").render()
    assert out == "Have you read &#39;James &amp; the Giant Peach&#39;?"
    assert env.from_string('{% assign t = "<b>" %}{{ t }}{{ "a&b" | upcase }}').render() == "&lt;b&gt;A&amp;B"
    assert env.from_string('{{ "<i>x</i>" | skip_autoescape }}').render() == "<i>x</i>"
    assert env.from_string('{{ "a&b" | escape }}|{{ "a&amp;b" | escape_once }}').render() == "a&amp;b|a&amp;b"
    assert env.from_string('{% if "a&b" == v %}same{% endif %}').render(v="a&b") == "same"


def test_other_python_liquid_environments_keep_their_own_behaviour() -> None:
    from liquid import Environment

    make_environment(presign=fake_presign)
    assert Environment(autoescape=True).from_string('{{ "a&b" }}').render() == "a&b"  # python-liquid's rule


def test_presigned_urls_use_the_buckets_region(s3: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3.create_bucket(Bucket="eu-photos", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="eu-photos", Key="cat.jpg", Body=b"meow")
    out = render_template("{{ task.input.taskObject | grant_read_access }}", {"taskObject": "s3://eu-photos/cat.jpg"})
    url = out.replace("&amp;", "&")
    assert "%2Feu-west-1%2Fs3%2Faws4_request" in url  # signed for the bucket's region, not the default
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"meow"


def test_presign_client_names_the_regional_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from gt_widget.groundtruth.templates import s3_client

    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    for bucket, host in (
        ("bkt", "https://bkt.s3.eu-west-1.amazonaws.com/"),
        ("my.bkt", "https://s3.eu-west-1.amazonaws.com/my.bkt/"),
    ):
        url = s3_client("eu-west-1", bucket=bucket).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "k.png"}, ExpiresIn=60
        )
        assert url.startswith(host + "k.png?"), url
        assert "%2Feu-west-1%2Fs3%2F" in url


def test_presigning_still_works_when_the_region_cannot_be_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens: the look-up fails at once
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    start = time.monotonic()
    out = render_template("{{ task.input.taskObject | grant_read_access }}", {"taskObject": "s3://b/k.jpg"})
    assert time.monotonic() - start < 20
    assert "X-Amz-Signature=" in out and "%2Fus-west-2%2Fs3%2F" in out  # the default region, as before
