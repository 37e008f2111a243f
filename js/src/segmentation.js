// <crowd-semantic-segmentation> and <crowd-instance-segmentation> stand-ins (reference §1.1-§1.4): the
// element that wires the rooms together. Rooms: view.js (canvas geometry and drawing), label-panel.js
// (labels, instances, what paints), tools.js (tool registry, keys, corrective-click rules), paint-tools.js
// (brush, eraser, fill, polygon), segment-client.js (auto-segment requests, first then refined answer),
// initial-value.js (prior labels), answer.js (what Submit sends), styles.js, raster.js / undo.js (the index
// map and its history).
//
// Side that owns what: in the preview the BROWSER owns the annotation (an index map, see raster.js); the
// kernel only answers auto-segment requests (4 extreme points -> mask) and receives the submitted answer.
// Coordinates are (x, y) pixels of the original image, (0, 0) the centre of the top-left pixel.
//
// Choices where the reference is silent (§7: Ground Truth's 2-D tools are not documented in text):
// - tools: brush, eraser (clears any label), polygon, fill, auto-segment (4 extreme points); undo/redo
//   (Ctrl+Z / Ctrl+Shift+Z), brush size, overlay opacity and zoom (images are fitted to the work area,
//   small ones enlarged);
// - an auto-segment mask is painted in the current label over whatever was there (one undo step). The
//   segmenter's fast first answer is painted at once and replaced by its refined answer when that arrives
//   (same undo step); straight after it, left click adds a missed part and right click (or Shift+click)
//   removes a wrong one (tools.js), each replacing the result with the refined mask; Enter finishes the object;
// - the semantic answer lists only painted labels; the instance answer lists every instance the worker added
//   (answer.js); unpainted pixels are transparent, as gt_widget.groundtruth.formats writes them;
// - initialValueModified (semantic only, and only with initial-value) is true when the final map differs from
//   the initial one (so painting then undoing is "not modified").
import { buildAnswer } from "./answer.js";
import { segmentUrl } from "./config.js";
import { loadInitialMap, parseInitialValue } from "./initial-value.js";
import { LabelModel, renderLabelPanel } from "./label-panel.js";
import { parseLabels } from "./labels.js";
import { MAX_LABELS } from "./palette.js";
import { FillTool, PolygonTool, StrokeTool } from "./paint-tools.js";
import { applyMask, createIndexMap, indexToRgba } from "./raster.js";
import { segmentStaged } from "./segment-client.js";
import { CSS } from "./styles.js";
import { CORRECTIVE_HINT, TOOLS, autoSegmentAction, helpLines, toolForKey } from "./tools.js";
import { Edit, UndoStack } from "./undo.js";
import { clampZoom, drawUi, fitZoom, toImagePoint } from "./view.js";

/** @typedef {import("./raster.js").IndexMap} IndexMap */
/** @typedef {import("./raster.js").Box} Box */
/** @typedef {{points: number[][], clicks: [number, number, boolean][], value: number, edit: Edit | null, seq: number}} AutoJob */

/** Base of both elements; `mode` is "semantic" or "instance". */
export class SegmentationElement extends HTMLElement {
  /** @returns {"semantic" | "instance"} */
  get mode() {
    return "semantic";
  }

  static get observedAttributes() {
    return ["src", "labels", "header", "initial-value"];
  }

  constructor() {
    super();
    this._model = new LabelModel(this.mode);
    /** @type {[number, number] | null} where the pointer hovers (for the brush outline) */
    this._hover = null;
    this._tool = "brush";
    this._brushSize = 12;
    this._opacity = 0.6;
    this._zoom = 1;
    /** @type {IndexMap | null} */
    this._map = null;
    /** @type {Uint8Array | null} the map as the initial value left it */
    this._initialData = null;
    this._undo = new UndoStack();
    this._brush = new StrokeTool("brush");
    this._eraser = new StrokeTool("eraser");
    this._fill = new FillTool();
    this._polygon = new PolygonTool();
    /** @type {[number, number][]} */
    this._extreme = [];
    this._busy = false;
    /** @type {AutoJob | null} the last auto-segment, while it can be refined */
    this._auto = null;
    this._autoSeq = 0;
    this._busySeq = 0;
    /** @type {{first?: number, refined?: number}} ms from the request to each answer painted (last auto-segment) */
    this.autoSegmentTimings = {};
    /** @type {ImageData | null} */
    this._overlayPixels = null;
    this._loadToken = 0;
    /** @type {Promise<void>} resolves when the image (and initial value) are loaded */
    this.ready = Promise.resolve();
    this._built = false;
  }

  // ------------------------------------------------------------------------------------------ properties

  /** The label names (a live property, reference §1.1: templates set it in all-crowd-elements-ready). */
  get labels() {
    return [...this._model.labels];
  }

  set labels(value) {
    try {
      this._setLabels(parseLabels(value));
    } catch (err) {
      this._showError(err);
    }
  }

  get src() {
    return this.getAttribute("src") ?? "";
  }

  set src(value) {
    this.setAttribute("src", value);
  }

  get name() {
    return this.getAttribute("name") ?? "";
  }

  /** Width and height of the image, once loaded. */
  get imageSize() {
    return this._map ? { width: this._map.width, height: this._map.height } : null;
  }

  connectedCallback() {
    // a template may have set `labels` before this element was upgraded: take the own property over
    if (Object.prototype.hasOwnProperty.call(this, "labels")) {
      const v = /** @type {any} */ (this).labels;
      delete (/** @type {any} */ (this).labels);
      this.labels = v;
    }
    if (!this._built) this._build();
    for (const child of this.children) {
      const tag = child.tagName.toLowerCase();
      if (tag === "short-instructions") child.slot = "short";
      if (tag === "full-instructions") child.slot = "full";
    }
    this._updateInstructionsVisibility();
  }

  /** @param {string} name @param {string | null} _old @param {string | null} value */
  attributeChangedCallback(name, _old, value) {
    if (!this._built) this._build();
    if (name === "labels") this.labels = /** @type {any} */ (value ?? "");
    else if (name === "header") this._q(".header").textContent = value ?? "";
    else if (name === "src" || name === "initial-value") this._scheduleLoad();
  }

  // -------------------------------------------------------------------------------------------- building

  /** @param {string} sel @returns {any} */
  _q(sel) {
    return /** @type {ShadowRoot} */ (this.shadowRoot).querySelector(sel);
  }

  _build() {
    this._built = true;
    const root = this.attachShadow({ mode: "open" });
    const tools = TOOLS.map(
      (t) => `<button type="button" data-tool="${t.id}" title="${t.text} (${t.key})" aria-pressed="false">${t.text}</button>`,
    ).join("");
    const help = helpLines()
      .map((line) => `<li>${line.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</li>`)
      .join("");
    root.innerHTML = `<style>${CSS}</style>
<div class="root" part="root">
  <aside class="sidebar" part="sidebar"><h4>Instructions</h4><slot name="short"></slot><slot name="full"></slot>
    <div class="no-instructions">See the labels on the right.</div>
    <h4>Tools</h4><ul class="help">${help}</ul></aside>
  <section class="main">
    <div class="header" part="header"></div>
    <div class="toolbar" role="toolbar">${tools}
      <button type="button" data-action="done" title="Finish this object (Enter)" hidden>Done</button>
      <button type="button" data-action="undo" title="Undo (Ctrl+Z)" disabled>Undo</button>
      <button type="button" data-action="redo" title="Redo (Ctrl+Shift+Z)" disabled>Redo</button>
      <button type="button" data-action="zoom-out" title="Zoom out (-)">-</button>
      <button type="button" data-action="zoom-in" title="Zoom in (+)">+</button>
      <button type="button" data-action="fit" title="Fit the image to the area (0)">Fit</button>
      <label>Brush <input type="range" class="brush-size" min="1" max="100" value="${this._brushSize}"></label>
      <label>Opacity <input type="range" class="opacity" min="0" max="100" value="${Math.round(this._opacity * 100)}"></label>
    </div>
    <div class="workarea"><div class="stage">
      <canvas class="image"></canvas><canvas class="overlay"></canvas><canvas class="ui"></canvas>
    </div></div>
    <div class="message" role="status" aria-live="polite"></div>
  </section>
  <aside class="labels" part="labels"><h4>Labels</h4><ul></ul></aside>
</div>`;
    root.querySelectorAll("button[data-tool]").forEach((b) =>
      b.addEventListener("click", () => this.selectTool(/** @type {HTMLElement} */ (b).dataset.tool ?? "brush")),
    );
    this._q('[data-action="done"]').addEventListener("click", () => this.finishObject());
    this._q('[data-action="undo"]').addEventListener("click", () => this.undo());
    this._q('[data-action="redo"]').addEventListener("click", () => this.redo());
    this._q('[data-action="zoom-in"]').addEventListener("click", () => this._setZoom(this._zoom * 1.5));
    this._q('[data-action="zoom-out"]').addEventListener("click", () => this._setZoom(this._zoom / 1.5));
    this._q('[data-action="fit"]').addEventListener("click", () => this.fit());
    this._q(".brush-size").addEventListener("input", (/** @type {Event} */ e) => {
      this._brushSize = Number(/** @type {HTMLInputElement} */ (e.target).value);
    });
    this._q(".opacity").addEventListener("input", (/** @type {Event} */ e) => {
      this._opacity = Number(/** @type {HTMLInputElement} */ (e.target).value) / 100;
      this._q("canvas.overlay").style.opacity = String(this._opacity);
    });
    this._q("canvas.overlay").style.opacity = String(this._opacity);
    const ui = /** @type {HTMLCanvasElement} */ (this._q("canvas.ui"));
    ui.addEventListener("pointerdown", (e) => this._onPointerDown(e));
    ui.addEventListener("pointermove", (e) => this._onPointerMove(e));
    ui.addEventListener("pointerup", (e) => this._onPointerUp(e));
    ui.addEventListener("pointercancel", (e) => this._onPointerUp(e));
    ui.addEventListener("contextmenu", (e) => e.preventDefault()); // right click is a negative corrective click
    ui.addEventListener("pointerleave", () => {
      this._hover = null;
      if (this._map) this._drawUi();
    });
    ui.addEventListener("dblclick", () => this._closePolygon());
    root.querySelectorAll("slot").forEach((s) => s.addEventListener("slotchange", () => this._updateInstructionsVisibility()));
    document.addEventListener("keydown", (e) => this._onKey(e));
    this.addEventListener("pointerdown", () => (SegmentationElement.active = this));
    this.selectTool("brush");
    this._renderLabels();
  }

  _updateInstructionsVisibility() {
    if (!this.shadowRoot) return;
    const any = this.querySelector(":scope > short-instructions, :scope > full-instructions");
    this._q(".no-instructions").hidden = Boolean(any);
  }

  // ---------------------------------------------------------------------------------------------- labels

  /** @param {string[]} names */
  _setLabels(names) {
    const lut = this._model.setLabels(names);
    if (lut && this._map) {
      // keep painted pixels with their label (by name); pixels of labels that are gone become unpainted
      const d = this._map.data;
      for (let i = 0; i < d.length; i++) d[i] = lut[d[i]];
      if (this._initialData) this._initialData = this._initialData.map((v) => lut[v]);
      this._undo.clear(); // the history's pixel values refer to the old label order
      this._updateButtons();
    }
    this._redraw(null);
    this._renderLabels();
  }

  _renderLabels() {
    const ul = this._q(".labels ul");
    if (!ul) return;
    renderLabelPanel(ul, this._model, {
      selectLabel: (i) => this.selectLabel(i),
      selectInstance: (k) => this.selectInstance(k),
      addInstance: (name) => this.addInstance(name),
    });
  }

  /** Make label `index` (0-based) the one painted (semantic) or the one "add instance" uses (instance). @param {number} index */
  selectLabel(index) {
    if (!this._model.selectLabel(index)) return;
    this.finishObject();
    this._renderLabels();
  }

  /** Instance mode: a new instance of `label`, with the next free colour, selected. Returns its 1-based id. @param {string} label */
  addInstance(label) {
    const id = this._model.addInstance(label);
    if (id < 0) {
      this._message(`at most ${MAX_LABELS} instances fit in Ground Truth's 8-bit PNG`, true);
      return -1;
    }
    this.finishObject();
    this._renderLabels();
    this._redraw(null);
    return id;
  }

  /** Instance mode: paint into instance `k` (0-based). @param {number} k */
  selectInstance(k) {
    if (!this._model.selectInstance(k)) return;
    this.finishObject();
    this._renderLabels();
  }

  /** The map value the tools paint now, or 0 with a message when nothing is selected. */
  _paintValue() {
    const v = this._model.paintValue();
    if (typeof v === "string") {
      this._message(v, true);
      return 0;
    }
    return v;
  }

  // ----------------------------------------------------------------------------------------------- image

  _scheduleLoad() {
    const token = ++this._loadToken;
    this.removeAttribute("data-ready");
    this.ready = new Promise((resolve) => queueMicrotask(() => resolve(undefined))).then(() => (token === this._loadToken ? this._load(token) : undefined));
  }

  /** @param {number} token */
  async _load(token) {
    const src = this.src;
    if (!src) return;
    try {
      const img = new Image();
      img.decoding = "async";
      img.src = src;
      try {
        await img.decode();
      } catch {
        throw new Error(`could not load the image ${src}: check that the URL works (grant_read_access)`);
      }
      if (token !== this._loadToken) return;
      const W = img.naturalWidth;
      const H = img.naturalHeight;
      for (const c of /** @type {NodeListOf<HTMLCanvasElement>} */ (this.shadowRoot?.querySelectorAll("canvas"))) {
        c.width = W;
        c.height = H;
      }
      /** @type {CanvasRenderingContext2D} */ (this._q("canvas.image").getContext("2d")).drawImage(img, 0, 0);
      this._map = createIndexMap(W, H);
      this._overlayPixels = new ImageData(W, H);
      this._undo.clear();
      this._initialData = null;
      try {
        await this._loadInitialValue(token);
      } catch (err) {
        // keep the task usable: start from an empty map and say why the prior labels are missing
        this._initialData = this.getAttribute("initial-value") ? new Uint8Array(W * H) : null;
        this._map = createIndexMap(W, H);
        this._showError(err);
      }
      if (token !== this._loadToken) return;
      this.fit();
      this._redraw(null);
      this._updateButtons();
      this.setAttribute("data-ready", "");
      this.dispatchEvent(new CustomEvent("image-loaded", { detail: { width: W, height: H } }));
    } catch (err) {
      this._showError(err);
    }
  }

  /** @param {number} token */
  async _loadInitialValue(token) {
    const init = parseInitialValue(this.getAttribute("initial-value"), this.mode);
    if (!init) return;
    const m = this._model;
    /** @type {(string | null)[]} */
    let colors;
    if (init.mode === "semantic") {
      m.initialColors = init.colors;
      const unknown = Object.keys(init.colors).filter((k) => !m.labels.includes(k));
      if (unknown.length) {
        // the label file must hold the prior job's labels (reference §4); keep going with the known ones
        this._message(`initial-value names labels that are not in labels: ${unknown.join(", ")}; their pixels are left unpainted`, true);
      }
      this._setLabels(m.labels);
      colors = m.labels.map((n) => (n in init.colors ? m.labelColors[n] : null));
    } else {
      m.instances = init.instances;
      for (const inst of m.instances) if (!m.labels.includes(inst.label)) m.labels.push(inst.label);
      m.selectedInstance = m.instances.length ? 0 : -1;
      m.selected = m.instances.length ? m.labels.indexOf(m.instances[0].label) : 0;
      this._renderLabels();
      colors = m.instances.map((x) => x.color);
    }
    if (!init.src || !this._map) return;
    const map = await loadInitialMap(init.src, this._map.width, this._map.height, colors);
    if (token !== this._loadToken || !this._map) return;
    this._map = map;
    this._initialData = this._map.data.slice();
  }

  // ---------------------------------------------------------------------------------------------- drawing

  /** Fit the image to the work area (small images are enlarged, large ones shrunk). */
  fit() {
    if (!this._map) return;
    const area = /** @type {HTMLElement} */ (this._q(".workarea"));
    const maxH = parseFloat(getComputedStyle(area).maxHeight) || window.innerHeight * 0.8;
    this._setZoom(fitZoom(this._map.width, this._map.height, area.clientWidth, maxH - 2));
  }

  /** @param {number} z */
  _setZoom(z) {
    if (!this._map) return;
    this._zoom = clampZoom(z);
    const stage = this._q(".stage");
    stage.style.width = `${Math.round(this._map.width * this._zoom)}px`;
    this.dataset.zoom = this._zoom.toFixed(3);
  }

  /** Repaint the overlay inside `box` (everything when null). @param {Box | null} box */
  _redraw(box) {
    if (!this._map || !this._overlayPixels) return;
    const b = box ?? { x0: 0, y0: 0, x1: this._map.width - 1, y1: this._map.height - 1 };
    indexToRgba(this._map, this._model.valueColors(), b, this._overlayPixels.data);
    const ctx = /** @type {CanvasRenderingContext2D} */ (this._q("canvas.overlay").getContext("2d"));
    ctx.putImageData(this._overlayPixels, 0, 0, b.x0, b.y0, b.x1 - b.x0 + 1, b.y1 - b.y0 + 1);
  }

  _drawUi() {
    const c = /** @type {HTMLCanvasElement} */ (this._q("canvas.ui"));
    drawUi(/** @type {CanvasRenderingContext2D} */ (c.getContext("2d")), c.width, c.height, {
      zoom: this._zoom,
      tool: this._tool,
      brushSize: this._brushSize,
      hover: this._hover,
      polygon: this._polygon.points,
      extreme: this._extreme,
      clicks: this._auto?.clicks ?? [],
    });
  }

  /** Image pixel coordinates (centre convention) of a pointer event. @param {PointerEvent | MouseEvent} e */
  _toImage(e) {
    const c = /** @type {HTMLCanvasElement} */ (this._q("canvas.ui"));
    return toImagePoint(e.clientX, e.clientY, c.getBoundingClientRect(), c.width, c.height);
  }

  // ----------------------------------------------------------------------------------------------- tools

  /** @param {string} tool */
  selectTool(tool) {
    this._cancelPending();
    if (tool !== this._tool) this.finishObject();
    this._tool = tool;
    this.shadowRoot?.querySelectorAll("button[data-tool]").forEach((b) => {
      b.setAttribute("aria-pressed", String(/** @type {HTMLElement} */ (b).dataset.tool === tool));
    });
    const t = TOOLS.find((x) => x.id === tool);
    this._message(t && (tool === "auto-segment" || tool === "polygon") ? t.hint : "");
  }

  /** End the corrective clicks on the last auto-segment result: the next 4 points start a new object. */
  finishObject() {
    if (!this._auto) return;
    this._auto = null;
    this._autoSeq++; // a refined answer still on its way is dropped
    this._updateButtons();
    if (this._map) this._drawUi();
    if (this._tool === "auto-segment") this._message("Auto-segment: next object, click its 4 extreme points");
  }

  _cancelPending() {
    this._polygon.cancel();
    this._extreme = [];
    if (this._map) this._drawUi();
  }

  /** @param {PointerEvent} e */
  _onPointerDown(e) {
    if (!this._map) return;
    SegmentationElement.active = this;
    const [x, y] = this._toImage(e);
    if (this._tool === "auto-segment") {
      this._autoSegmentPointer(e, x, y);
      return;
    }
    if (e.button !== 0) return;
    const ctx = this._toolContext();
    const stroke = this._strokeTool();
    if (stroke) {
      stroke.size = this._brushSize;
      if (stroke.down(ctx, x, y)) /** @type {HTMLElement} */ (e.target).setPointerCapture?.(e.pointerId);
    } else if (this._tool === "fill") {
      this._fill.down(ctx, x, y);
    } else if (this._tool === "polygon") {
      const near = (8 * this._map.width) / /** @type {HTMLCanvasElement} */ (this._q("canvas.ui")).getBoundingClientRect().width;
      this._polygon.down(ctx, x, y, near);
      this._drawUi();
    }
  }

  /** The brush or eraser when it is the tool, else null. */
  _strokeTool() {
    return this._tool === "brush" ? this._brush : this._tool === "eraser" ? this._eraser : null;
  }

  /** What the painting tools may use (paint-tools.js). @returns {import("./paint-tools.js").ToolContext} */
  _toolContext() {
    return {
      map: /** @type {IndexMap} */ (this._map),
      paintValue: () => this._paintValue(),
      commit: (edit, box) => this._commit(edit, box),
      redraw: (box) => this._redraw(box),
      message: (text, error) => this._message(text, error),
    };
  }

  /** Auto-segment tool: an extreme point, or a corrective click on the last result (tools.js's rules). @param {PointerEvent} e @param {number} x @param {number} y */
  _autoSegmentPointer(e, x, y) {
    if (this._busy) return;
    const action = autoSegmentAction(e, { hasResult: Boolean(this._auto), pointsPlaced: this._extreme.length });
    if (action.kind === "need-result") {
      this._message("right click and Shift+click remove a wrong part of the last auto-segment result: place 4 extreme points first", true);
    } else if (action.kind === "correct" && this._auto) {
      this._auto.clicks.push([Math.round(x * 100) / 100, Math.round(y * 100) / 100, action.positive]);
      this._drawUi();
      void this._autoSegment(true);
    } else if (action.kind === "point") {
      if (!this._paintValue()) return;
      this._extreme.push([x, y]);
      this._drawUi();
      if (this._extreme.length === 4) void this._autoSegment();
      else this._message(`Auto-segment: ${4 - this._extreme.length} more point(s)`);
    }
  }

  /** @param {PointerEvent} e */
  _onPointerMove(e) {
    const stroke = this._strokeTool();
    if (!stroke) return;
    this._hover = this._toImage(e);
    this._drawUi();
    if (!stroke.active || !this._map) return;
    const ctx = this._toolContext();
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) stroke.move(ctx, ...this._toImage(ev));
  }

  /** @param {PointerEvent} e */
  _onPointerUp(e) {
    const stroke = this._strokeTool();
    if (!stroke?.active || !this._map) return;
    stroke.up(this._toolContext(), ...this._toImage(e));
  }

  _closePolygon() {
    if (this._tool !== "polygon" || !this._map) return;
    this._polygon.close(this._toolContext());
    this._drawUi();
  }

  // ------------------------------------------------------------------------------------- auto-segment

  /**
   * Ask the kernel's segmenter for a mask and paint it: the fast first answer at once, the refined one when
   * it arrives (replacing it in the same undo step, unless the worker moved on). Without `refine`: the 4
   * extreme points just placed start a new object; with it: the last result is replaced by one that also
   * honours the corrective clicks.
   * @param {boolean} [refine]
   */
  async _autoSegment(refine = false) {
    const url = segmentUrl();
    if (!url) {
      this._message("auto-segment needs the preview server: run `gt-widget template preview`", true);
      this._cancelPending();
      return;
    }
    const map = /** @type {IndexMap} */ (this._map);
    /** @type {AutoJob} */
    const job =
      refine && this._auto
        ? this._auto
        : { points: this._extreme.map(([x, y]) => [Math.round(x * 100) / 100, Math.round(y * 100) / 100]), clicks: [], value: this._paintValue(), edit: null, seq: 0 };
    const seq = ++this._autoSeq;
    job.seq = seq;
    this._busySeq = seq;
    this.autoSegmentTimings = {};
    this._busy = true;
    this.setAttribute("data-busy", "");
    this.removeAttribute("data-refining");
    this._message(refine ? "Auto-segment: refining..." : "Auto-segment: segmenting...");
    const t0 = performance.now();
    try {
      const answers = segmentStaged(url, { src: new URL(this.src, location.href).href, points: job.points, clicks: job.clicks.slice() });
      for await (const a of answers) {
        if (seq !== this._autoSeq) break; // the worker moved on (another request, an edit, Done)
        if (a.width !== map.width || a.height !== map.height) {
          throw new Error(`auto-segment returned a ${a.width}x${a.height} mask for a ${map.width}x${map.height} image`);
        }
        if (a.stage === "refined" && (this._auto !== job || this._undo.done[this._undo.done.length - 1] !== job.edit)) break;
        const found = this._paintAuto(job, a.mask);
        const ms = Math.round(performance.now() - t0);
        this.autoSegmentTimings[a.stage] = ms;
        if (!a.final) {
          this.setAttribute("data-refining", "");
          this._message(`Auto-segment: first answer (score ${a.score.toFixed(2)}), refining... ${CORRECTIVE_HINT}`);
        } else {
          this.removeAttribute("data-refining");
          const what = a.stage === "refined" ? "refined" : "done";
          this._message(found ? `Auto-segment: ${what} (score ${a.score.toFixed(2)}). ${CORRECTIVE_HINT}` : "Auto-segment found nothing", !found);
        }
        if (a.stage === "first") {
          // the worker may go on (correct it, paint, move on) while the refined answer is computed
          this._busy = false;
          this.removeAttribute("data-busy");
          this._extreme = [];
          this._drawUi();
          this.dispatchEvent(new CustomEvent("auto-segment-first", { detail: { ms, final: a.final } }));
        }
      }
    } catch (err) {
      if (refine && this._auto === job && this._busy) job.clicks.pop();
      this._showError(err);
    } finally {
      if (this._busySeq === seq) {
        this._busy = false;
        this.removeAttribute("data-busy");
        this.removeAttribute("data-refining");
        this._extreme = [];
        this._drawUi();
        this._updateButtons();
        this.dispatchEvent(new CustomEvent("auto-segment-done"));
      }
    }
  }

  /** Paint `mask` as `job`'s result, replacing its previous result (one undo step). @param {AutoJob} job @param {Uint8Array} mask */
  _paintAuto(job, mask) {
    const map = /** @type {IndexMap} */ (this._map);
    if (job.edit && this._undo.done[this._undo.done.length - 1] === job.edit) this._undo.undo();
    const edit = new Edit(map, "auto-segment");
    const all = { x0: 0, y0: 0, x1: map.width - 1, y1: map.height - 1 };
    edit.touch(all);
    const box = applyMask(map, mask, job.value);
    job.edit = edit;
    this._auto = job;
    this._commit(edit, all);
    return Boolean(box);
  }

  /** @param {Edit} edit @param {Box | null} box */
  _commit(edit, box) {
    if (this._auto && edit !== this._auto.edit) this.finishObject(); // other edits end the refinement
    this._undo.push(edit);
    this._redraw(edit.box ?? box);
    this._updateButtons();
  }

  undo() {
    this._cancelPending();
    this.finishObject();
    const box = this._undo.undo();
    if (box) this._redraw(box);
    this._updateButtons();
  }

  redo() {
    this.finishObject();
    const box = this._undo.redo();
    if (box) this._redraw(box);
    this._updateButtons();
  }

  _updateButtons() {
    if (!this.shadowRoot) return;
    this._q('[data-action="undo"]').disabled = !this._undo.canUndo;
    this._q('[data-action="redo"]').disabled = !this._undo.canRedo;
    this._q('[data-action="done"]').hidden = !this._auto;
  }

  /** @param {KeyboardEvent} e */
  _onKey(e) {
    // keys go to the element last clicked, or to the only one on the page
    const only = document.querySelectorAll("crowd-semantic-segmentation, crowd-instance-segmentation").length === 1;
    if ((SegmentationElement.active ?? (only ? this : null)) !== this || !this._map) return;
    const t = /** @type {HTMLElement} */ (e.composedPath()[0] ?? e.target);
    if (t && /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) && /** @type {HTMLInputElement} */ (t).type !== "range") return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") {
      e.preventDefault();
      if (e.shiftKey) this.redo();
      else this.undo();
    } else if ((e.ctrlKey || e.metaKey) && key === "y") {
      e.preventDefault();
      this.redo();
    } else if (e.ctrlKey || e.metaKey || e.altKey) {
      return;
    } else if (key === "escape") {
      this._cancelPending();
      this.finishObject();
    } else if (key === "enter") {
      if (this._tool === "polygon") this._closePolygon();
      else this.finishObject();
    } else if (key === "+" || key === "=") this._setZoom(this._zoom * 1.5);
    else if (key === "-") this._setZoom(this._zoom / 1.5);
    else if (key === "0") this.fit();
    else if (/^[1-9]$/.test(key)) this.selectLabel(Number(key) - 1);
    else {
      const tool = toolForKey(key);
      if (tool) this.selectTool(tool);
    }
  }

  /** @param {string} text @param {boolean} [error] */
  _message(text, error = false) {
    const m = this._q(".message");
    if (!m) return;
    m.textContent = text;
    m.classList.toggle("error", error);
  }

  /** @param {unknown} err */
  _showError(err) {
    const text = err instanceof Error ? err.message : String(err);
    this._message(text, true);
    console.error(`${this.tagName.toLowerCase()}: ${text}`);
  }

  // ---------------------------------------------------------------------------------------------- answer

  /** Copy of the index map (0 = unpainted, k = label k / instance k), or null before the image loaded. */
  getIndexMap() {
    return this._map ? { width: this._map.width, height: this._map.height, data: this._map.data.slice() } : null;
  }

  /** Instance mode: the instances added so far ({label, color}, creation order = map value - 1). */
  get instances() {
    return this._model.instances.map((x) => ({ ...x }));
  }

  /**
   * What the element submits under its `name` (reference §1.3; see answer.js).
   * @returns {Promise<Record<string, unknown>>}
   */
  async getAnswer() {
    await this.ready;
    const map = this._map;
    if (!map) throw new Error(`${this.tagName.toLowerCase()} has no image loaded (src=${JSON.stringify(this.src)}); nothing to submit`);
    return buildAnswer({
      mode: this.mode,
      map,
      labels: this._model.labels,
      colors: this._model.valueColors(),
      instances: this._model.instances,
      initialData: this._initialData,
    });
  }
}

/** @type {SegmentationElement | null} the element keyboard shortcuts go to (the last one clicked) */
SegmentationElement.active = null;

export class CrowdSemanticSegmentation extends SegmentationElement {}

export class CrowdInstanceSegmentation extends SegmentationElement {
  /** @returns {"instance"} */
  get mode() {
    return "instance";
  }
}
