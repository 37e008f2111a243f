"""``preview_template``: see a Ground Truth task template work before any labeling job exists, offline.

Renders the template with our Ground Truth Liquid environment (``gt_widget.groundtruth.templates``), with
``grant_read_access`` pointing at images served from 127.0.0.1 (local files, or real S3 objects read once
with boto3), serves it with stand-ins for the crowd elements (js/src), answers auto-segment requests with
the kernel-side segmenter, and receives what the crowd-form submits: the exact answer object Ground Truth's
elements submit (reference §1.3). Show it in a notebook (the returned object displays as an IFrame), or
from the command line with ``gt-widget template preview``.

Side that owns what: the browser owns the annotation until it is submitted; the kernel then owns the
answers (``submissions``, ``answer()``, ``worker_response()``, the ``save_to`` file).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from html import unescape
from pathlib import Path
from typing import Any

from gt_widget.groundtruth.formats import InstanceResult, SemanticResult, read_answer, worker_response
from gt_widget.imageio import MAX_PIXELS
from gt_widget.preview.images import ImageStore, PreviewError
from gt_widget.preview.server import REQUEST_TIMEOUT, PreviewServer, SegmentService, quote_short, wrap_page
from gt_widget.segment.base import Prediction, Segmenter

SubmitCallback = Callable[[dict[str, Any]], None]
"""Called (in a server thread) with each submitted answer object ``{element name: answer, ...}``."""


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PreviewError(f"{what} file not found: {str(path)!r}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PreviewError(f"cannot read {what} {str(path)!r}: {exc}; it must be a JSON object") from None


def load_task_input(task_input: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A task input (``task.input``) from a mapping or a JSON file; a JSON-lines manifest's first line works too."""
    if isinstance(task_input, Mapping):
        return dict(task_input)
    path = Path(task_input)
    if path.suffix in (".jsonl", ".manifest"):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not lines:
            raise PreviewError(f"manifest {str(path)!r} is empty")
        value = json.loads(lines[0])
    else:
        value = _read_json(path, "task input")
    if not isinstance(value, dict):
        raise PreviewError(
            f"task input {str(path)!r} must hold a JSON object, e.g. "
            '{"taskObject": "s3://bucket/key.jpg", "labels": ["cat", "dog"]}'
        )
    return value


def render_preview_html(
    template: str | os.PathLike[str],
    task_input: Mapping[str, Any],
    images: ImageStore,
    expires_in: int = 3600,
) -> str:
    """Render ``template`` like Ground Truth does, with ``grant_read_access`` serving from ``images``.

    Choice: besides S3 locations (E's filter with our presigner), ``grant_read_access`` here also accepts
    local paths and ``file://`` URLs, so a template can be previewed on local images; in a real job only
    S3 locations work.
    """
    from liquid.exceptions import (
        LiquidError,
        LocalNamespaceLimitError,
        LoopIterationLimitError,
        OutputStreamLimitError,
        ResourceLimitError,
    )

    from gt_widget.groundtruth.templates import TemplateError, make_environment

    source = _template_text(template)
    env = make_environment(presign=images.presign, expires_in=expires_in)
    s3_filter = env.filters["grant_read_access"]

    def grant_read_access(value: Any) -> str:
        text = "" if value is None else str(value).strip()
        if text and images.is_local(text):
            return images.url_for(text)
        if text and not _looks_like_url(text):
            # a path that is not there: fail now with the places we looked, not as a broken image later
            raise PreviewError(
                f"grant_read_access: image {text!r} not found (looked in {', '.join(map(str, images.base_dirs))}); "
                "fix the path in the task input, or use an s3:// URI"
            )
        return str(s3_filter(value))

    env.add_filter("grant_read_access", grant_read_access)
    _limit_resources(env)
    try:
        return str(env.from_string(source).render(task={"input": dict(task_input)}))
    except ResourceLimitError as exc:
        what = {
            LoopIterationLimitError: f"loop limit ({LOOP_LIMIT:,} iterations)",
            OutputStreamLimitError: f"output limit ({OUTPUT_LIMIT // 2**20} MiB of HTML)",
            LocalNamespaceLimitError: "variable-size limit",
        }.get(type(exc), "nesting limit")
        raise PreviewError(
            f"the template exceeds the preview's {what}: {exc}; a task page that large or slow would not "
            "work in the worker console either"
        ) from None
    except LiquidError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, PreviewError):
            raise PreviewError(str(cause)) from None
        raise TemplateError(f"template error: {exc}. Fix the Liquid syntax near the line shown") from None


LOOP_LIMIT = 1_000_000
"""Most loop iterations one render may run (python-liquid's ``loop_iteration_limit``)."""
OUTPUT_LIMIT = 32 * 2**20
"""Most characters of HTML one render may write (``output_stream_limit``)."""


def _limit_resources(env: Any) -> None:
    """Bound a render (python-liquid's resource limits, per environment; its defaults are unlimited)."""
    setattr(env, "loop_iteration_limit", LOOP_LIMIT)  # noqa: B010 (class variables set per instance)
    setattr(env, "output_stream_limit", OUTPUT_LIMIT)  # noqa: B010
    setattr(env, "local_namespace_limit", 8 * 2**20)  # noqa: B010
    setattr(env, "context_depth_limit", 30)  # noqa: B010 (include/render depth; python-liquid's default)


_IMG_SRC = re.compile(r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def serve_local_img_srcs(html: str, images: ImageStore) -> tuple[str, list[str]]:
    """Point ``<img src>`` attributes that name existing local files (e.g. the example images of a built-in
    template) at the preview's image server; returns the new HTML and the paths rewritten.

    Choice: a real job cannot read local files (upload them to S3 first); the preview serves them anyway so
    the author sees the page, and the page logs a console warning naming them.
    """
    found: list[str] = []

    def swap(m: re.Match[str]) -> str:
        value = unescape(m.group(3)).strip()
        if not value or _looks_like_url(value) or not images.is_local(value):
            return m.group(0)
        found.append(value)
        return f"{m.group(1)}{m.group(2)}{images.url_for(value)}{m.group(2)}"

    out = _IMG_SRC.sub(swap, html)
    if found:
        note = json.dumps(
            "gt-widget preview: these images are local files served by the preview; upload them to S3 "
            f"for a real labeling job: {', '.join(found)}"
        ).replace("</", "<\\/")
        out += f"\n<script>console.warn({note});</script>\n"
    return out, found


def _looks_like_url(text: str) -> bool:
    return "://" in text or text.startswith(("data:", "blob:", "//"))


def _template_text(template: str | os.PathLike[str]) -> str:
    """Liquid source: a path to a file, ``builtin:semantic`` / ``builtin:instance``, or the source itself."""
    from gt_widget.groundtruth.templates import builtin_template

    if isinstance(template, str):
        if template in ("builtin:semantic", "builtin:instance"):
            return builtin_template(template.split(":", 1)[1])  # type: ignore[arg-type]
        if "\n" in template or "<" in template or "{" in template:
            return template
    path = Path(template)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PreviewError(
            f"template file not found: {str(path)!r}; pass a path, Liquid source text, or builtin:semantic"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PreviewError(f"cannot read template {str(path)!r}: {exc}") from None


def check_answer_png_size(answer: Mapping[str, Any], max_pixels: int = MAX_PIXELS) -> None:
    """Refuse an answer whose PNG is larger than its ``inputImageProperties`` say or than ``max_pixels``,
    reading only the PNG header (IHDR): a small PNG can decode to gigabytes (a decompression bomb)."""
    data = answer.get("labeledImage", {}).get("pngImageData") if isinstance(answer.get("labeledImage"), dict) else None
    if not isinstance(data, str):
        return  # read_answer explains what is missing
    text = data.split(",", 1)[-1] if data.startswith("data:") else data
    try:
        head = base64.b64decode(text[:44] + "=" * (-len(text[:44]) % 4))
    except (ValueError, binascii.Error):
        return
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return
    width, height = struct.unpack(">II", head[16:24])
    props = answer.get("inputImageProperties")
    want = (props.get("width"), props.get("height")) if isinstance(props, dict) else None
    if width * height > max_pixels:
        raise PreviewError(
            f"its PNG is {width}x{height} = {width * height / 1e6:.0f} Mpx, more than the {max_pixels / 1e6:.0f} Mpx "
            "of Ground Truth's image quota; it is not decoded"
        )
    if want is not None and want != (width, height):
        raise PreviewError(
            f"its PNG is {width}x{height} but inputImageProperties say {want[0]}x{want[1]}; it is not decoded"
        )


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TemplatePreview:
    """A running preview: ``url``, the answers received, and ways to wait for and read them.

    In a notebook the object displays as an IFrame of the page (the browser must run on the machine that
    runs the kernel, since the page is served from 127.0.0.1). ``stop()`` (or ``with``) frees the port.
    """

    def __init__(
        self,
        template: str | os.PathLike[str],
        task_input: Mapping[str, Any] | str | os.PathLike[str],
        *,
        segmenter: Segmenter | str | None = None,
        port: int = 0,
        on_submit: SubmitCallback | None = None,
        save_to: str | os.PathLike[str] | None = None,
        expires_in: int = 3600,
        base_dirs: Sequence[str | os.PathLike[str]] = (),
        s3_client: Any = None,
        once: bool = False,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        dirs = [Path(d) for d in base_dirs]
        if not isinstance(task_input, Mapping):
            dirs.append(Path(task_input).resolve().parent)
        if not isinstance(template, str) or not any(c in template for c in "\n<{"):
            try:
                if Path(template).is_file():
                    dirs.append(Path(template).resolve().parent)
            except OSError:
                pass
        self.task_input = load_task_input(task_input)
        unique = list(dict.fromkeys(d.resolve() for d in [*dirs, Path.cwd()]))
        self.images = ImageStore(unique, s3_client=s3_client)
        self._on_submit = on_submit
        self.once = once
        self.save_to = Path(save_to) if save_to is not None else None
        self._submissions: list[dict[str, Any]] = []
        self._received: list[datetime] = []
        self._cond = threading.Condition()
        self._server = PreviewServer(
            self.images,
            SegmentService(self.images, segmenter),
            self._receive,
            self._list,
            port=port,
            request_timeout=request_timeout,
        )
        try:
            self.html = render_preview_html(template, self.task_input, self.images, expires_in=expires_in)
            page, self.local_images = serve_local_img_srcs(self.html, self.images)
            self._server.page = wrap_page(page, base=self._server.base_path)
        except BaseException:
            self._server.stop()
            raise
        self._server.start()

    # ------------------------------------------------------------------------------------------ basics

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``: open it in a browser on this machine."""
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def segmenter(self) -> Segmenter:
        """The kernel-side segmenter behind auto-segment (loaded on first use)."""
        return self._server.segment_service.segmenter

    @property
    def last_prediction(self) -> Prediction | None:
        """The segmenter's prediction behind the last auto-segment answer the page received."""
        return self._server.segment_service.last_prediction

    def stop(self) -> None:
        """Stop serving (the answers stay readable)."""
        self._server.stop()

    def __enter__(self) -> TemplatePreview:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<TemplatePreview {self.url} submissions={len(self._submissions)}>"

    def show(self, width: int | str = "100%", height: int = 800) -> Any:
        """An ``IPython.display.IFrame`` of the page (what the notebook shows)."""
        from IPython.display import IFrame

        return IFrame(self.url, width=width, height=height)

    def _repr_html_(self) -> str:
        return (
            f'<iframe src="{self.url}" width="100%" height="800" style="border: 1px solid #ccc"></iframe>'
            f'<div style="font-size: 12px">Ground Truth template preview at <a href="{self.url}" '
            f'target="_blank">{self.url}</a></div>'
        )

    # ----------------------------------------------------------------------------------------- answers

    def _list(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._submissions)

    def _receive(self, content: dict[str, Any]) -> dict[str, Any]:
        if self.once and self._submissions:
            raise PreviewError("this preview is closed: it took one answer (--once); start it again to submit more")
        # check each segmentation answer decodes as Ground Truth's would, so a broken answer fails loudly; its
        # PNG's size is checked from the header first, so a decompression bomb is refused before decoding
        for name, value in content.items():
            if isinstance(value, dict) and "labeledImage" in value:
                try:
                    check_answer_png_size(value)
                    read_answer(value)
                except Exception as exc:
                    raise PreviewError(
                        f"the answer of {quote_short(name)} is not a valid Ground Truth answer: {exc}"
                    ) from None
        received = datetime.now(timezone.utc)
        with self._cond:
            if self.once and self._submissions:
                raise PreviewError("this preview is closed: it took one answer (--once)")
            self._submissions.append(content)
            self._received.append(received)
            count = len(self._submissions)
        if self.save_to is not None:
            _write_atomic(self.save_to, json.dumps(self.worker_response(), indent=2) + "\n")
        if self._on_submit is not None:
            self._on_submit(content)
        with self._cond:
            self._cond.notify_all()
        return {"ok": True, "submissions": count, "closed": self.once}

    @property
    def submissions(self) -> list[dict[str, Any]]:
        """Every answer object received, oldest first (``{element name: answer, ...}``)."""
        return self._list()

    def wait_for_submission(self, timeout: float | None = None, count: int = 1) -> dict[str, Any]:
        """Block until ``count`` answers have arrived; returns the latest. Raises TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while len(self._submissions) < count:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no submission within {timeout} s: press Submit on {self.url}")
                self._cond.wait(timeout=left)
            return self._submissions[-1]

    def answer(self, name: str | None = None, labels: Sequence[str] | None = None) -> SemanticResult | InstanceResult:
        """The latest answer of element ``name`` (default: the first segmentation answer), decoded."""
        if not self._submissions:
            raise PreviewError(f"nothing submitted yet: press Submit on {self.url}")
        content = self._submissions[-1]
        if name is not None:
            if name not in content:
                raise PreviewError(f"the answer has no field {name!r}; it has {sorted(content)}")
            content = content[name]
        if labels is None:
            labels = self.task_input.get("labels") if isinstance(self.task_input.get("labels"), list) else None
        return read_answer(content, labels=labels)

    def worker_response(self, index: int = -1) -> dict[str, Any]:
        """The submission as the worker-response file Ground Truth writes (reference §1.3)."""
        if not self._submissions:
            raise PreviewError(f"nothing submitted yet: press Submit on {self.url}")
        content = self._submissions[index]
        submitted = self._received[index]
        accepted = self._server.served_at or submitted
        first = next(iter(content), "crowd-semantic-segmentation")
        out = worker_response(
            content.get(first, {}),
            element_name=first,
            worker_id="local-preview",
            acceptance_time=min(accepted, submitted),
            submission_time=submitted,
        )
        out["answers"][0]["answerContent"] = dict(content)
        return out


def preview_template(
    template: str | os.PathLike[str],
    task_input: Mapping[str, Any] | str | os.PathLike[str],
    *,
    segmenter: Segmenter | str | None = None,
    port: int = 0,
    on_submit: SubmitCallback | None = None,
    save_to: str | os.PathLike[str] | None = None,
    expires_in: int = 3600,
    base_dirs: Sequence[str | os.PathLike[str]] = (),
    s3_client: Any = None,
    open_browser: bool = False,
    once: bool = False,
    request_timeout: float = REQUEST_TIMEOUT,
) -> TemplatePreview:
    """Serve ``template`` rendered with ``task_input`` on 127.0.0.1 and return the running preview.

    ``template``: a path, Liquid source text, or ``"builtin:semantic"`` / ``"builtin:instance"``.
    ``task_input``: the ``task.input`` dict, or a JSON file (a manifest's first line also works).
    ``segmenter``: a ``Segmenter``, a name for ``load_segmenter`` or None (MobileSAM, else GrabCut), loaded
    on the first auto-segment; the preview calls its ``set_image`` from a server thread, so give it a
    segmenter nothing else uses meanwhile (not the one a widget is working with). ``on_submit(answer)`` is called for each submission; ``save_to`` receives
    the latest as a worker-response JSON file (written atomically). ``base_dirs``: folders that relative
    image paths are looked up in (besides the task file's and template's folders, and the current one).
    ``once``: take one answer, then refuse more (the page says the preview is closed). ``request_timeout``:
    seconds a client may stall mid-request. The URL carries the preview's access token (every route needs it).
    """
    preview = TemplatePreview(
        template,
        task_input,
        segmenter=segmenter,
        port=port,
        on_submit=on_submit,
        save_to=save_to,
        expires_in=expires_in,
        base_dirs=base_dirs,
        s3_client=s3_client,
        once=once,
        request_timeout=request_timeout,
    )
    if open_browser:
        import webbrowser

        webbrowser.open(preview.url)
    return preview
