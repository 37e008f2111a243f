// The label side of the segmentation stand-ins: `LabelModel` (labels, their colours, instances, what is
// selected, which map value the tools paint; no DOM) and `renderLabelPanel` (the list on the right).
//
// Map values: semantic mode, value k = label k (1-based, in `labels` order); instance mode, value k =
// instance k (1-based, in creation order). 0 = unpainted.
import { LabelsError } from "./labels.js";
import { MAX_LABELS, PALETTE } from "./palette.js";

/** @typedef {{label: string, color: string}} InstanceInfo */

export class LabelModel {
  /** @param {"semantic" | "instance"} mode */
  constructor(mode) {
    this.mode = mode;
    /** @type {string[]} */
    this.labels = [];
    /** @type {Record<string, string>} colour of each label (semantic): palette order unless initial-value names one */
    this.labelColors = {};
    /** @type {Record<string, string> | null} */
    this.initialColors = null;
    /** @type {InstanceInfo[]} */
    this.instances = [];
    this.selected = 0; // label index
    this.selectedInstance = -1; // instance mode: index into instances, -1 = none
  }

  /**
   * Set the label names; returns a lookup table old value -> new value when painted semantic values must be
   * renumbered (labels reordered or removed), else null.
   * @param {string[]} names
   * @returns {Uint8Array | null}
   */
  setLabels(names) {
    if (names.length > MAX_LABELS) throw new LabelsError(`${names.length} labels given; at most ${MAX_LABELS} fit in Ground Truth's 8-bit PNG`);
    const before = this.labels;
    this.labels = names;
    this.labelColors = {};
    // label i takes PALETTE[i] (reference §1.5) unless initial-value's labelMappings gave it a colour
    names.forEach((n, i) => (this.labelColors[n] = this.initialColors?.[n] ?? PALETTE[i]));
    if (this.selected >= names.length) this.selected = 0;
    if (this.mode !== "semantic" || !before.some((n, i) => names[i] !== n)) return null;
    const lut = new Uint8Array(256);
    before.forEach((n, i) => (lut[i + 1] = names.indexOf(n) + 1));
    return lut;
  }

  /** Colours of the map's values 1..n, in order (what the overlay and the PNG use). */
  valueColors() {
    return this.mode === "semantic" ? this.labels.map((n) => this.labelColors[n]) : this.instances.map((i) => i.color);
  }

  /** Select label `index` (0-based); instance mode selects its newest instance. Returns false if out of range. @param {number} index */
  selectLabel(index) {
    if (index < 0 || index >= this.labels.length) return false;
    this.selected = index;
    if (this.mode === "instance") {
      const mine = this.instances.map((x, k) => (x.label === this.labels[index] ? k : -1)).filter((k) => k >= 0);
      this.selectedInstance = mine.length ? mine[mine.length - 1] : -1;
    }
    return true;
  }

  /** A new instance of `label` with the next unused palette colour, selected; returns its 1-based id, or -1 when full. @param {string} label */
  addInstance(label) {
    const li = this.labels.indexOf(label);
    if (li < 0) throw new Error(`no label ${JSON.stringify(label)}; labels are ${JSON.stringify(this.labels)}`);
    if (this.instances.length >= MAX_LABELS) return -1;
    const used = new Set(this.instances.map((x) => x.color));
    const color = /** @type {string} */ (PALETTE.find((c) => !used.has(c)));
    this.instances.push({ label, color });
    this.selected = li;
    this.selectedInstance = this.instances.length - 1;
    return this.instances.length;
  }

  /** @param {number} k 0-based */
  selectInstance(k) {
    if (k < 0 || k >= this.instances.length) return false;
    this.selectedInstance = k;
    this.selected = this.labels.indexOf(this.instances[k].label);
    return true;
  }

  /** The map value the tools paint now, or an error text saying what to choose first. @returns {number | string} */
  paintValue() {
    if (this.mode === "semantic") {
      if (!this.labels.length) return "this task has no labels: set the labels attribute (e.g. labels=\"['Cat', 'Dog']\")";
      return this.selected + 1;
    }
    if (this.selectedInstance < 0) return 'choose a label and press "add instance" first';
    return this.selectedInstance + 1;
  }
}

/**
 * Render the label list into `ul`: one row per label (semantic: with its colour), in instance mode each
 * label's instances under it and an "add instance" button.
 * @param {HTMLElement} ul @param {LabelModel} model
 * @param {{selectLabel: (i: number) => void, selectInstance: (k: number) => void, addInstance: (label: string) => void}} on
 */
export function renderLabelPanel(ul, model, on) {
  ul.textContent = "";
  model.labels.forEach((name, i) => {
    const li = document.createElement("li");
    li.className = "label";
    li.dataset.label = name;
    const row = document.createElement("div");
    row.className = "row";
    row.setAttribute("role", "option");
    const selected = model.mode === "semantic" ? i === model.selected : i === model.selected && model.selectedInstance < 0;
    row.setAttribute("aria-selected", String(selected));
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = model.labelColors[name];
    const text = document.createElement("span");
    text.className = "name";
    text.textContent = i < 9 ? `${name} (${i + 1})` : name;
    if (model.mode === "semantic") row.append(sw); // instance mode: each instance has its own colour
    row.append(text);
    row.addEventListener("click", () => on.selectLabel(i));
    li.append(row);
    if (model.mode === "instance") {
      const list = document.createElement("ul");
      list.className = "instances";
      model.instances.forEach((inst, k) => {
        if (inst.label !== name) return;
        const r = document.createElement("li");
        r.className = "row instance";
        r.dataset.instance = String(k + 1);
        r.setAttribute("aria-selected", String(k === model.selectedInstance));
        const s = document.createElement("span");
        s.className = "swatch";
        s.style.background = inst.color;
        const t = document.createElement("span");
        const nth = model.instances.slice(0, k + 1).filter((x) => x.label === name).length;
        t.textContent = `${name} #${nth}`;
        r.append(s, t);
        r.addEventListener("click", () => on.selectInstance(k));
        list.append(r);
      });
      const add = document.createElement("button");
      add.type = "button";
      add.className = "add-instance";
      add.textContent = "add instance";
      add.addEventListener("click", () => on.addInstance(name));
      li.append(list, add);
    }
    ul.append(li);
  });
}
