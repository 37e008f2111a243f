"""A labeling job, ready to submit: label config, template, input manifest, request, and the files to upload.

``build_bundle`` turns what a notebook or session says (labels, mode, images, instructions, examples) plus a
few AWS choices into a ``JobBundle``; ``JobBundle.write(folder)`` saves it (every file atomically) and
``JobBundle.read(folder)`` loads it back, so ``gt-widget job init`` and ``gt-widget job submit`` can be
separate steps. Side: kernel only; nothing here talks to AWS (see ``aws``).

S3 layout under ``s3_prefix`` (our choice; Ground Truth only needs the URIs in the request)::

    <s3_prefix>/<job>/input.manifest          InputConfig.DataSource.S3DataSource.ManifestS3Uri
    <s3_prefix>/<job>/template.liquid.html    HumanTaskConfig.UiConfig.UiTemplateS3Uri
    <s3_prefix>/<job>/label-categories.json   LabelCategoryConfigS3Uri
    <s3_prefix>/<job>/images/<n>-<name>       local images, uploaded by ``aws.upload_bundle``
    <s3_prefix>/<job>/instructions/<name>     local example / instruction images
    <s3_prefix>/output/                       OutputConfig.S3OutputPath (Ground Truth adds <job>/)
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from gt_widget.errors import GtWidgetError, ValidationError
from gt_widget.fileio import atomic_write_bytes, atomic_write_text
from gt_widget.groundtruth.instructions import URL_PATTERN, ExampleImage, is_s3_location
from gt_widget.groundtruth.labels import label_config, label_problems, validate_label_names
from gt_widget.groundtruth.manifest import dumps_manifest, loads_manifest, manifest_problems
from gt_widget.groundtruth.request import MAX_IMAGE_BYTES, JobSettings, Mode, build_request, request_problems
from gt_widget.groundtruth.templates import builtin_template, parse_s3_location, render_template

BUNDLE_FILES = {
    "settings": "job.json",
    "request": "request.json",
    "label_config": "label-categories.json",
    "template": "template.liquid.html",
    "manifest": "input.manifest",
    "preview": "preview.html",
    "sample": "sample-task-input.json",
}
_IMAGE = re.compile(rf"(!\[[^\]]*\]\(\s*<?)({URL_PATTERN})(>?(?:\s+\"[^\"]*\")?\s*\))")
_URL = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)


class BundleError(GtWidgetError, ValueError):
    """A job cannot be assembled (missing images, unreadable files, a folder that is not a job bundle)."""


@dataclass
class Upload:
    """A local file (or bytes, e.g. a notebook attachment) that must be on S3 at ``uri`` before the job runs."""

    uri: str
    path: str | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        """The bytes to upload."""
        if self.data is not None:
            return self.data
        try:
            return Path(self.path or "").read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read {self.path!r} to upload it to {self.uri}: {exc}") from None


@dataclass
class JobBundle:
    """Everything a Ground Truth job needs. ``problems`` is empty when it can be submitted."""

    settings: JobSettings
    label_config: dict[str, Any]
    template: str
    manifest: list[dict[str, Any]]
    request: dict[str, Any]
    sample_input: dict[str, Any]
    uploads: list[Upload] = field(default_factory=list)
    prior_label_attribute: str | None = None
    """Adjustment jobs: the attribute of the results being adjusted (in every manifest line)."""

    @property
    def problems(self) -> list[str]:
        """Every problem of the labels, manifest and request, one line each naming the field."""
        problems = (
            label_problems(self.settings.labels)
            + manifest_problems(self.manifest, mode=self.settings.mode)
            + request_problems(self.request, mode=self.settings.mode)
        )
        problems += self._image_size_problems()
        prior = self.prior_label_attribute
        if prior:
            if self.request.get("LabelAttributeName") == prior:
                problems.append(
                    f"LabelAttributeName: value {prior!r} is the attribute of the results being adjusted; an "
                    "adjustment job must write a different one (§3.2), e.g. "
                    + repr(prior.removesuffix("-ref") + "-adjusted-ref")
                )
            missing = [i + 1 for i, line in enumerate(self.manifest) if prior not in line]
            if missing:
                problems.append(
                    f"manifest lines {missing[:10]}: no {prior!r} result to adjust; label those images first"
                )
        return problems

    def _image_size_problems(self) -> list[str]:
        """Images to label that exceed Ground Truth's per-file quota (``request.MAX_IMAGE_BYTES``, §3.1).
        Only local files (uploaded by us) are measured; images already on S3 are not fetched to be sized."""
        by_uri = {u.uri: u for u in self.uploads}
        problems: list[str] = []
        for n, line in enumerate(self.manifest, 1):
            upload = by_uri.get(str(line.get("source-ref", "")))
            if upload is None:
                continue
            if upload.data is not None:
                size = len(upload.data)
            else:
                try:
                    size = Path(upload.path or "").stat().st_size
                except OSError:
                    continue  # Upload.read reports a missing file when it is uploaded
            if size > MAX_IMAGE_BYTES:
                problems.append(
                    f"manifest line {n} source-ref: {upload.path or upload.uri!r} is {size:,} bytes; Ground Truth "
                    f"accepts images of at most 40 MB ({MAX_IMAGE_BYTES:,} bytes): downscale or recompress it "
                    "(e.g. save as JPEG)"
                )
        return problems

    def validate(self) -> JobBundle:
        """``self`` when valid, else ``ValidationError`` with every problem."""
        problems = self.problems
        if problems:
            raise ValidationError(problems)
        return self

    def render(self, presign: Any = None, expires_in: int = 3600) -> str:
        """The template rendered with the sample task input (``presign`` None: unsigned https URLs, offline)."""
        return render_template(
            self.template,
            self.sample_input,
            presign=presign or unsigned_url(self.settings.region),
            expires_in=expires_in,
        )

    def preview_source(self) -> tuple[str, dict[str, Any]]:
        """(template, task input) for an offline preview before anything is uploaded: every S3 URI this bundle
        would upload a local file to is replaced by that file's path (the preview serves local files), so the
        task shows the real first image and example images. Attachments (bytes only) stay S3 URIs."""
        local = {u.uri: u.path for u in self.uploads if u.path and "'" not in u.path}
        template = self.template
        for uri, path in local.items():
            template = template.replace(f"'{uri}'", f"'{path}'")
        task = {k: local.get(v, v) if isinstance(v, str) else v for k, v in self.sample_input.items()}
        return template, task

    def preview(self, **kwargs: Any) -> Any:
        """The worker task as Ground Truth workers will see it, served offline by
        ``gt_widget.preview.preview_template`` (displays inline in a notebook); ``kwargs`` go to it
        (``segmenter=``, ``port=``...). Call ``.stop()`` on the result when done."""
        from gt_widget.preview import preview_template

        template, task = self.preview_source()
        return preview_template(template, task, **kwargs)

    @property
    def manifest_text(self) -> str:
        """The input manifest as JSON Lines."""
        return dumps_manifest(self.manifest, mode=self.settings.mode)

    @property
    def label_config_text(self) -> str:
        """The label category configuration as JSON."""
        return json.dumps(self.label_config, indent=2, ensure_ascii=False) + "\n"

    def write(self, folder: str | os.PathLike[str]) -> Path:
        """Save the bundle in ``folder`` (created), each file atomically; returns the folder."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        uploads = []
        for up in self.uploads:
            entry: dict[str, Any] = {"uri": up.uri}
            if up.data is not None:  # notebook attachments: keep the bytes beside the bundle
                rel = f"files/{up.uri.rsplit('/', 1)[-1]}"
                atomic_write_bytes(out / rel, up.data)
                entry["path"] = rel
            else:
                entry["path"] = up.path
            uploads.append(entry)
        settings = {
            "settings": asdict(self.settings),
            "sample_input": self.sample_input,
            "uploads": uploads,
            "prior_label_attribute": self.prior_label_attribute,
        }
        atomic_write_text(out / BUNDLE_FILES["settings"], _json(settings))
        atomic_write_text(out / BUNDLE_FILES["request"], _json(self.request))
        atomic_write_text(out / BUNDLE_FILES["label_config"], self.label_config_text)
        atomic_write_text(out / BUNDLE_FILES["template"], self.template)
        atomic_write_text(
            out / BUNDLE_FILES["manifest"], "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in self.manifest)
        )
        atomic_write_text(out / BUNDLE_FILES["sample"], _json(self.sample_input))
        atomic_write_text(out / BUNDLE_FILES["preview"], self.render())
        return out

    @classmethod
    def read(cls, folder: str | os.PathLike[str]) -> JobBundle:
        """Load a bundle saved by ``write`` (the request, template and manifest files as they are now)."""
        root = Path(folder)
        try:
            meta = json.loads((root / BUNDLE_FILES["settings"]).read_text(encoding="utf-8"))
            request = json.loads((root / BUNDLE_FILES["request"]).read_text(encoding="utf-8"))
            config = json.loads((root / BUNDLE_FILES["label_config"]).read_text(encoding="utf-8"))
            template = (root / BUNDLE_FILES["template"]).read_text(encoding="utf-8")
            manifest = loads_manifest(
                (root / BUNDLE_FILES["manifest"]).read_bytes(), source=str(root / "input.manifest"), check=False
            )
        except FileNotFoundError as exc:
            raise BundleError(
                f"{str(root)!r} is not a job folder ({Path(exc.filename or '').name} is missing): create one with "
                "`gt-widget job init NOTEBOOK --out FOLDER`"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"cannot read job folder {str(root)!r}: {exc}") from None
        known = {f.name for f in fields(JobSettings)}
        settings = JobSettings(**{k: v for k, v in meta.get("settings", {}).items() if k in known})
        uploads = []
        for entry in meta.get("uploads", []):
            path = entry.get("path")
            if path and not Path(path).is_absolute():
                path = str(root / path)
            uploads.append(Upload(uri=entry["uri"], path=path))
        return cls(
            settings,
            config,
            template,
            manifest,
            request,
            meta.get("sample_input", {}),
            uploads,
            meta.get("prior_label_attribute"),
        )


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def unsigned_url(region: str) -> Any:
    """A presigner for offline previews: ``s3://b/k`` -> ``https://b.s3.<region>.amazonaws.com/k`` (no signature)."""

    def presign(uri: str, _expires_in: int) -> str:
        bucket, key = parse_s3_location(uri)
        return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"

    return presign


def _join(prefix: str, *parts: str) -> str:
    return "/".join([prefix.rstrip("/"), *(p.strip("/") for p in parts)])


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._\-]+", "_", name).strip("._") or "file"
    return cleaned[:120]


def _s3_prefix(prefix: str) -> str:
    if not prefix.startswith("s3://"):
        raise BundleError(f"s3_prefix {prefix!r} must be an s3://bucket/prefix URI where the job's files will live")
    bucket = prefix[5:].split("/", 1)[0]
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
        raise BundleError(
            f"s3_prefix {prefix!r}: {bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, . and -)"
        )
    return prefix.rstrip("/")


class _Uploader:
    """Assigns S3 URIs to local files (each file once), collecting the uploads."""

    def __init__(self, base: str, folder: str) -> None:
        self.base = base
        self.folder = folder
        self.uploads: list[Upload] = []
        self._by_path: dict[str, str] = {}
        self._names: set[str] = set()

    def add(
        self,
        path: Path | None = None,
        *,
        name: str | None = None,
        data: bytes | None = None,
        numbered: int | None = None,
    ) -> str:
        if path is not None:
            key = str(path.resolve())
            if key in self._by_path:
                return self._by_path[key]
            if not path.is_file():
                raise BundleError(f"file {str(path)!r} not found: fix the path in the notebook or pass sources=")
        base = _safe_name(name or (path.name if path else "file"))
        stem = f"{numbered}-{base}" if numbered is not None else base
        candidate, n = stem, 1
        while candidate in self._names:
            n += 1
            candidate = f"{n}-{stem}"
        self._names.add(candidate)
        uri = _join(self.base, self.folder, candidate)
        self.uploads.append(Upload(uri=uri, path=str(path.resolve()) if path else None, data=data))
        if path is not None:
            self._by_path[str(path.resolve())] = uri
        return uri


def _localise(text: str, uploader: _Uploader, base_dir: Path, attachments: Mapping[str, bytes]) -> str:
    """Rewrite local image paths (and ``attachment:`` images) in Markdown to the S3 URIs they are uploaded to."""

    def repl(m: re.Match[str]) -> str:
        src = m.group(2)
        return m.group(1) + _image_uri(src, uploader, base_dir, attachments) + m.group(3)

    return _IMAGE.sub(repl, text)


def _image_uri(src: str, uploader: _Uploader, base_dir: Path, attachments: Mapping[str, bytes]) -> str:
    if is_s3_location(src) or _URL.match(src) or src.startswith("data:"):
        return src
    if src.startswith("attachment:"):
        name = src.split(":", 1)[1]
        if name not in attachments:
            raise BundleError(f"image {src!r} is not among the cell's attachments: re-insert the image")
        return uploader.add(name=name, data=attachments[name])
    path = Path(src).expanduser()
    return uploader.add(path if path.is_absolute() else base_dir / path)


def build_bundle(
    *,
    labels: Sequence[str],
    mode: Mode,
    sources: Sequence[str | Mapping[str, Any]],
    s3_prefix: str,
    role_arn: str,
    workteam_arn: str,
    job_name: str,
    region: str = "us-east-1",
    label_attribute: str | None = None,
    header: str | None = None,
    short_instructions: str | None = None,
    full_instructions: str | None = None,
    good_examples: Sequence[ExampleImage] = (),
    bad_examples: Sequence[ExampleImage] = (),
    base_dir: str | os.PathLike[str] = ".",
    attachments: Mapping[str, bytes] | None = None,
    prior_label_attribute: str | None = None,
    **settings: Any,
) -> JobBundle:
    """Assemble a ``JobBundle``. Local paths (images, example images) are resolved against ``base_dir``
    and scheduled for upload under ``s3_prefix``; ``settings`` are further ``JobSettings`` fields."""
    labels = validate_label_names(labels)  # the one label rule set, as the widget and the session use it
    prefix = _s3_prefix(s3_prefix)
    base = Path(base_dir)
    attach = dict(attachments or {})
    job_base = _join(prefix, job_name)
    images = _Uploader(job_base, "images")
    extras = _Uploader(job_base, "instructions")
    if not sources:
        raise BundleError("no images to label: give the images (paths or s3:// URIs) the job should show workers")
    prior_pngs = _Uploader(job_base, "prior")
    manifest: list[dict[str, Any]] = []
    for i, item in enumerate(sources):
        line = {"source-ref": item} if isinstance(item, str) else dict(item)
        ref = str(line.get("source-ref", ""))
        if ref and not ref.startswith("s3://"):
            path = Path(ref).expanduser()
            line["source-ref"] = images.add(path if path.is_absolute() else base / path, numbered=i)
        prior = line.get(prior_label_attribute) if prior_label_attribute else None
        if isinstance(prior, str) and prior and not prior.startswith("s3://"):  # a local result PNG to adjust
            path = Path(prior).expanduser()
            line[str(prior_label_attribute)] = prior_pngs.add(path if path.is_absolute() else base / path)
        manifest.append(line)
    good = [ExampleImage(_image_uri(e.src, extras, base, attach), e.caption) for e in good_examples]
    bad = [ExampleImage(_image_uri(e.src, extras, base, attach), e.caption) for e in bad_examples]
    short = _localise(short_instructions, extras, base, attach) if short_instructions else None
    full = _localise(full_instructions, extras, base, attach) if full_instructions else None
    adjustment = prior_label_attribute is not None
    attr = label_attribute or ("label-ref" if mode == "semantic" else "label")  # custom tasks: no -ref (§8)
    if prior_label_attribute is not None and not label_attribute:
        suffix = "-adjusted-ref" if mode == "semantic" else "-adjusted"  # must differ from the prior job's
        attr = prior_label_attribute.removesuffix("-ref") + suffix
    job = JobSettings(
        job_name=job_name,
        labels=list(labels),
        role_arn=role_arn,
        manifest_uri=_join(job_base, "input.manifest"),
        output_path=_join(prefix, "output") + "/",
        template_uri=_join(job_base, "template.liquid.html"),
        label_config_uri=_join(job_base, "label-categories.json"),
        mode=mode,
        label_attribute=attr,
        region=region,
        workteam_arn=workteam_arn,
        adjustment=adjustment,
        **settings,
    )
    template = builtin_template(
        mode,
        header=header,
        short_instructions=short,
        full_instructions=full,
        good_examples=good,
        bad_examples=bad,
        # PassThrough (instance jobs) hands the manifest line to the template: labels must be baked in.
        labels=list(labels) if mode == "instance" else None,
        prior_label_attribute=prior_label_attribute,
    )
    first = manifest[0]
    if mode == "instance":
        sample: dict[str, Any] = dict(first)
    else:
        sample = {"taskObject": first.get("source-ref", ""), "labels": list(labels)}
    if adjustment:
        sample["manifestLine"] = dict(first)
    config = (
        label_config(labels)
        if not label_problems(labels)
        else {"document-version": "2018-11-28", "labels": [{"label": x} for x in labels]}
    )
    return JobBundle(
        settings=job,
        label_config=config,
        template=template,
        manifest=manifest,
        request=build_request(job),
        sample_input=sample,
        uploads=images.uploads + prior_pngs.uploads + extras.uploads,
        prior_label_attribute=prior_label_attribute,
    )


def attachment_bytes(cell: Mapping[str, Any]) -> dict[str, bytes]:
    """``{name: bytes}`` of a notebook cell's attachments (pasted images are stored base64 in the cell)."""
    out: dict[str, bytes] = {}
    for name, bundle in (cell.get("attachments") or {}).items():
        for mime, data in bundle.items():
            if mime.startswith("image/"):
                out[name] = base64.b64decode(data if isinstance(data, str) else "".join(data))
                break
    return out
