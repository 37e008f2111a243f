"""Untrusted text (notebook Markdown, labels, captions) -> HTML that is safe to embed in a Liquid template.

Everything a user typed is data, never markup: it is HTML-escaped (so ``<script>``, quotes and ``&`` show
as text) and Liquid delimiters are neutralised (``{`` -> ``&#123;``, ``}`` -> ``&#125;``), so Ground Truth's
Liquid engine cannot evaluate ``{{ ... }}`` hidden in an instruction. A browser shows the braces unchanged.

Only a small, fixed subset of Markdown becomes markup: paragraphs, ``#`` headings (rendered one level
down, as ``<h3>``..``<h6>``, because they sit inside an instructions panel), ``-``/``*``/``+`` and ``1.``
lists, ``**bold**``, ``*italic*``/``_italic_``, ``` `code` ```, ``[text](http(s) URL)`` links and
``![alt](src)`` images. An image on S3 (``s3://`` URI or S3 https URL) becomes
``<img src="{{ 'uri' | grant_read_access }}">`` so workers receive a presigned URL, as Ground Truth's
console does for instruction images (ground-truth.md §2).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from gt_widget.errors import GtWidgetError

URL_PATTERN = r"(?:[^()\s<>]|\([^()\s<>]*\))+"
"""A Markdown link / image destination: no spaces, and parentheses only in balanced pairs, as CommonMark
has it (``https://en.wikipedia.org/wiki/Cup_(vessel)`` is one URL)."""
_IMAGE = re.compile(rf"!\[([^\]]*)\]\(\s*<?({URL_PATTERN})>?(?:\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(rf"\[([^\]]+)\]\(\s*<?({URL_PATTERN})>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_ORDERED = re.compile(r"^\s{0,3}\d{1,9}[.)]\s+(.*)$")
_S3_HTTPS = re.compile(r"^https://([a-z0-9.\-]+\.)?s3[.\-]([a-z0-9\-]+\.)?amazonaws\.com(\.cn)?/", re.IGNORECASE)


class TemplateError(GtWidgetError, ValueError):
    """A template cannot be built, parsed or rendered (bad text, bad image location, Liquid syntax, presigning)."""


@dataclass(frozen=True)
class ExampleImage:
    """A good or bad example shown to workers: ``src`` (s3:// URI, https URL or local path) and a caption."""

    src: str
    caption: str = ""


def escape_text(text: str) -> str:
    """HTML-escape ``text`` (quotes included) and neutralise Liquid delimiters; safe in text and attributes."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def is_s3_location(uri: str) -> bool:
    """True for ``s3://bucket/key`` and S3 https URLs (path or virtual-hosted style)."""
    return uri.startswith("s3://") or bool(_S3_HTTPS.match(uri))


def image_src_liquid(src: str) -> str:
    """The value of an ``src`` attribute for an image: S3 locations go through ``grant_read_access``."""
    src = src.strip()
    if not src:
        raise TemplateError("an example image has an empty path: give an s3:// URI, an https URL or a file path")
    if is_s3_location(src):
        bad = sorted({ch for ch in src if ch in "'\"{}\n\r"})
        if bad:
            raise TemplateError(
                f"image location {src!r} contains {''.join(bad)!r}, which cannot be embedded in a Liquid "
                "template: rename the S3 object without quotes, braces or line breaks"
            )
        return "{{ '" + src + "' | grant_read_access }}"
    return escape_text(src)


def _inline(text: str) -> str:
    """Inline Markdown of one line/paragraph -> safe HTML (images, links, code, bold, italic)."""
    out: list[str] = []
    pos = 0
    pattern = re.compile(f"{_IMAGE.pattern}|{_LINK.pattern}|`([^`]+)`")
    for m in pattern.finditer(text):
        out.append(_emphasis(escape_text(text[pos : m.start()])))
        if m.group(2) is not None:  # image
            out.append(
                f'<img src="{image_src_liquid(m.group(2))}" alt="{escape_text(m.group(1))}" style="max-width: 100%">'
            )
        elif m.group(4) is not None:  # link
            label, url = m.group(3), m.group(4)
            if url.lower().startswith(("https://", "http://")):
                out.append(
                    f'<a href="{escape_text(url)}" target="_blank" rel="noopener">{_emphasis(escape_text(label))}</a>'
                )
            else:  # javascript:, data:, relative paths: show the text only
                out.append(_emphasis(escape_text(label)))
        else:
            out.append(f"<code>{escape_text(m.group(5))}</code>")
        pos = m.end()
    out.append(_emphasis(escape_text(text[pos:])))
    return "".join(out)


def _emphasis(escaped: str) -> str:
    escaped = re.sub(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"__(?=\S)(.+?)(?<=\S)__", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"(?<![*\w])\*(?=\S)(.+?)(?<=\S)\*(?![*\w])", r"<em>\1</em>", escaped)
    return re.sub(r"(?<![_\w])_(?=\S)(.+?)(?<=\S)_(?![_\w])", r"<em>\1</em>", escaped)


def markdown_to_html(text: str, *, heading_offset: int = 2) -> str:
    """The Markdown subset described in the module docstring -> HTML safe to put in a Liquid template."""
    blocks: list[str] = []
    para: list[str] = []
    items: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if para:
            blocks.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            blocks.append(f"<{list_tag}>" + "".join(f"<li>{item}</li>" for item in items) + f"</{list_tag}>")
            items.clear()
            list_tag = ""

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            flush()
            continue
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        ordered = _ORDERED.match(line)
        if heading:
            flush()
            level = min(6, len(heading.group(1)) + heading_offset)
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif bullet or ordered:
            tag = "ul" if bullet else "ol"
            if para or (items and list_tag != tag):
                flush()
            list_tag = tag
            items.append(_inline((bullet or ordered).group(1)))  # type: ignore[union-attr]
        elif items and raw.startswith((" ", "\t")):
            items[-1] += " " + _inline(line.strip())  # continuation of a list item
        else:
            if items:
                flush()
            para.append(line.strip())
    flush()
    return "\n".join(blocks)


# Notebook-only advice (the widget's shortcut keys, Prev/Next, autosave) and what Ground Truth workers do instead.
_KEY = r"`[^`\n]{1,9}`"
_KEY_HINT = re.compile(
    rf"\s*\((?:(?:keys?|press|shortcut)\b[^()\n]*|{_KEY}(?:\s*(?:[;,/]|or|and)\s*[^()\n]*)?)\)", re.IGNORECASE
)
"""``(keys 1-9)``, ``(key `a`)``, ``(`c`; hold shift for a negative click)``, ``(`b`)``."""
_KEY_CLAUSES = re.compile(rf"\s*[;,]?\s*{_KEY}\s+\w+(?:\s*(?:,|and)\s*{_KEY}\s+\w+)*(?=\s*[.;]|\s*$)")
"""`` `z` undoes, `y` redoes`` (key-binding clauses ending a sentence)."""
_SENTENCE = re.compile(r"[^.!?\n]*[.!?]?")
_NOTEBOOK_ONLY = re.compile(
    r"\b(?:saved? automatically|autosaved?|auto-saved?|kernel|notebook|jupyter|"
    r"\*?(?:next|prev(?:ious)?)\*?\s+(?:image|button)|with \*?(?:next|prev(?:ious)?)\b\*?)",
    re.IGNORECASE,
)
WORKER_SUBMIT = "Choose **Submit** when every object is painted."
"""What replaces notebook navigation / autosave advice: in Ground Truth each image is a task the worker submits."""


def worker_text(markdown: str | None) -> str | None:
    """Notebook instructions rewritten for Ground Truth workers (the target the job's template has).

    A notebook's instruction cells are written for the widget: its shortcut keys (``keys 1-9``, ``a``,
    ``c``...), *Prev* / *Next* between images and "your work is saved automatically". Ground Truth's worker
    UI has none of these (reference §7): each image is one task that the worker submits. So parenthesised
    key hints and trailing key-binding clauses are removed, and a sentence about moving between images or
    automatic saving becomes ``WORKER_SUBMIT`` (once). Everything else (what to paint, edge rules) is kept
    word for word. ``None`` stays ``None``.
    """
    if markdown is None:
        return None
    lines: list[str] = []
    submit_said = False
    for line in markdown.split("\n"):
        text = _KEY_CLAUSES.sub("", _KEY_HINT.sub("", line))
        sentences = [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)]
        kept: list[str] = []
        for sentence in sentences:
            if _NOTEBOOK_ONLY.search(sentence):
                if not submit_said:
                    kept.append(" " + WORKER_SUBMIT if kept else WORKER_SUBMIT)
                    submit_said = True
                continue
            kept.append(sentence)
        out = "".join(kept).rstrip()
        marker = re.match(r"^\s*(?:[-*+]|\d{1,9}[.)])\s*$", out)
        if out.strip() and not marker:
            lines.append(re.sub(r"\s+([.;,])", r"\1", out))
        elif not line.strip():
            lines.append("")
    return "\n".join(lines).strip("\n") or None


def markdown_images(text: str) -> list[ExampleImage]:
    """Every ``![caption](src)`` of a Markdown text, in order."""
    return [ExampleImage(src=m.group(2), caption=m.group(1)) for m in _IMAGE.finditer(text)]


def strip_images(text: str) -> str:
    """``text`` without its Markdown images (their captions are kept by ``markdown_images``)."""
    return _IMAGE.sub("", text)
