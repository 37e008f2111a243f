"""Ground Truth worker task templates: a Liquid environment that behaves like Ground Truth's, and built-ins.

Facts (../shared/reference/ground-truth.md §1, §2): templates are HTML + Liquid + Crowd HTML Elements;
autoescape is on; Ground Truth adds the filters ``escape``, ``escape_once``, ``skip_autoescape``,
``to_json`` and ``grant_read_access``; the only variable is ``task.input`` (the pre-annotation Lambda's
``taskInput``). Side: the kernel renders (for previews and tests); in a real job Ground Truth renders the
*source* we upload, so the source must never contain user text that Liquid could evaluate
(see ``gt_widget.groundtruth.instructions``).

Choices where the reference is silent:
- ``grant_read_access`` of an empty/undefined value renders ``""``; of a value that is not an S3 location
  (``https://example.com/x.jpg``, ``data:`` URLs, relative paths) renders it unchanged.
- ``to_json`` of an undefined value renders ``null``; it writes compact JSON with non-ASCII kept.
- Undefined variables render as empty strings (Liquid's default), as they do in Ground Truth's previews.
- String literals are escaped too (``{{ "James & the Giant Peach" }}`` renders ``James &amp; the Giant
  Peach``, as the developer guide's filter example shows, reference §8). python-liquid marks literals safe
  under autoescape; ``GroundTruthEnvironment`` turns that off for its own templates only (see
  ``_escape_string_literals``), other python-liquid environments in the process are unaffected.
- Presigned URLs embed the access key id and, with temporary credentials, the session token: they are
  bearer secrets like in Ground Truth itself. Only *rendered* HTML contains them, never the template source.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from liquid import Environment, Markup
from liquid.exceptions import LiquidError
from liquid.undefined import Undefined

from gt_widget.groundtruth.formats import INSTANCE_ELEMENT_NAME, SEMANTIC_ELEMENT_NAME
from gt_widget.groundtruth.instructions import (
    ExampleImage,
    TemplateError,
    escape_text,
    image_src_liquid,
    is_s3_location,
    markdown_to_html,
)

__all__ = [
    "CROWD_ELEMENTS_JS",
    "ExampleImage",
    "Presigner",
    "TemplateError",
    "boto3_presigner",
    "builtin_template",
    "make_environment",
    "parse_s3_location",
    "render_template",
    "s3_client",
]

CROWD_ELEMENTS_JS = "https://assets.crowd.aws/crowd-html-elements.js"
MAX_PRESIGN_EXPIRY = 7 * 24 * 3600
"""SigV4 presigned URLs live at most 7 days."""

Presigner = Callable[[str, int], str]
"""``presign(uri, expires_in) -> https URL``; ``uri`` is an ``s3://bucket/key`` URI."""

TemplateKind = Literal["semantic", "instance"]

_VIRTUAL_HOST = re.compile(r"^(?P<bucket>.+)\.s3([.\-](?P<region>[a-z0-9\-]+))?\.amazonaws\.com(\.cn)?$", re.IGNORECASE)
_PATH_HOST = re.compile(r"^s3([.\-](?P<region>[a-z0-9\-]+))?\.amazonaws\.com(\.cn)?$", re.IGNORECASE)


# ------------------------------------------------------------------------------------------ S3 locations


def parse_s3_location(location: str) -> tuple[str, str]:
    """``s3://bucket/key`` or an S3 https URL (path or virtual-hosted style) -> (bucket, key)."""
    if location.startswith("s3://"):
        bucket, _, key = location[5:].partition("/")
    else:
        parts = urlsplit(location)
        host = parts.hostname or ""
        path = unquote(parts.path.lstrip("/"))
        virtual = _VIRTUAL_HOST.match(host)
        if parts.scheme == "https" and virtual and not _PATH_HOST.match(host):
            bucket, key = virtual.group("bucket"), path
        elif parts.scheme == "https" and _PATH_HOST.match(host):
            bucket, _, key = path.partition("/")
        else:
            raise TemplateError(f"{location!r} is not an S3 location: use s3://bucket/key or an S3 https URL")
    if not bucket or not key:
        raise TemplateError(f"S3 location {location!r} needs both a bucket and a key, as in s3://bucket/key.jpg")
    return bucket, key


def _custom_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client(region: str | None = None, *, bucket: str | None = None, quick: bool = False) -> Any:
    """A boto3 S3 client from the usual credential chain; endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.

    A custom endpoint (a local S3-compatible server) gets path-style addressing, which every such
    server supports. With ``region`` and ``bucket`` and no custom endpoint the client uses that region's own
    S3 host (``https://<bucket>.s3.<region>.amazonaws.com``; path style for bucket names with dots, which
    virtual hosting over HTTPS cannot serve), so presigned URLs name the host and region S3 expects.
    """
    import boto3
    from botocore.config import Config

    endpoint = _custom_endpoint()
    session = boto3.session.Session()
    style = "path" if endpoint else "auto"
    if endpoint is None and region and bucket:  # presigning: the bucket's regional host
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        endpoint = f"https://s3.{region}.{suffix}"
        style = "path" if "." in bucket else "virtual"
    config = Config(signature_version="s3v4", s3={"addressing_style": style})
    if quick:  # a look-up that must not hold a render up offline: short timeouts, no retries
        config = config.merge(Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1}))
    return session.client(
        "s3", region_name=region or session.region_name or "us-east-1", endpoint_url=endpoint, config=config
    )


def bucket_region(client: Any, bucket: str) -> str | None:
    """The region ``bucket`` lives in (``x-amz-bucket-region`` of HeadBucket, which S3 sends even with a
    403 or 301 answer; else GetBucketLocation), or None when neither says."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        headers = client.head_bucket(Bucket=bucket).get("ResponseMetadata", {}).get("HTTPHeaders", {})
    except ClientError as exc:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    except BotoCoreError:
        headers = {}
    region = headers.get("x-amz-bucket-region")
    if region:
        return str(region)
    try:
        location = client.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except (BotoCoreError, ClientError):
        return None
    return str(location) if location else "us-east-1"  # S3 reports us-east-1 as an empty constraint


def boto3_presigner() -> Presigner:
    """A ``Presigner`` that signs GET requests with boto3, in each bucket's own region (looked up once per
    bucket, clients reused): a URL signed for another region, or on the global host, is refused by S3."""
    lock = threading.Lock()
    clients: dict[tuple[str | None, bool], Any] = {}
    regions: dict[str, str | None] = {}

    def client_for(region: str | None, bucket: str) -> Any:
        key = (region, "." in bucket)
        if key not in clients:
            clients[key] = s3_client(region, bucket=bucket, quick=region is None)
        return clients[key]

    def presign(uri: str, expires_in: int) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = parse_s3_location(uri)
        try:
            with lock:
                if bucket not in regions:
                    regions[bucket] = bucket_region(client_for(None, bucket), bucket)
                client = client_for(regions[bucket], bucket)
            url: str = client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
            )
        except (BotoCoreError, ClientError) as exc:
            raise TemplateError(
                f"cannot presign {uri!r}: {type(exc).__name__}. Configure AWS credentials (aws configure, "
                "AWS_PROFILE or the AWS_* environment variables) or pass presign= to render without AWS"
            ) from None
        return url

    return presign


# ---------------------------------------------------------------------------------------------- filters


def _to_json(value: Any) -> str:
    if isinstance(value, Undefined):
        return "null"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _skip_autoescape(value: Any) -> Markup:
    return Markup("" if value is None or isinstance(value, Undefined) else str(value))


class GroundTruthEnvironment(Environment):
    """python-liquid's ``Environment`` with Ground Truth's escaping: autoescape on, string literals included."""

    escape_string_literals = True


_literal_lock = threading.Lock()
_literal_patched = False


def _escape_string_literals() -> None:
    """Make string literals plain (escapable) text in ``GroundTruthEnvironment`` renders.

    python-liquid 2 evaluates a string literal to ``Markup`` (never escaped) whenever autoescape is on and
    offers no option to change it; this wraps ``StringLiteral.evaluate`` once so that, for environments
    whose ``escape_string_literals`` is true, a literal is ordinary text that output escapes like any value.
    ``tests/groundtruth/test_templates.py`` pins both behaviours.
    """
    global _literal_patched
    with _literal_lock:
        if _literal_patched:
            return
        from liquid.builtin.expressions.primitive import StringLiteral

        library_evaluate = StringLiteral.evaluate

        def evaluate(self: StringLiteral, context: Any) -> Any:
            if getattr(context.env, "escape_string_literals", False):
                return self.value
            return library_evaluate(self, context)

        StringLiteral.evaluate = evaluate  # type: ignore[method-assign]
        _literal_patched = True


def make_environment(presign: Presigner | None = None, expires_in: int = 3600) -> Environment:
    """A python-liquid environment that behaves like Ground Truth's (autoescape on + GT's filters).

    ``presign(uri, expires_in) -> URL`` implements ``grant_read_access``; by default boto3 signs with the
    usual credential chain and region. ``expires_in`` is in seconds (1 s .. 7 days).
    """
    if not 1 <= int(expires_in) <= MAX_PRESIGN_EXPIRY:
        raise TemplateError(f"expires_in={expires_in}: presigned URLs live 1 to {MAX_PRESIGN_EXPIRY} s (7 days)")
    signer = presign or boto3_presigner()
    expiry = int(expires_in)

    def grant_read_access(value: Any) -> str:
        if value is None or isinstance(value, Undefined):
            return ""
        uri = str(value).strip()
        if not uri or not is_s3_location(uri):
            return uri  # choice: non-S3 URLs pass through unchanged
        bucket, key = parse_s3_location(uri)
        return signer(f"s3://{bucket}/{key}", expiry)

    _escape_string_literals()
    env = GroundTruthEnvironment(autoescape=True)
    # python-liquid's own escape / escape_once already honour autoescape (they return Markup, so an
    # explicit `| escape` is not escaped twice), exactly GT's documented behaviour; registered by name
    # here so the environment states every filter Ground Truth adds.
    env.add_filter("escape", env.filters["escape"])
    env.add_filter("escape_once", env.filters["escape_once"])
    env.add_filter("skip_autoescape", _skip_autoescape)
    env.add_filter("to_json", _to_json)
    env.add_filter("grant_read_access", grant_read_access)
    return env


# -------------------------------------------------------------------------------------------- rendering


def _template_source(template: str | os.PathLike[str]) -> str:
    if isinstance(template, os.PathLike):
        path = Path(template)
    else:
        if "\n" in template or "{" in template or "<" in template or len(template) > 4096:
            return template
        path = Path(template)
        try:
            exists = path.is_file()
        except OSError:
            return template
        if not exists:
            if re.fullmatch(r"[^\s]+\.(html?|liquid)", template, re.IGNORECASE):
                raise TemplateError(f"template file {template!r} not found; check the path")
            return template
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template {str(path)!r}: {exc}") from None


def render_template(
    template: str | os.PathLike[str],
    task_input: Mapping[str, Any],
    presign: Presigner | None = None,
    expires_in: int = 3600,
) -> str:
    """Render a worker task template to HTML, with ``task_input`` as ``task.input``.

    ``template``: Liquid source text, or a path to a file (a ``str`` naming an existing file is read; a
    ``str`` that looks like a file name, ``*.html`` / ``*.htm`` / ``*.liquid``, but does not exist is an error).
    """
    if not isinstance(task_input, Mapping):
        raise TemplateError(
            f"task input must be a JSON object (it becomes task.input), got {type(task_input).__name__}; "
            'for example {"taskObject": "s3://bucket/key.jpg", "labels": ["cat", "dog"]}'
        )
    source = _template_source(template)
    env = make_environment(presign=presign, expires_in=expires_in)
    try:
        return env.from_string(source).render(task={"input": dict(task_input)})
    except LiquidError as exc:
        raise TemplateError(f"template error: {exc}. Fix the Liquid syntax near the line shown") from None


# ------------------------------------------------------------------------------------ built-in templates

_DEFAULT_HEADER = {
    "semantic": "Paint every object of the listed labels in this image",
    "instance": "Outline each object of the listed labels in this image, one instance per object",
}
_DEFAULT_SHORT = {
    "semantic": "Choose a label, then paint all pixels of every object with that label. Use Auto-segment: "
    "click the top-most, bottom-most, left-most and right-most points of an object.",
    "instance": "Choose a label and add one instance per object. Use Auto-segment: click the top-most, "
    "bottom-most, left-most and right-most points of each object.",
}
_DEFAULT_FULL = {
    "semantic": "1. **Read** the labels and look at the good and bad examples.\n"
    "2. **Choose** a label and paint every object of that label; pixels you do not paint are background.\n"
    "3. **Refine** the edges with the brush, eraser or polygon tools, then submit.",
    "instance": "1. **Read** the labels and look at the good and bad examples.\n"
    "2. **Add an instance** under a label for every separate object, and paint that object only.\n"
    "3. **Refine** the edges with the brush, eraser or polygon tools, then submit.",
}


def _as_example(item: ExampleImage | str | tuple[str, str] | Mapping[str, str]) -> ExampleImage:
    if isinstance(item, ExampleImage):
        return item
    if isinstance(item, str):
        return ExampleImage(src=item)
    if isinstance(item, tuple) and len(item) == 2:
        return ExampleImage(src=str(item[0]), caption=str(item[1]))
    if isinstance(item, Mapping) and "src" in item:
        return ExampleImage(src=str(item["src"]), caption=str(item.get("caption", "")))
    raise TemplateError(f"cannot use {item!r} as an example image: give a path/URI, (src, caption) or ExampleImage")


def _examples_html(title: str, color: str, examples: Sequence[ExampleImage]) -> str:
    if not examples:
        return ""
    parts = [f'<h3><span style="color: {color}">{title}</span></h3>']
    for ex in examples:
        caption = f"<figcaption>{escape_text(ex.caption)}</figcaption>" if ex.caption else ""
        parts.append(
            f'<figure><img src="{image_src_liquid(ex.src)}" alt="{escape_text(ex.caption or title)}" '
            f'style="max-width: 100%">{caption}</figure>'
        )
    return "\n      ".join(parts)


def _labels_expression(labels: Sequence[str] | None) -> str:
    if labels is None:
        return "{{ task.input.labels | to_json | escape }}"
    # Fallback when the pre-annotation Lambda passes the manifest line through (custom jobs, §2): the
    # labels are baked in as HTML-escaped JSON, braces neutralised so Liquid leaves them alone.
    baked = escape_text(json.dumps(list(labels), ensure_ascii=False))
    return "{% if task.input.labels %}{{ task.input.labels | to_json | escape }}{% else %}" + baked + "{% endif %}"


def _initial_value(kind: TemplateKind, prior_label_attribute: str | None) -> str:
    """``initial-value`` for adjustment jobs (§1.4).

    Single-quoted, so the literal JSON quotes fit inside; literal JSON braces are written as ``&#123;`` /
    ``&#125;`` (the browser decodes them in the attribute) so they never touch a Liquid delimiter.
    """
    lb, rb = "&#123;", "&#125;"
    field = "labelMappings" if kind == "semantic" else "instances"
    from_input = (
        f'initial-value=\'{lb}"{field}": {{{{ task.input.initialValue.{field} | to_json }}}}, '
        f'"src": "{{{{ task.input.initialValue.src | grant_read_access }}}}"{rb}\''
    )
    if not prior_label_attribute:
        return "{% if task.input.initialValue %}" + from_input + "{% endif %}"
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,126}", prior_label_attribute):
        raise TemplateError(
            f"prior label attribute {prior_label_attribute!r} is not a label attribute name "
            "(letters, digits and single hyphens, 1-127 characters)"
        )
    # The prior output sits in ``task.input.manifestLine`` (DG's audit recipe, §1.4) or, for custom
    # PassThrough jobs whose task input is the manifest line itself (§2), directly in ``task.input``.
    branches = []
    for root in ("task.input.manifestLine", "task.input"):
        line = f"{root}.{prior_label_attribute}"
        meta = f"{line}-metadata"
        if kind == "semantic":
            # DG's recipe (§1.4), written as strict JSON: BACKGROUND skipped, commas placed by a flag.
            body = (
                "{% assign sep = '' %}"
                f"{{% for box in {meta}.internal-color-map %}}{{% if box[1]['class-name'] != 'BACKGROUND' %}}"
                f"{{{{ sep }}}}{{{{ box[1]['class-name'] | to_json }}}}: {lb}\"color\": "
                f"{{{{ box[1]['hex-color'] | to_json }}}}{rb}"
                "{% assign sep = ',' %}{% endif %}{% endfor %}"
            )
            mappings = f'"labelMappings": {lb}{body}{rb}'
        else:
            # Our instance output metadata carries an ``instances`` list (see formats.output_manifest_line).
            mappings = f'"instances": {{{{ {meta}.instances | to_json }}}}'
        value = f'initial-value=\'{lb}"src": "{{{{ {line} | grant_read_access }}}}", {mappings}{rb}\''
        branches.append((line, value))
    (first_line, first_value), (second_line, second_value) = branches
    return (
        f"{{% if {first_line} %}}{first_value}{{% elsif {second_line} %}}{second_value}"
        f"{{% elsif task.input.initialValue %}}{from_input}{{% endif %}}"
    )


def builtin_template(
    kind: TemplateKind,
    header: str | None = None,
    short_instructions: str | None = None,
    full_instructions: str | None = None,
    good_examples: Sequence[ExampleImage | str | tuple[str, str] | Mapping[str, str]] = (),
    bad_examples: Sequence[ExampleImage | str | tuple[str, str] | Mapping[str, str]] = (),
    *,
    labels: Sequence[str] | None = None,
    prior_label_attribute: str | None = None,
) -> str:
    """Liquid source of a built-in worker template for ``<crowd-semantic-segmentation>`` or instance.

    ``header`` is plain text; instructions are Markdown (a subset, see ``instructions``), escaped so no
    user text becomes markup or Liquid. Example images appear in the short instructions under GOOD / BAD
    headings. ``labels``: labels to use when ``task.input.labels`` is absent (custom jobs whose
    pre-annotation Lambda passes the manifest line through). ``prior_label_attribute``: for adjustment
    jobs, build ``initial-value`` from the input manifest line's prior output (§1.4); without it,
    ``task.input.initialValue`` (``{"labelMappings"|"instances": ..., "src": ...}``) is used when present.
    """
    if kind not in ("semantic", "instance"):
        raise TemplateError(f"unknown built-in template {kind!r}: choose 'semantic' or 'instance'")
    element = SEMANTIC_ELEMENT_NAME if kind == "semantic" else INSTANCE_ELEMENT_NAME
    good = [_as_example(x) for x in good_examples]
    bad = [_as_example(x) for x in bad_examples]
    short_html = markdown_to_html(short_instructions if short_instructions is not None else _DEFAULT_SHORT[kind])
    full_html = markdown_to_html(full_instructions if full_instructions is not None else _DEFAULT_FULL[kind])
    examples = "\n      ".join(
        x for x in (_examples_html("GOOD EXAMPLE", "green", good), _examples_html("BAD EXAMPLE", "red", bad)) if x
    )
    src = "{{ task.input.taskObject | default: task.input.source-ref | grant_read_access }}"
    head = escape_text(header if header is not None else _DEFAULT_HEADER[kind])
    full_header = "Segmentation instructions" if kind == "semantic" else "Instance segmentation instructions"
    return f"""<script src="{CROWD_ELEMENTS_JS}"></script>

<crowd-form>
  <{element}
    name="{element}"
    src="{src}"
    header="{head}"
    labels="{_labels_expression(labels)}"
    {_initial_value(kind, prior_label_attribute)}
  >
    <full-instructions header="{full_header}">
      {full_html}
    </full-instructions>

    <short-instructions>
      {short_html}
      {examples}
    </short-instructions>
  </{element}>
</crowd-form>
"""
