// <crowd-semantic-segmentation> and <crowd-instance-segmentation> stand-ins (reference §1.1-§1.4).
//
// Side that owns what: in the preview the BROWSER owns the annotation (an index map, see raster.js); the
// kernel only answers auto-segment requests (4 extreme points -> mask) and receives the submitted answer.
// Coordinates are (x, y) pixels of the original image, (0, 0) the centre of the top-left pixel.
//
// Choices where the reference is silent (§7: Ground Truth's 2-D tools are not documented in text):
// - tools: brush, eraser (clears any label), polygon (click vertices; click the first vertex, double-click
//   or Enter closes it), fill (flood fill of a connected region), auto-segment (4 extreme points);
//   undo/redo (Ctrl+Z / Ctrl+Shift+Z), brush size, overlay opacity and zoom;
// - an auto-segment mask is painted in the current label over whatever was there (one undo step);
//   Shift+click / Alt+click right after it are corrective clicks (positive / negative) that replace it with
//   the segmenter's refined mask (GT Plus's corrective clicks, reference §6); any other edit ends that;
// - the answer lists only painted labels (semantic) and only painted instances (instance mode), and unpainted
//   pixels are transparent, as gt_widget.groundtruth.formats writes them;
// - initialValueModified (semantic only, and only with initial-value) is true when the final map differs from
//   the initial one (so painting then undoing is "not modified").
import { segmentUrl } from "./config.js";
import { LabelsError, parseLabels } from "./labels.js";
import { MAX_LABELS, PALETTE } from "./palette.js";
import { bytesToBase64, decodePng, encodePng } from "./png.js";
import {
  applyMask,
  clipBox,
  createIndexMap,
  fillPolygon,
  floodFill,
  indexToRgba,
  paintSegment,
  rgbaToIndex,
  segmentBox,
  unionBox,
} from "./raster.js";
import { decodeRle } from "./rle.js";
import { Edit, UndoStack } from "./undo.js";

/** @typedef {import("./raster.js").IndexMap} IndexMap */
/** @typedef {import("./raster.js").Box} Box */
/** @typedef {{label: string, color: string}} InstanceInfo */

const TOOLS = [
  ["brush", "Brush", "B"],
  ["eraser", "Eraser", "E"],
  ["polygon", "Polygon", "P"],
  ["fill", "Fill", "F"],
  ["auto-segment", "Auto-segment", "A"],
];

const CSS = `
:host { display: block; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #16191f; }
.root { display: grid; grid-template-columns: minmax(180px, 260px) 1fr minmax(160px, 240px); gap: 12px; }
aside { background: #fafafa; border: 1px solid #eaeded; border-radius: 4px; padding: 10px; }
.header { font-size: 16px; font-weight: 600; margin: 0 0 8px; }
.toolbar { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin-bottom: 8px; }
.toolbar button { font: inherit; padding: 4px 10px; border: 1px solid #879596; background: #fff; border-radius: 3px; cursor: pointer; }
.toolbar button[aria-pressed="true"] { background: #0073bb; color: #fff; border-color: #0073bb; }
.toolbar button:disabled { opacity: .45; cursor: default; }
.toolbar label { display: inline-flex; gap: 4px; align-items: center; margin-left: 8px; }
.toolbar input[type=range] { width: 90px; }
.workarea { overflow: auto; max-height: 80vh; border: 1px solid #d5dbdb; background: #f2f3f3; }
.stage { position: relative; line-height: 0; }
.stage canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%; image-rendering: pixelated; }
.stage canvas.image { position: relative; }
.stage canvas.ui { cursor: crosshair; touch-action: none; }
.message { min-height: 1.4em; margin-top: 6px; color: #545b64; }
.message.error { color: #d13212; }
.labels ul { list-style: none; margin: 0; padding: 0; }
.labels li.label { margin: 2px 0; }
.labels .row { display: flex; align-items: center; gap: 6px; padding: 4px 6px; border-radius: 3px; cursor: pointer; }
.labels .row[aria-selected="true"] { background: #d9edf7; outline: 1px solid #0073bb; }
.labels .swatch { width: 14px; height: 14px; border-radius: 2px; border: 1px solid #0003; flex: none; }
.labels .instances { margin-left: 18px; }
.labels button.add-instance { font: inherit; font-size: 12px; margin: 2px 0 4px 24px; cursor: pointer; }
.labels h4, aside h4 { margin: 0 0 6px; font-size: 14px; }
`;

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
    /** @type {string[]} */
    this._labels = [];
    /** @type {Record<string, string>} colour of each label (semantic), default palette unless initial-value says */
    this._labelColors = {};
    /** @type {Record<string, string> | null} label colours named by initial-value's labelMappings */
    this._initialColors = null;
    this._strokeValue = 0;
    /** @type {[number, number] | null} where the pointer hovers (for the brush outline) */
    this._hover = null;
    /** @type {InstanceInfo[]} */
    this._instances = [];
    this._selected = 0; // semantic: label index; instance: selected label index
    this._selectedInstance = -1; // instance mode: index into _instances, -1 = none
    this._tool = "brush";
    this._brushSize = 12;
    this._opacity = 0.6;
    this._zoom = 1;
    /** @type {IndexMap | null} */
    this._map = null;
    /** @type {Uint8Array | null} the map as the initial value left it */
    this._initialData = null;
    this._undo = new UndoStack();
    /** @type {Edit | null} */
    this._stroke = null;
    /** @type {[number, number] | null} */
    this._last = null;
    /** @type {[number, number][]} */
    this._polygon = [];
    /** @type {[number, number][]} */
    this._extreme = [];
    this._busy = false;
    /** @type {{points: number[][], clicks: [number, number, boolean][], value: number, edit: Edit | null} | null} the last auto-segment, while it can be refined */
    this._auto = null;
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
    return [...this._labels];
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
      ([id, text, key]) => `<button type="button" data-tool="${id}" title="${text} (${key})" aria-pressed="false">${text}</button>`,
    ).join("");
    root.innerHTML = `<style>${CSS}</style>
<div class="root" part="root">
  <aside class="sidebar" part="sidebar"><h4>Instructions</h4><slot name="short"></slot><slot name="full"></slot>
    <div class="no-instructions">See the labels on the right.</div></aside>
  <section class="main">
    <div class="header" part="header"></div>
    <div class="toolbar" role="toolbar">${tools}
      <button type="button" data-action="undo" title="Undo (Ctrl+Z)" disabled>Undo</button>
      <button type="button" data-action="redo" title="Redo (Ctrl+Shift+Z)" disabled>Redo</button>
      <button type="button" data-action="zoom-out" title="Zoom out (-)">-</button>
      <button type="button" data-action="zoom-in" title="Zoom in (+)">+</button>
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
    this._q('[data-action="undo"]').addEventListener("click", () => this.undo());
    this._q('[data-action="redo"]').addEventListener("click", () => this.redo());
    this._q('[data-action="zoom-in"]').addEventListener("click", () => this._setZoom(this._zoom * 1.5));
    this._q('[data-action="zoom-out"]').addEventListener("click", () => this._setZoom(this._zoom / 1.5));
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
    if (names.length > MAX_LABELS) throw new LabelsError(`${names.length} labels given; at most ${MAX_LABELS} fit in Ground Truth's 8-bit PNG`);
    const before = this._labels;
    this._labels = names;
    this._labelColors = {};
    // label i takes PALETTE[i] (reference §1.5) unless initial-value's labelMappings gave it a colour
    names.forEach((n, i) => (this._labelColors[n] = this._initialColors?.[n] ?? PALETTE[i]));
    if (this._selected >= names.length) this._selected = 0;
    if (this.mode === "semantic" && this._map && before.some((n, i) => names[i] !== n)) {
      // keep painted pixels with their label (by name); pixels of labels that are gone become unpainted
      const lut = new Uint8Array(256);
      before.forEach((n, i) => (lut[i + 1] = names.indexOf(n) + 1));
      const d = this._map.data;
      for (let i = 0; i < d.length; i++) d[i] = lut[d[i]];
      if (this._initialData) this._initialData = this._initialData.map((v) => lut[v]);
      this._undo.clear(); // the history's pixel values refer to the old label order
      this._updateButtons();
    }
    this._redraw(null);
    this._renderLabels();
  }

  /** Colours of the map's values 1..n, in order (what the overlay and the PNG use). */
  _valueColors() {
    return this.mode === "semantic" ? this._labels.map((n) => this._labelColors[n]) : this._instances.map((i) => i.color);
  }

  _renderLabels() {
    const ul = this._q(".labels ul");
    if (!ul) return;
    ul.textContent = "";
    this._labels.forEach((name, i) => {
      const li = document.createElement("li");
      li.className = "label";
      li.dataset.label = name;
      const row = document.createElement("div");
      row.className = "row";
      row.setAttribute("role", "option");
      const selected = this.mode === "semantic" ? i === this._selected : i === this._selected && this._selectedInstance < 0;
      row.setAttribute("aria-selected", String(selected));
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = this._labelColors[name];
      const text = document.createElement("span");
      text.className = "name";
      text.textContent = i < 9 ? `${name} (${i + 1})` : name;
      if (this.mode === "semantic") row.append(sw); // instance mode: each instance has its own colour
      row.append(text);
      row.addEventListener("click", () => this.selectLabel(i));
      li.append(row);
      if (this.mode === "instance") {
        const list = document.createElement("ul");
        list.className = "instances";
        this._instances.forEach((inst, k) => {
          if (inst.label !== name) return;
          const r = document.createElement("li");
          r.className = "row instance";
          r.dataset.instance = String(k + 1);
          r.setAttribute("aria-selected", String(k === this._selectedInstance));
          const s = document.createElement("span");
          s.className = "swatch";
          s.style.background = inst.color;
          const t = document.createElement("span");
          const nth = this._instances.slice(0, k + 1).filter((x) => x.label === name).length;
          t.textContent = `${name} #${nth}`;
          r.append(s, t);
          r.addEventListener("click", () => this.selectInstance(k));
          list.append(r);
        });
        const add = document.createElement("button");
        add.type = "button";
        add.className = "add-instance";
        add.textContent = "add instance";
        add.addEventListener("click", () => this.addInstance(name));
        li.append(list, add);
      }
      ul.append(li);
    });
  }

  /**
   * Make label `index` (0-based) the one painted (semantic) or the one "add instance" uses (instance).
   * @param {number} index
   */
  selectLabel(index) {
    if (index < 0 || index >= this._labels.length) return;
    this._selected = index;
    if (this.mode === "instance") {
      const mine = this._instances.map((x, k) => (x.label === this._labels[index] ? k : -1)).filter((k) => k >= 0);
      this._selectedInstance = mine.length ? mine[mine.length - 1] : -1;
    }
    this._renderLabels();
  }

  /**
   * Instance mode: a new instance of `label`, with the next free colour, selected. Returns its 1-based id.
   * @param {string} label
   */
  addInstance(label) {
    const li = this._labels.indexOf(label);
    if (li < 0) throw new Error(`no label ${JSON.stringify(label)}; labels are ${JSON.stringify(this._labels)}`);
    if (this._instances.length >= MAX_LABELS) {
      this._message(`at most ${MAX_LABELS} instances fit in Ground Truth's 8-bit PNG`, true);
      return -1;
    }
    const used = new Set(this._instances.map((x) => x.color));
    const color = /** @type {string} */ (PALETTE.find((c) => !used.has(c)));
    this._instances.push({ label, color });
    this._selected = li;
    this._selectedInstance = this._instances.length - 1;
    this._renderLabels();
    this._redraw(null);
    return this._instances.length;
  }

  /**
   * Instance mode: paint into instance `k` (0-based).
   * @param {number} k
   */
  selectInstance(k) {
    if (k < 0 || k >= this._instances.length) return;
    this._selectedInstance = k;
    this._selected = this._labels.indexOf(this._instances[k].label);
    this._renderLabels();
  }

  /** The map value the tools paint now, or 0 with a message when nothing is selected. */
  _paintValue() {
    if (this.mode === "semantic") {
      if (!this._labels.length) {
        this._message("this task has no labels: set the labels attribute (e.g. labels=\"['Cat', 'Dog']\")", true);
        return 0;
      }
      return this._selected + 1;
    }
    if (this._selectedInstance < 0) {
      this._message('choose a label and press "add instance" first', true);
      return 0;
    }
    return this._selectedInstance + 1;
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
      const fit = Math.min(1, (this._q(".workarea").clientWidth || W) / W);
      this._setZoom(fit);
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
    const raw = this.getAttribute("initial-value");
    if (!raw || !raw.trim()) return;
    let value;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new Error(`initial-value is not valid JSON (${/** @type {Error} */ (err).message}); write it with | to_json | escape`);
    }
    if (!value || typeof value !== "object") throw new Error("initial-value must be a JSON object with src and labelMappings (or instances)");
    /** @type {(string | null)[]} */
    let colors;
    if (this.mode === "semantic") {
      const mappings = value.labelMappings ?? {};
      this._initialColors = Object.fromEntries(Object.entries(mappings).map(([k, v]) => [k, String(/** @type {any} */ (v).color).toLowerCase()]));
      const unknown = Object.keys(mappings).filter((k) => !this._labels.includes(k));
      if (unknown.length) {
        // the label file must hold the prior job's labels (reference §4); keep going with the known ones
        this._message(`initial-value names labels that are not in labels: ${unknown.join(", ")}; their pixels are left unpainted`, true);
      }
      this._setLabels(this._labels);
      colors = this._labels.map((n) => (n in mappings ? this._labelColors[n] : null));
    } else {
      const list = Array.isArray(value.instances) ? value.instances : [];
      this._instances = list.map((/** @type {any} */ x) => ({ label: String(x.label), color: String(x.color).toLowerCase() }));
      for (const inst of this._instances) if (!this._labels.includes(inst.label)) this._labels.push(inst.label);
      this._selectedInstance = this._instances.length ? 0 : -1;
      this._selected = this._instances.length ? this._labels.indexOf(this._instances[0].label) : 0;
      this._renderLabels();
      colors = this._instances.map((x) => x.color);
    }
    if (!value.src) return;
    const res = await fetch(value.src);
    if (!res.ok) throw new Error(`could not load initial-value src ${value.src}: HTTP ${res.status}`);
    const png = await decodePng(new Uint8Array(await res.arrayBuffer()));
    if (token !== this._loadToken || !this._map) return;
    if (png.width !== this._map.width || png.height !== this._map.height) {
      throw new Error(`initial-value image is ${png.width}x${png.height} but the task image is ${this._map.width}x${this._map.height}`);
    }
    this._map = rgbaToIndex(png.rgba, png.width, png.height, colors);
    this._initialData = this._map.data.slice();
  }

  // ---------------------------------------------------------------------------------------------- drawing

  /** @param {number} z */
  _setZoom(z) {
    if (!this._map) return;
    this._zoom = Math.min(16, Math.max(0.05, z));
    const stage = this._q(".stage");
    stage.style.width = `${Math.round(this._map.width * this._zoom)}px`;
  }

  /** Repaint the overlay inside `box` (everything when null). @param {Box | null} box */
  _redraw(box) {
    if (!this._map || !this._overlayPixels) return;
    const b = box ?? { x0: 0, y0: 0, x1: this._map.width - 1, y1: this._map.height - 1 };
    indexToRgba(this._map, this._valueColors(), b, this._overlayPixels.data);
    const ctx = /** @type {CanvasRenderingContext2D} */ (this._q("canvas.overlay").getContext("2d"));
    ctx.putImageData(this._overlayPixels, 0, 0, b.x0, b.y0, b.x1 - b.x0 + 1, b.y1 - b.y0 + 1);
  }

  _drawUi() {
    const c = /** @type {HTMLCanvasElement} */ (this._q("canvas.ui"));
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
    ctx.clearRect(0, 0, c.width, c.height);
    const scale = 1 / this._zoom;
    ctx.lineWidth = 2 * scale;
    if (this._polygon.length) {
      ctx.strokeStyle = "#ff00ff";
      ctx.beginPath();
      this._polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x + 0.5, y + 0.5) : ctx.moveTo(x + 0.5, y + 0.5)));
      ctx.stroke();
      for (const [x, y] of this._polygon) ctx.strokeRect(x + 0.5 - 3 * scale, y + 0.5 - 3 * scale, 6 * scale, 6 * scale);
    }
    if (this._hover && (this._tool === "brush" || this._tool === "eraser")) {
      // the brush outline: what a press here would paint
      ctx.strokeStyle = this._tool === "eraser" ? "#ffffff" : "#000000";
      ctx.lineWidth = scale;
      ctx.beginPath();
      ctx.arc(this._hover[0] + 0.5, this._hover[1] + 0.5, this._brushSize / 2, 0, Math.PI * 2);
      ctx.stroke();
    }
    if (this._auto && this._tool === "auto-segment") {
      for (const [x, y, positive] of this._auto.clicks) {
        ctx.fillStyle = positive ? "#00c000" : "#e00000";
        ctx.beginPath();
        ctx.arc(x + 0.5, y + 0.5, 4 * scale, 0, Math.PI * 2);
        ctx.fill();
      }
    }
    for (const [x, y] of this._extreme) {
      ctx.fillStyle = "#ff00ff";
      ctx.beginPath();
      ctx.arc(x + 0.5, y + 0.5, 5 * scale, 0, Math.PI * 2);
      ctx.fill();
    }
  }

  /** Image pixel coordinates (centre convention) of a pointer event. @param {PointerEvent | MouseEvent} e */
  _toImage(e) {
    const c = /** @type {HTMLCanvasElement} */ (this._q("canvas.ui"));
    const r = c.getBoundingClientRect();
    return /** @type {[number, number]} */ ([
      ((e.clientX - r.left) * c.width) / r.width - 0.5,
      ((e.clientY - r.top) * c.height) / r.height - 0.5,
    ]);
  }

  /** @param {string} tool */
  selectTool(tool) {
    this._cancelPending();
    this._tool = tool;
    this.shadowRoot?.querySelectorAll("button[data-tool]").forEach((b) => {
      b.setAttribute("aria-pressed", String(/** @type {HTMLElement} */ (b).dataset.tool === tool));
    });
    if (tool === "auto-segment") this._message("Auto-segment: click the top-, bottom-, left- and right-most points of the object");
    else if (tool === "polygon") this._message("Polygon: click the corners; click the first corner, double-click or press Enter to fill");
    else this._message("");
  }

  _cancelPending() {
    this._polygon = [];
    this._extreme = [];
    if (this._map) this._drawUi();
  }

  /** @param {PointerEvent} e */
  _onPointerDown(e) {
    if (!this._map || e.button !== 0) return;
    SegmentationElement.active = this;
    const [x, y] = this._toImage(e);
    if (this._tool === "brush" || this._tool === "eraser") {
      const value = this._tool === "eraser" ? 0 : this._paintValue();
      if (this._tool === "brush" && !value) return;
      /** @type {HTMLElement} */ (e.target).setPointerCapture?.(e.pointerId);
      this._stroke = new Edit(this._map, this._tool);
      this._strokeValue = value;
      this._last = [x, y];
      this._paintTo(x, y);
    } else if (this._tool === "fill") {
      const value = this._paintValue();
      if (!value) return;
      const edit = new Edit(this._map, "fill");
      edit.touch({ x0: 0, y0: 0, x1: this._map.width - 1, y1: this._map.height - 1 });
      const box = floodFill(this._map, x, y, value);
      this._commit(edit, box);
    } else if (this._tool === "polygon") {
      if (this._polygon.length >= 3) {
        const [fx, fy] = this._polygon[0];
        const near = (8 * this._map.width) / /** @type {HTMLCanvasElement} */ (this._q("canvas.ui")).getBoundingClientRect().width;
        if (Math.hypot(x - fx, y - fy) <= near) {
          this._closePolygon();
          return;
        }
      }
      this._polygon.push([x, y]);
      this._drawUi();
    } else if (this._tool === "auto-segment") {
      if (this._busy) return;
      if ((e.shiftKey || e.altKey) && this._extreme.length === 0) {
        if (!this._auto) {
          this._message("corrective clicks refine the last auto-segment result: place 4 extreme points first", true);
          return;
        }
        this._auto.clicks.push([Math.round(x * 100) / 100, Math.round(y * 100) / 100, !e.altKey]);
        this._drawUi();
        this._autoSegment(true);
        return;
      }
      if (!this._paintValue()) return;
      this._auto = null;
      this._extreme.push([x, y]);
      this._drawUi();
      if (this._extreme.length === 4) this._autoSegment();
      else this._message(`Auto-segment: ${4 - this._extreme.length} more point(s)`);
    }
  }

  /** @param {PointerEvent} e */
  _onPointerMove(e) {
    if (this._tool === "brush" || this._tool === "eraser") {
      this._hover = this._toImage(e);
      this._drawUi();
    }
    if (!this._stroke) return;
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const [x, y] = this._toImage(ev);
      this._paintTo(x, y);
    }
  }

  /** @param {PointerEvent} e */
  _onPointerUp(e) {
    if (!this._stroke) return;
    const [x, y] = this._toImage(e);
    this._paintTo(x, y);
    const edit = this._stroke;
    this._stroke = null;
    this._commit(edit, null);
  }

  /** @param {number} x @param {number} y */
  _paintTo(x, y) {
    if (!this._stroke || !this._map || !this._last) return;
    const r = this._brushSize / 2;
    const [lx, ly] = this._last;
    const box = clipBox(this._map, segmentBox(lx, ly, x, y, r));
    this._stroke.touch(box);
    paintSegment(this._map, lx, ly, x, y, r, this._strokeValue ?? 0);
    this._last = [x, y];
    this._redraw(box);
  }

  _closePolygon() {
    if (this._tool !== "polygon" || !this._map) return;
    if (this._polygon.length < 3) {
      this._message("a polygon needs at least 3 corners", true);
      return;
    }
    const value = this._paintValue();
    if (!value) return;
    const pts = this._polygon;
    this._polygon = [];
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const edit = new Edit(this._map, "polygon");
    edit.touch(clipBox(this._map, { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) }));
    const box = fillPolygon(this._map, pts, value);
    this._drawUi();
    this._commit(edit, box);
  }

  /**
   * Ask the kernel's segmenter for a mask and paint it. Without `refine`: the 4 extreme points just placed
   * start a new object. With `refine`: the last auto-segment result is replaced by the one that also
   * honours the corrective clicks (Shift+click: part of the object, Alt+click: not part of it).
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
    /** @type {{points: number[][], clicks: [number, number, boolean][], value: number, edit: Edit | null}} */
    const job = refine && this._auto
      ? this._auto
      : { points: this._extreme.map(([x, y]) => [Math.round(x * 100) / 100, Math.round(y * 100) / 100]), clicks: [], value: this._paintValue(), edit: null };
    this._busy = true;
    this.setAttribute("data-busy", "");
    this._message(refine ? "Auto-segment: refining..." : "Auto-segment: segmenting...");
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ src: new URL(this.src, location.href).href, points: job.points, clicks: job.clicks }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.error || `auto-segment failed: HTTP ${res.status}`);
      if (body.width !== map.width || body.height !== map.height) {
        throw new Error(`auto-segment returned a ${body.width}x${body.height} mask for a ${map.width}x${map.height} image`);
      }
      const mask = decodeRle(body);
      if (job.edit && this._undo.done[this._undo.done.length - 1] === job.edit) this._undo.undo(); // replace the last result
      const edit = new Edit(map, "auto-segment");
      edit.touch({ x0: 0, y0: 0, x1: map.width - 1, y1: map.height - 1 });
      const box = applyMask(map, mask, job.value);
      job.edit = edit;
      this._commit(edit, unionBox(box, { x0: 0, y0: 0, x1: map.width - 1, y1: map.height - 1 }));
      this._auto = job;
      const how = "Shift+click adds a missed part, Alt+click removes a wrong one";
      this._message(box ? `Auto-segment: done (score ${Number(body.score ?? 0).toFixed(2)}). ${how}` : "Auto-segment found nothing", !box);
    } catch (err) {
      if (refine && this._auto) this._auto.clicks.pop();
      this._showError(err);
    } finally {
      this._busy = false;
      this.removeAttribute("data-busy");
      this._extreme = [];
      this._drawUi();
      this.dispatchEvent(new CustomEvent("auto-segment-done"));
    }
  }

  /** @param {Edit} edit @param {Box | null} box */
  _commit(edit, box) {
    if (this._auto && edit !== this._auto.edit) this._auto = null; // other edits end the refinement
    this._undo.push(edit);
    this._redraw(edit.box ?? box);
    this._updateButtons();
  }

  undo() {
    this._cancelPending();
    this._auto = null;
    const box = this._undo.undo();
    if (box) this._redraw(box);
    this._updateButtons();
  }

  redo() {
    this._auto = null;
    const box = this._undo.redo();
    if (box) this._redraw(box);
    this._updateButtons();
  }

  _updateButtons() {
    if (!this.shadowRoot) return;
    this._q('[data-action="undo"]').disabled = !this._undo.canUndo;
    this._q('[data-action="redo"]').disabled = !this._undo.canRedo;
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
    } else if (key === "escape") this._cancelPending();
    else if (key === "enter") this._closePolygon();
    else if (key === "+" || key === "=") this._setZoom(this._zoom * 1.5);
    else if (key === "-") this._setZoom(this._zoom / 1.5);
    else if (/^[1-9]$/.test(key)) this.selectLabel(Number(key) - 1);
    else {
      const tool = TOOLS.find((x) => x[2].toLowerCase() === key);
      if (tool) this.selectTool(tool[0]);
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

  /**
   * What the element submits under its `name` (reference §1.3). Semantic: labeledImage, labelMappings,
   * inputImageProperties (+ initialValueModified with initial-value); instance: labeledImage, instances,
   * inputImageProperties.
   * @returns {Promise<Record<string, unknown>>}
   */
  async getAnswer() {
    await this.ready;
    const map = this._map;
    if (!map) throw new Error(`${this.tagName.toLowerCase()} has no image loaded (src=${JSON.stringify(this.src)}); nothing to submit`);
    const counts = new Uint32Array(256);
    for (let i = 0; i < map.data.length; i++) counts[map.data[i]]++;
    const present = { has: (/** @type {number} */ k) => counts[k] > 0 };
    if (this.mode === "semantic") {
      const colors = this._valueColors();
      /** @type {Record<string, {color: string}>} */
      const labelMappings = {};
      this._labels.forEach((n, i) => {
        if (present.has(i + 1)) labelMappings[n] = { color: colors[i] };
      });
      const png = await encodePng(indexToRgba(map, colors), map.width, map.height);
      /** @type {Record<string, unknown>} */
      const answer = {
        inputImageProperties: { height: map.height, width: map.width },
        labelMappings,
        labeledImage: { pngImageData: bytesToBase64(png) },
      };
      if (this._initialData) answer.initialValueModified = !map.data.every((v, i) => v === this._initialData?.[i]);
      return answer;
    }
    // instance mode: keep only painted instances; their colours tie them to the PNG, so no renumbering needed
    const colors = this._valueColors();
    const png = await encodePng(indexToRgba(map, colors), map.width, map.height);
    return {
      inputImageProperties: { height: map.height, width: map.width },
      instances: this._instances.filter((_, k) => present.has(k + 1)).map((x) => ({ color: x.color, label: x.label })),
      labeledImage: { pngImageData: bytesToBase64(png) },
    };
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
