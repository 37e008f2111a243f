"""Notebook (or live session) -> labeling job: read what the notebook shows, build a ``JobBundle``.

Conventions shared with notebooks/quickstart.ipynb (fixed):
- code cells create the UI with literal arguments an AST reader finds:
  ``SegmentationWidget(image, labels=[...], mode="semantic")`` or ``LabelingSession(source, labels=[...],
  mode=...)``; ``labels=LABELS`` counts when ``LABELS = [...]`` is a literal assigned earlier;
- Markdown cells carry instructions and examples, marked by a cell tag OR a heading: ``gt-short-instructions``
  / "Short instructions", ``gt-full-instructions`` / "Full instructions", ``gt-good-example`` / "Good
  example(s)", ``gt-bad-example`` / "Bad example(s)"; example images are ``![caption](path-or-s3-uri)``.
  That text is written for the widget; ``instructions.worker_text`` rewrites it for Ground Truth workers
  (no shortcut keys, no Prev/Next or autosave: a worker submits each image).

Choices: when the notebook creates a ``LabelingSession``, its sessions define the job and stand-alone
widgets are taken as demos; otherwise every widget counts (and they must agree). A tagged cell belongs to its section entirely (minus a marking heading); a heading's section runs
to the next heading of the same or higher level in that cell. Several cells of one section are joined. The
notebook's code is never executed: only literals are read (``ast.literal_eval``). Positional arguments
count too (labels is the 2nd argument of both calls; mode the 3rd of ``SegmentationWidget`` and the 4th of
``LabelingSession``). Images named by a variable that is not a literal need ``sources=``.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gt_widget.errors import GtWidgetError
from gt_widget.groundtruth.bundle import JobBundle, attachment_bytes, build_bundle
from gt_widget.groundtruth.instructions import ExampleImage, markdown_images, strip_images, worker_text

UI_CALLS = {"SegmentationWidget": (1, 2, 0), "LabelingSession": (1, 3, 0)}
"""Call name -> positional index of (labels, mode, image/source)."""
SECTIONS = {
    "gt-short-instructions": "short",
    "gt-full-instructions": "full",
    "gt-good-example": "good",
    "gt-bad-example": "bad",
}
_HEADING_SECTIONS = [
    (re.compile(r"^short\s+instructions?$", re.IGNORECASE), "short"),
    (re.compile(r"^full\s+instructions?$", re.IGNORECASE), "full"),
    (re.compile(r"^good\s+examples?(\(s\))?$", re.IGNORECASE), "good"),
    (re.compile(r"^bad\s+examples?(\(s\))?$", re.IGNORECASE), "bad"),
]
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_NAME_RE = re.compile(r"[^a-zA-Z0-9]+")


class NotebookError(GtWidgetError, ValueError):
    """The notebook does not say enough (or says contradictory things) to build a job."""


@dataclass
class UiCall:
    """One ``SegmentationWidget(...)`` / ``LabelingSession(...)`` found in a code cell."""

    kind: str
    cell: int
    labels: list[str] | None
    mode: str
    sources: list[Any] | None
    keywords: dict[str, Any] = field(default_factory=dict)


@dataclass
class NotebookSpec:
    """What a notebook says about its labeling job."""

    labels: list[str]
    mode: str
    sources: list[Any]
    short_instructions: str | None
    full_instructions: str | None
    good_examples: list[ExampleImage]
    bad_examples: list[ExampleImage]
    attachments: dict[str, bytes]
    keywords: dict[str, Any]


def _code_of(source: str) -> str:
    """Cell source with IPython magics / shell escapes blanked (line numbers kept)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!", "?")) else line for line in source.split("\n"))


def _literal(node: ast.AST | None, names: Mapping[str, Any]) -> tuple[bool, Any]:
    if node is None:
        return False, None
    if isinstance(node, ast.Name):
        return (True, names[node.id]) if node.id in names else (False, None)
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def find_ui_calls(cells: Sequence[Mapping[str, Any]]) -> list[UiCall]:
    """Every UI call of the notebook's code cells, with its literal arguments resolved."""
    names: dict[str, Any] = {}
    calls: list[UiCall] = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        try:
            tree = ast.parse(_code_of(source))
        except SyntaxError:
            continue  # cells that are not plain Python (cell magics) cannot create the UI literally
        for stmt in tree.body:  # top-level literal assignments, in order
            if isinstance(stmt, ast.Assign):
                ok, value = _literal(stmt.value, names)
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        if ok:
                            names[target.id] = value
                        else:
                            names.pop(target.id, None)
            for node in ast.walk(stmt):
                if not isinstance(node, ast.Call) or _call_name(node) not in UI_CALLS:
                    continue
                kind = _call_name(node) or ""
                pos_labels, pos_mode, pos_source = UI_CALLS[kind]
                kw = {k.arg: k.value for k in node.keywords if k.arg}
                args = node.args

                def arg(
                    pos: int, key: str, kw: dict[str, ast.expr] = kw, args: list[ast.expr] = args
                ) -> ast.AST | None:
                    return kw.get(key) if key in kw else (args[pos] if len(args) > pos else None)

                ok_labels, labels = _literal(arg(pos_labels, "labels"), names)
                ok_mode, mode = _literal(arg(pos_mode, "mode"), names)
                source_key = "image" if kind == "SegmentationWidget" else "source"
                ok_src, src = _literal(arg(pos_source, source_key), names)
                keywords = {}
                for key in ("label_attribute", "job_name", "output_uri"):
                    ok_kw, value = _literal(kw.get(key), names)
                    if ok_kw:
                        keywords[key] = value
                if not ok_labels or not isinstance(labels, (list, tuple)):
                    raise NotebookError(
                        f"cell {index + 1}: the labels of {kind}(...) are not a literal list; write "
                        "labels=['cat', 'dog'] (or LABELS = [...] in an earlier cell and labels=LABELS)"
                    )
                if arg(pos_mode, "mode") is not None and (not ok_mode or mode not in ("semantic", "instance")):
                    raise NotebookError(
                        f"cell {index + 1}: mode of {kind}(...) must be the literal 'semantic' or 'instance'"
                    )
                sources: list[Any] | None = None
                if ok_src and isinstance(src, (str, list, tuple)):
                    sources = [src] if isinstance(src, str) else list(src)
                calls.append(UiCall(kind, index + 1, list(labels), mode if ok_mode else "semantic", sources, keywords))
    return calls


def _cell_text(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def find_sections(cells: Sequence[Mapping[str, Any]]) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    """Markdown marked as instructions / examples: ``{"short"|"full"|"good"|"bad": [texts]}``, attachments."""
    sections: dict[str, list[str]] = {"short": [], "full": [], "good": [], "bad": []}
    attachments: dict[str, bytes] = {}
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        text = _cell_text(cell)
        tags = (cell.get("metadata") or {}).get("tags") or []
        tagged = [SECTIONS[t] for t in tags if t in SECTIONS]
        used = False
        if tagged:
            lines = text.split("\n")
            heading = _HEADING.match(lines[0]) if lines else None
            if heading and any(p.match(heading.group(2)) for p, _ in _HEADING_SECTIONS):
                lines = lines[1:]  # the marking heading is not part of the instructions
            for name in tagged:
                sections[name].append("\n".join(lines).strip())
            used = True
        else:
            current: str | None = None
            level = 0
            chunk: list[str] = []
            for line in [*text.split("\n"), "# end"]:
                heading = _HEADING.match(line)
                if heading and (current is None or len(heading.group(1)) <= level):
                    if current is not None:
                        sections[current].append("\n".join(chunk).strip())
                        used = True
                    current, chunk = None, []
                    for pattern, name in _HEADING_SECTIONS:
                        if pattern.match(heading.group(2)):
                            current, level = name, len(heading.group(1))
                    continue
                if current is not None:
                    chunk.append(line)
        if used:
            attachments.update(attachment_bytes(cell))
    return sections, attachments


def read_notebook(path: str | os.PathLike[str], *, labels: Sequence[str] | None = None) -> NotebookSpec:
    """Parse a notebook (nbformat) into a ``NotebookSpec``; clear errors when it does not say enough.

    ``labels`` overrides the notebook's label lists (and so settles a conflict between them).
    """
    import nbformat

    nb_path = Path(path)
    try:
        nb = nbformat.read(str(nb_path), as_version=4)
    except FileNotFoundError:
        raise NotebookError(f"notebook {str(nb_path)!r} not found; check the path") from None
    except Exception as exc:  # nbformat raises several unrelated types for a damaged file
        raise NotebookError(f"cannot read notebook {str(nb_path)!r}: {exc}; is it a Jupyter .ipynb file?") from None
    cells = list(nb.cells)
    calls = find_ui_calls(cells)
    if not calls:
        raise NotebookError(
            f"{nb_path.name} creates no SegmentationWidget(...) or LabelingSession(...): add a code cell like "
            "SegmentationWidget('image.jpg', labels=['cat', 'dog'], mode='semantic') so the job knows its labels"
        )
    # A LabelingSession is the notebook's labeling UI; stand-alone widgets beside it are demos (the quickstart
    # shows instance mode on one image, say). Without a session, every widget counts.
    sessions = [c for c in calls if c.kind == "LabelingSession"]
    calls = sessions or calls
    first = calls[0]
    for other in calls[1:]:
        if labels is None and other.labels != first.labels:
            raise NotebookError(
                f"{nb_path.name} has two conflicting label lists: cell {first.cell} {first.labels} and cell "
                f"{other.cell} {other.labels}; make them the same (one LABELS = [...] used by both) or pass labels="
            )
        if other.mode != first.mode:
            raise NotebookError(
                f"{nb_path.name} mixes modes: cell {first.cell} is {first.mode!r}, cell {other.cell} is "
                f"{other.mode!r}; a job has one mode"
            )
    sources: list[Any] = []
    for call in calls:
        for item in call.sources or []:
            if item not in sources:
                sources.append(item)
    sections, attachments = find_sections(cells)
    good = [img for text in sections["good"] for img in markdown_images(text)]
    bad = [img for text in sections["bad"] for img in markdown_images(text)]
    # Text of example cells (besides the images) is shown with the short instructions.
    extra_text = [strip_images(t).strip() for t in sections["good"] + sections["bad"]]
    # Written for the widget (keys, Next, autosave); workers get Ground Truth's version (instructions.worker_text).
    short = worker_text("\n\n".join(t for t in sections["short"] + [x for x in extra_text if x] if t) or None)
    full = worker_text("\n\n".join(t for t in sections["full"] if t) or None)
    keywords: dict[str, Any] = {}
    for call in calls:
        keywords.update(call.keywords)
    return NotebookSpec(
        labels=list(labels if labels is not None else first.labels or []),
        mode=first.mode,
        sources=sources,
        short_instructions=short,
        full_instructions=full,
        good_examples=good,
        bad_examples=bad,
        attachments=attachments,
        keywords=keywords,
    )


def default_job_name(stem: str) -> str:
    """A valid LabelingJobName from a file name: letters, digits and single hyphens, at most 63 characters."""
    name = _NAME_RE.sub("-", stem).strip("-")[:63].strip("-")
    return name or "gt-widget-job"


def _expand_sources(sources: Sequence[Any], base_dir: Path) -> list[str | dict[str, Any]]:
    """Folders / manifests / S3 prefixes named by the notebook -> one entry per image (via gt_widget.sources)."""
    from gt_widget.sources import list_sources

    out: list[str | dict[str, Any]] = []
    for item in sources:
        spec: Any = item
        if isinstance(item, str) and not item.startswith("s3://") and not Path(item).expanduser().is_absolute():
            spec = str(base_dir / item)
        for found in list_sources(spec if isinstance(spec, str) else [spec]):
            out.append({"source-ref": found.ref, **found.extra} if found.extra else found.ref)
    return out


def job_from_notebook(
    notebook: str | os.PathLike[str],
    *,
    s3_prefix: str,
    role_arn: str,
    workteam_arn: str,
    region: str = "us-east-1",
    job_name: str | None = None,
    sources: Sequence[str | Mapping[str, Any]] | None = None,
    labels: Sequence[str] | None = None,
    header: str | None = None,
    **settings: Any,
) -> JobBundle:
    """Build the labeling job a notebook describes: label config, rendered template, manifest and request.

    ``sources`` overrides the notebook's images; ``labels`` overrides (and settles conflicts between) its
    label lists; ``settings`` are further ``JobSettings`` fields (title, workers_per_object, price_usd...).
    """
    nb_path = Path(notebook)
    spec = read_notebook(nb_path, labels=labels)
    base_dir = nb_path.resolve().parent
    if sources is not None:
        items: list[str | dict[str, Any]] = [s if isinstance(s, str) else dict(s) for s in sources]
    elif spec.sources:
        items = _expand_sources(spec.sources, base_dir)
    else:
        raise NotebookError(
            f"{nb_path.name} does not name its images literally (e.g. a variable computed at run time): "
            "pass sources=['s3://bucket/a.jpg', ...] or local paths"
        )
    name = job_name or spec.keywords.get("job_name") or default_job_name(nb_path.stem)
    if "label_attribute" in spec.keywords and "label_attribute" not in settings:
        settings["label_attribute"] = spec.keywords["label_attribute"]
    return build_bundle(
        labels=spec.labels,
        mode=spec.mode,  # type: ignore[arg-type]
        sources=items,
        s3_prefix=s3_prefix,
        role_arn=role_arn,
        workteam_arn=workteam_arn,
        job_name=name,
        region=region,
        header=header,
        short_instructions=spec.short_instructions,
        full_instructions=spec.full_instructions,
        good_examples=spec.good_examples,
        bad_examples=spec.bad_examples,
        base_dir=base_dir,
        attachments=spec.attachments,
        **settings,
    )


def job_from_session(
    session: Any,
    *,
    s3_prefix: str,
    role_arn: str,
    workteam_arn: str,
    region: str = "us-east-1",
    job_name: str | None = None,
    header: str | None = None,
    short_instructions: str | None = None,
    full_instructions: str | None = None,
    good_examples: Sequence[ExampleImage | str] = (),
    bad_examples: Sequence[ExampleImage | str] = (),
    adjust_results: bool = False,
    **settings: Any,
) -> JobBundle:
    """The same job from a live ``LabelingSession``: its labels, mode, images, label attribute and job name.

    ``adjust_results=True`` builds an *adjustment* job instead: the session's saved results (its output
    manifest, local ``-ref`` PNGs uploaded with the images) become the workers' ``initial-value``, so a
    team corrects what was pre-labeled in the notebook. Only images with a saved result are included.
    """
    for attr in ("labels", "mode", "sources"):
        if not hasattr(session, attr):
            raise NotebookError(
                f"{type(session).__name__} has no .{attr}: pass a gt_widget LabelingSession (labels, mode, sources)"
            )
    sources: list[Any] = list(session.sources)
    prior: str | None = None
    if adjust_results:
        from gt_widget.groundtruth.manifest import read_manifest

        prior = str(getattr(session, "label_attribute", "label-ref"))
        path = getattr(session, "output_manifest_path", None)
        if path is None:
            path = Path(session.output_dir) / str(session.job_name) / "manifests" / "output" / "output.manifest"
        if hasattr(session, "flush"):
            session.flush()  # results still being written by the autosave thread
        if session.mode == "instance" and not prior.endswith("-ref") and Path(path).exists():
            # a custom job's lines keep masks in worker responses: give workers an overlay PNG (output.py)
            from gt_widget.groundtruth.output import instance_adjustment_lines

            sources, prior = instance_adjustment_lines(Path(path).parents[2], prior)
        else:
            lines = read_manifest(path, check=False) if Path(path).exists() else []
            sources = [line for line in lines if prior in line]  # images not labeled yet have no attribute
        if not sources:
            raise NotebookError("the session has no saved results to adjust yet: label some images first")
    else:
        label_attr = getattr(session, "label_attribute", None)
        if session.mode == "semantic" or not str(label_attr).endswith("-ref"):  # an instance job is custom: no -ref
            settings.setdefault("label_attribute", label_attr)
    return build_bundle(
        labels=list(session.labels),
        mode=session.mode,
        sources=sources,
        prior_label_attribute=prior,
        s3_prefix=s3_prefix,
        role_arn=role_arn,
        workteam_arn=workteam_arn,
        job_name=job_name or getattr(session, "job_name", None) or "gt-widget-job",
        region=region,
        header=header,
        short_instructions=short_instructions,
        full_instructions=full_instructions,
        good_examples=[e if isinstance(e, ExampleImage) else ExampleImage(e) for e in good_examples],
        bad_examples=[e if isinstance(e, ExampleImage) else ExampleImage(e) for e in bad_examples],
        base_dir=Path.cwd(),
        **settings,
    )
