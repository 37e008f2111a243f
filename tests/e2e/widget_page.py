"""Page object of the labeling widget in JupyterLab: every selector and gesture the browser tests use, in one place.

Selectors follow the stable CSS contract (``/work/notes/contracts.md`` §2, README "Widget DOM"): root ``.gt-widget``,
``.gt-widget-canvas``, ``.gt-widget-status``, ``.gt-widget-busy``, tools ``.gt-tool-<name>``, actions
``.gt-action-<name>``, label chips ``.gt-label-<i>`` (1-based) with ``.gt-label-selected``, instance chips
``.gt-instance-<id>``, session ``.gt-labeling-session`` / ``.gt-session-{prev,next,next-unlabeled,go,jump,progress,
status}``. Keys follow the shortcut contract (§3).

``GT_E2E_LEGACY=1`` maps the contract selectors onto the pre-redesign widget's controls (the ToggleButtons row, the
label Dropdown, the instance Select): only to show that a test fails on the old widget because of the defect it
names, not because a class is missing. CI runs without it, so a missing contract class fails loudly.

Positions are (x, y) image pixels; :meth:`WidgetPage.image_to_page` maps them through the kernel's current view
(a probe thread in the notebook writes it to ``<name>.view.json``) and the canvas' CSS box.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from gt_widget.groundtruth.formats import read_consolidated_png
from tests.e2e.lab import Lab, derived_notebook, open_and_run_all, wait_kernel_idle

LEGACY = os.environ.get("GT_E2E_LEGACY", "") == "1"
"""Map contract selectors onto the pre-redesign widget (see the module docstring)."""

JOB = "quickstart"
"""The quickstart's session cell names its Ground Truth job ``quickstart``."""

CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"
"""Every cell of the notebook on screen."""

_LEGACY_TOOLS = {"auto": "Auto", "click": "Click ±", "brush": "Brush", "eraser": "Eraser", "polygon": "Polygon"}
_LEGACY_TOOLS["pan"] = "Pan"
_LEGACY_ACTIONS = {"undo": "Undo", "redo": "Redo", "fit": "Fit", "help": "Help", "clear": "Clear"}

_PROBE = '''
import json as _json, os as _os, threading as _threading, time as _time
from pathlib import Path as _Path
def _gt_e2e_probe(session=session, path=_Path({view!r})):
    """Write the widget's current view (image -> canvas transform, image index) whenever it changes."""
    last = None
    while True:
        try:
            w = session.widget
            (x0, y0), (x1, y1) = w.image_to_canvas(0, 0), w.image_to_canvas(1000, 1000)
            info = {{"canvas": [int(w.canvas.width), int(w.canvas.height)], "origin": [x0, y0],
                    "scale": [(x1 - x0) / 1000, (y1 - y0) / 1000], "index": int(session.index),
                    "shape": [int(s) for s in w.label_map.shape[:2]]}}
        except Exception as exc:  # the widget is (re)building
            info = {{"error": repr(exc)}}
        if info != last:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(_json.dumps(info))
            _os.replace(tmp, path)
            last = info
        _time.sleep(0.1)
_threading.Thread(target=_gt_e2e_probe, daemon=True).start()
'''


@dataclass(frozen=True)
class CellSnapshot:
    """What the DOM shows of one cell: kind (code/markdown/raw), its text, its execution prompt."""

    kind: str
    text: str
    prompt: str


@dataclass(frozen=True)
class Saved:
    """One image's autosaved Ground Truth result: label/index map (H, W) uint8, manifest line, PNG path."""

    label_map: np.ndarray
    line: dict[str, Any]
    png: Path


def labeling_notebook(
    root: Path, name: str, images: Sequence[str], labels: Sequence[str], *, mode: str = "semantic"
) -> Path:
    """``root/<name>.ipynb``: the quickstart's parameters + session cells (images relative to ``root``, output in
    ``root/out-<name>``, ``mode``) and the view probe."""
    path = root / f"{name}.ipynb"
    derived_notebook(path, images, labels, [_PROBE.format(view=f"{name}.view.json").strip()])
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        lines = cell.source.splitlines()
        lines = [f"OUTPUT_DIR = Path({f'out-{name}'!r})" if ln.startswith("OUTPUT_DIR = ") else ln for ln in lines]
        cell.source = "\n".join(lines).replace('mode="semantic"', f"mode={mode!r}")
    nbformat.write(nb, path)
    return path


class WidgetPage:
    """One derived quickstart notebook open in JupyterLab, driven through the DOM and read back from disk."""

    def __init__(self, page: Any, lab: Lab, name: str) -> None:
        self.page = page
        self.lab = lab
        self.name = name
        self.root = lab.root
        self.job = lab.root / f"out-{name}" / JOB

    # ------------------------------------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        browser: Any,
        lab: Lab,
        name: str,
        images: Sequence[str],
        labels: Sequence[str],
        *,
        mode: str = "semantic",
        viewport: tuple[int, int] = (1400, 1100),
    ) -> WidgetPage:
        """Write the notebook, open it, run all cells, wait until the widget is shown and the model is ready."""
        labeling_notebook(lab.root, name, images, labels, mode=mode)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self = cls(page, lab, name)
        try:
            open_and_run_all(page, lab, f"{name}.ipynb")
            page.wait_for_selector(".gt-widget-canvas", timeout=120_000)
            wait_kernel_idle(page)
            self.view(timeout=60)
            self.wait_idle()
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def open_existing(cls, browser: Any, lab: Lab, path: str, job: Path, *, timeout_ms: int = 600_000) -> WidgetPage:
        """Open notebook ``path`` (relative to the lab root) as it is, run all its cells and wait until the kernel
        is idle again; ``job`` is the Ground Truth job folder :meth:`saved` reads."""
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        self = cls(page, lab, path.removesuffix(".ipynb"))
        self.job = job
        try:
            open_and_run_all(page, lab, path)
            page.wait_for_selector(".gt-widget-canvas", timeout=180_000)
            page.wait_for_function(
                """sel => [...document.querySelectorAll(sel + ' .jp-InputPrompt')]
                        .every(p => !p.textContent.includes('*'))""",
                arg=CELLS,
                timeout=timeout_ms,
            )
            wait_kernel_idle(page, timeout_ms)
        except BaseException:
            self.close()
            raise
        return self

    def error_outputs(self) -> list[str]:
        """Text of every error output (tracebacks) in the notebook."""
        return [
            str(t)
            for t in self.page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            ).all_inner_texts()
            if "Traceback" in t or "Error" in t
        ]

    def close(self) -> None:
        """Close the tab and shut the notebook's kernel down (one JupyterLab serves the whole module)."""
        try:
            self.page.close()
        finally:
            base = f"{self.lab.url}/api/sessions"
            with urllib.request.urlopen(f"{base}?token={self.lab.token}", timeout=10) as r:
                sessions = json.loads(r.read())
            for s in sessions:
                if s.get("path", "").endswith(f"{self.name}.ipynb"):
                    req = urllib.request.Request(f"{base}/{s['id']}?token={self.lab.token}", method="DELETE")
                    urllib.request.urlopen(req, timeout=30).close()

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=str(path))

    # ------------------------------------------------------------------------------------------ notebook

    def cells(self) -> list[CellSnapshot]:
        """Every cell as the DOM shows it (kind, editor or rendered text, prompt); the kernel is left alone."""
        raw = self.page.evaluate(
            """sel => [...document.querySelectorAll(sel)].map(c => ({
                kind: c.classList.contains('jp-CodeCell') ? 'code'
                    : c.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
                text: ((c.querySelector('.jp-InputArea-editor .cm-content')
                        || c.querySelector('.jp-RenderedMarkdown') || c).textContent || '').trim(),
                prompt: ((c.querySelector('.jp-InputPrompt') || {}).textContent || '').trim(),
            }))""",
            CELLS,
        )
        return [CellSnapshot(**c) for c in raw]

    def cell_count(self) -> int:
        return int(self.page.locator(CELLS).count())

    # ------------------------------------------------------------------------------------------ reading the UI

    def status(self) -> str:
        """The widget's status line."""
        return str(self.page.locator(".gt-widget-status").first.inner_text()).strip()

    def session_status(self) -> str:
        """The session's status line (navigation messages, errors)."""
        return str(self.page.locator(".gt-session-status").first.inner_text()).strip()

    def progress(self) -> str:
        return str(self.page.locator(".gt-session-progress").first.inner_text()).strip()

    def messages(self) -> str:
        """Widget status + session status, one string (where a message lands is the widget's choice)."""
        return f"{self.session_status()} | {self.status()}"

    def wait_status(self, pred: Callable[[str], bool], timeout: float = 30.0) -> str:
        """Poll :meth:`messages` until ``pred`` holds; returns it (raises with the last text)."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.messages()
            if pred(text):
                return text
            self.page.wait_for_timeout(150)
        raise AssertionError(f"status never satisfied the condition; last: {text!r}")

    def wait_idle(self, timeout_ms: int = 180_000) -> None:
        """Wait until the busy mark ``.gt-widget-busy`` is clear (model loaded, no request in flight, refined pass
        done): hidden, or without text and without a CSS-animated (spinner) element."""
        self.page.wait_for_function(
            """() => {
                const b = document.querySelector('.gt-widget-busy');
                if (!b) return false;
                const shown = b.offsetParent !== null && getComputedStyle(b).visibility !== 'hidden';
                const still = e => ['', '::before', '::after'].every(
                    p => getComputedStyle(e, p || null).animationName === 'none');
                // idle: the mark is hidden, or shows no text and no animated (spinner) element
                return !shown || (b.textContent.trim() === '' && [b, ...b.querySelectorAll('*')].every(still));
            }""",
            timeout=timeout_ms,
        )

    def view(self, timeout: float = 30.0, index: int | None = None) -> dict[str, Any]:
        """The kernel's current view (canvas size, image->canvas origin/scale, image index); waits for ``index``."""
        path = self.root / f"{self.name}.view.json"
        deadline = time.monotonic() + timeout
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                info = json.loads(path.read_text())
                if "canvas" in info and (index is None or info["index"] == index):
                    return info
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"no view (index {index}) from the probe in {timeout:.0f} s; last: {info}")

    def index(self) -> int:
        return int(self.view()["index"])

    # ------------------------------------------------------------------------------------------ locators

    def widget(self) -> Any:
        return self.page.locator(".gt-widget").first

    def canvas(self) -> Any:
        return self.page.locator("canvas.gt-widget-canvas").first

    def tool_button(self, name: str) -> Any:
        """The toolbar button of tool ``name`` (auto, click, brush, eraser, polygon, fill, pan)."""
        if LEGACY:
            return self.page.locator(".gt-widget-tools button").filter(has_text=_LEGACY_TOOLS[name]).first
        return self.page.locator(f".gt-widget .gt-tool-{name}").first

    def action_button(self, name: str) -> Any:
        """Action button ``name`` (undo, redo, fit, help, outline, clear)."""
        if LEGACY:
            return self.page.locator(".gt-widget button").filter(has_text=_LEGACY_ACTIONS[name]).first
        return self.page.locator(f".gt-widget .gt-action-{name}").first

    def label_chip(self, i: int) -> Any:
        """Chip of label ``i`` (1-based)."""
        return self.page.locator(f".gt-widget .gt-label-{i}").first

    def session_control(self, name: str) -> Any:
        """``prev``, ``next``, ``next-unlabeled``, ``go``, ``jump`` (the jump box's input)."""
        if name == "jump":
            if LEGACY:
                return self.page.locator(".gt-labeling-session .widget-inline-hbox input[type=number]").first
            return self.page.locator(".gt-labeling-session .gt-session-jump input, input.gt-session-jump").first
        return self.page.locator(f".gt-labeling-session .gt-session-{name}").first

    def focusables(self) -> list[tuple[str, Any]]:
        """Every keyboard-focusable control of the session and its widget, canvas included: (description, locator)."""
        sel = (
            ".gt-labeling-session :is(button, input, select, textarea, [contenteditable=true], "
            "[tabindex]:not([tabindex='-1']), canvas)"
        )
        loc = self.page.locator(sel)
        out = []
        for k in range(loc.count()):
            el = loc.nth(k)
            if not el.is_visible():
                continue
            desc = el.evaluate(
                """e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + ' "' +
                      (e.getAttribute('title') || e.textContent || e.value || '').trim().slice(0, 30) + '"'"""
            )
            out.append((str(desc), el))
        return out

    # ------------------------------------------------------------------------------------------ gestures

    def choose_tool(self, name: str) -> None:
        self.tool_button(name).click()

    def click_action(self, name: str) -> None:
        self.action_button(name).click()

    def choose_label(self, i: int) -> None:
        """Click label chip ``i`` (legacy: pick the Dropdown's option)."""
        if LEGACY:
            sel = self.page.locator(".gt-widget select").first
            sel.select_option(index=i - 1)
            return
        self.label_chip(i).click()

    def selected_label(self) -> int:
        """1-based index of the selected label chip."""
        if LEGACY:
            return int(self.page.locator(".gt-widget select").first.evaluate("e => e.selectedIndex")) + 1
        cls = str(self.page.locator(".gt-widget .gt-label-selected").first.get_attribute("class"))
        return int(next(c for c in cls.split() if c.startswith("gt-label-") and c[9:].isdigit())[9:])

    def instance_ids(self) -> list[int]:
        """Ids of the instance entries on screen (legacy: the numbers the instance Select shows)."""
        if LEGACY:
            texts = self.page.locator(".gt-widget select[size] option, .gt-widget .widget-select option")
            return [int(t.split()[0]) for t in texts.all_inner_texts() if t.strip()]
        classes = self.page.locator(".gt-widget .gt-instance-chip").evaluate_all(
            "els => els.map(e => [...e.classList].join(' '))"
        )
        ids = []
        for cls in classes:
            ids += [int(c[12:]) for c in cls.split() if c.startswith("gt-instance-") and c[12:].isdigit()]
        return ids

    def select_instance(self, k: int) -> None:
        if LEGACY:
            self.page.locator(".gt-widget select[size], .gt-widget .widget-select select").first.select_option(
                value=None, index=self.instance_ids().index(k)
            )
            return
        self.page.locator(f".gt-widget .gt-instance-{k}").first.click()

    def focus_canvas(self) -> None:
        """Give the canvas keyboard focus without placing a point: the pointer enters it (which must focus it, per
        the contract), and it is focused as Tab would."""
        box = self.canvas_box()
        self.page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] - 3)
        self.canvas().focus()

    def negative_click(self, x: float, y: float) -> None:
        """A negative corrective click straight after an auto-segment: right click (legacy: the click tool, the
        polarity toggle switched to remove, a left click, the toggle and the auto tool restored)."""
        if LEGACY:
            self.choose_tool("click")
            toggle = self.page.locator(".gt-widget button").filter(has_text="add").first
            toggle.click()
            self.click(x, y)
            self.wait_idle()
            self.page.locator(".gt-widget button").filter(has_text="remove").first.click()
            self.choose_tool("auto")
            return
        self.click(x, y, button="right")
        self.wait_idle()

    def nav(self, name: str) -> None:
        """Click a session control: prev, next, next-unlabeled, go."""
        self.session_control(name).click()

    def jump(self, number: int, *, enter: bool = True) -> None:
        """Type a 1-based image number in the jump box, then Enter (or click Go)."""
        box = self.session_control("jump")
        box.click()
        box.fill(str(number))
        if enter:
            box.press("Enter")
        else:
            self.nav("go")

    def press(self, *keys: str) -> None:
        """Press keys with whatever has focus now (Playwright names: "a", "Shift+Enter", "ArrowRight")."""
        for key in keys:
            self.page.keyboard.press(key)
            self.page.wait_for_timeout(60)

    def canvas_box(self) -> dict[str, float]:
        loc = self.canvas()
        loc.evaluate("e => e.scrollIntoView({block: 'center'})")
        box = loc.bounding_box()
        assert box is not None, "the widget's canvas is not visible"
        return dict(box)

    def image_to_page(self, x: float, y: float) -> tuple[float, float]:
        """Page position of image pixel (x, y) in the current view."""
        v = self.view()
        box = self.canvas_box()
        cx = v["origin"][0] + x * v["scale"][0]
        cy = v["origin"][1] + y * v["scale"][1]
        return box["x"] + cx * box["width"] / v["canvas"][0], box["y"] + cy * box["height"] / v["canvas"][1]

    def hover(self, x: float, y: float) -> None:
        self.page.mouse.move(*self.image_to_page(x, y))

    def click(self, x: float, y: float, *, button: str = "left", shift: bool = False, pause_ms: int = 150) -> None:
        """Click image pixel (x, y) on the canvas (``button="right"`` for a negative corrective click)."""
        px, py = self.image_to_page(x, y)
        if shift:
            self.page.keyboard.down("Shift")
        try:
            self.page.mouse.click(px, py, button=button)
        finally:
            if shift:
                self.page.keyboard.up("Shift")
        self.page.wait_for_timeout(pause_ms)

    def double_click(self, x: float, y: float) -> None:
        self.page.mouse.dblclick(*self.image_to_page(x, y))
        self.page.wait_for_timeout(150)

    def extreme_points(self, points: Sequence[tuple[float, float]]) -> None:
        """Click the 4 extreme points (the auto tool must be active), then wait for the model."""
        for x, y in points:
            self.click(x, y)
        self.wait_idle()

    def drag(self, path: Sequence[tuple[float, float]], steps: int = 6) -> None:
        """Press at path[0], move through the rest, release (brush/eraser strokes, pan)."""
        pts = [self.image_to_page(x, y) for x, y in path]
        self.page.mouse.move(*pts[0])
        self.page.mouse.down()
        for (x0, y0), (x1, y1) in itertools.pairwise(pts):
            for t in np.linspace(0, 1, steps)[1:]:
                self.page.mouse.move(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
                self.page.wait_for_timeout(20)
        self.page.mouse.up()
        self.page.wait_for_timeout(150)

    def canvas_pixels(self) -> np.ndarray:
        """The canvas as the user sees it: (H, W, 3) float RGB at CSS size."""
        import io

        from PIL import Image

        data = self.canvas().screenshot()
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float64)

    # ------------------------------------------------------------------------------------------ saved files

    def manifest_lines(self) -> list[dict[str, Any]]:
        path = self.job / "manifests" / "output" / "output.manifest"
        try:
            return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        except (OSError, ValueError):
            return []

    def saved(self, image_name: str) -> Saved | None:
        """The autosaved result of the image whose file name is ``image_name`` (None before its first save)."""
        for line in self.manifest_lines():
            if Path(str(line.get("source-ref", ""))).name != image_name:
                continue
            if "label-ref" in line:  # semantic: the consolidated palette PNG
                png = Path(line["label-ref"])
                try:
                    return Saved(read_consolidated_png(png.read_bytes()), line, png)
                except (OSError, ValueError):
                    return None
            if "label" in line:  # instance (a custom job): the masks live in the worker response
                from gt_widget.groundtruth.export import read_job_output

                try:
                    for item in read_job_output(self.job):
                        if Path(item.source_ref).name == image_name:
                            return Saved(item.index_map, line, Path(str(line["label-metadata"]["worker-response-ref"])))
                except (OSError, ValueError):
                    return None
            return None  # listed, not labeled yet (one output line per input line)
        return None

    def wait_saved(self, image_name: str, pred: Callable[[np.ndarray], bool], timeout: float = 60.0) -> Saved:
        """Poll the saved result of ``image_name`` until ``pred(label_map)`` holds."""
        deadline = time.monotonic() + timeout
        last: Saved | None = None
        while time.monotonic() < deadline:
            last = self.saved(image_name)
            if last is not None:
                try:
                    if pred(last.label_map):
                        return last
                except (IndexError, ValueError):
                    pass
            time.sleep(0.2)
        what = "nothing saved" if last is None else f"labels {np.unique(last.label_map).tolist()}"
        raise AssertionError(f"{image_name}: the saved result never met the condition in {timeout:.0f} s ({what})")

    def settle(self, quiet_s: float = 1.5, timeout: float = 30.0) -> None:
        """Wait for the model to go idle and the output folder to stop changing for ``quiet_s``."""
        self.wait_idle()
        deadline = time.monotonic() + timeout
        last: tuple[tuple[str, float], ...] = ()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            files = sorted(self.job.rglob("*")) if self.job.exists() else []
            stamp = tuple((str(p), p.stat().st_mtime) for p in files if p.is_file())
            if stamp != last:
                last, quiet_since = stamp, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return
            time.sleep(0.2)

    def worker_responses(self, index: int) -> list[Path]:
        """Worker-response JSON files of dataset object ``index``."""
        return sorted((self.job / "annotations" / "worker-response" / "iteration-1" / str(index)).glob("*.json"))


def shot_position(wp: WidgetPage, x: float, y: float, shot_shape: tuple[int, ...]) -> tuple[int, int]:
    """(column, row) in a :meth:`WidgetPage.canvas_pixels` screenshot of image pixel (x, y)."""
    v = wp.view()
    cx = v["origin"][0] + x * v["scale"][0]
    cy = v["origin"][1] + y * v["scale"][1]
    col = round(cx * shot_shape[1] / v["canvas"][0])
    row = round(cy * shot_shape[0] / v["canvas"][1])
    return min(max(col, 0), shot_shape[1] - 1), min(max(row, 0), shot_shape[0] - 1)
