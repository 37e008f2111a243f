// <crowd-form> and <crowd-button> stand-ins (reference §1.2: crowd-form is the parent of the task elements
// and appends a submit crowd-button when the template has none).
//
// Submitting: a cancelable "submit" event is dispatched on the crowd-form first (templates validate there
// and call preventDefault()); then every descendant with a `name` contributes its value to one object, the
// answerContent of a worker response: crowd elements give their answer object (getAnswer()), plain
// inputs their value. Choices (Ground Truth's handling of plain inputs is not in the reference): text-like
// inputs, textareas and selects give their value; a checkbox gives {"on": checked}; a radio group gives the
// value of its checked radio. The object is POSTed as JSON to the preview server (config.js).
import { submitUrl } from "./config.js";

const FORM_CSS = `:host { display: block; }
.footer { margin-top: 12px; display: flex; gap: 12px; align-items: center; font: 14px system-ui, sans-serif; }
.status.error { color: #d13212; }
.status.ok { color: #1d8102; }`;

export class CrowdForm extends HTMLElement {
  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${FORM_CSS}</style><slot></slot>
<div class="footer"><slot name="submit"></slot><span class="status" role="status" aria-live="polite"></span></div>`;
    this._submitting = false;
    /** @type {Record<string, unknown> | null} the last answer sent */
    this.lastAnswer = null;
    this.addEventListener("keydown", (e) => {
      const t = /** @type {HTMLElement} */ (e.target);
      if (e.key === "Enter" && t instanceof HTMLInputElement && !/^(button|submit|checkbox|radio|range)$/.test(t.type)) {
        e.preventDefault(); // a bare <form> would submit on Enter; the worker console does not
      }
    });
  }

  connectedCallback() {
    // wait for the children to be parsed before deciding whether a submit button exists
    const check = () => {
      const has = this.querySelector('crowd-button[form-action="submit"], button[type="submit"], input[type="submit"]');
      if (!has) {
        const b = document.createElement("crowd-button");
        b.setAttribute("form-action", "submit");
        b.setAttribute("variant", "primary");
        b.slot = "submit";
        b.textContent = "Submit";
        this.append(b);
      }
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", check, { once: true });
    else check();
    this.addEventListener("click", (e) => {
      const btn = /** @type {HTMLElement} */ (e.target).closest?.('button[type="submit"], input[type="submit"]');
      if (btn && this.contains(btn)) {
        e.preventDefault();
        void this.submit();
      }
    });
  }

  /** Collect every named field's value (see the module comment). @returns {Promise<Record<string, unknown>>} */
  async collect() {
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const el of this.querySelectorAll("[name]")) {
      const name = el.getAttribute("name");
      if (!name) continue;
      const crowd = /** @type {any} */ (el);
      if (typeof crowd.getAnswer === "function") out[name] = await crowd.getAnswer();
      else if (el instanceof HTMLInputElement) {
        if (el.disabled || el.type === "submit" || el.type === "button" || el.type === "file") continue;
        if (el.type === "checkbox") out[name] = { on: el.checked };
        else if (el.type === "radio") {
          if (el.checked) out[name] = el.value;
          else if (!(name in out)) out[name] = null;
        } else out[name] = el.value;
      } else if (el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) {
        if (!el.disabled) out[name] = el.value;
      }
    }
    return out;
  }

  /** Submit like the worker console: validate (submit event), collect, POST. Returns the answer or null. */
  async submit() {
    if (this._submitting) return null;
    if (this.hasAttribute("data-closed")) {
      this._status("This preview is closed (it took one answer): restart `gt-widget template preview` to submit again.", "error");
      return null;
    }
    const ev = new CustomEvent("submit", { bubbles: true, cancelable: true });
    if (!this.dispatchEvent(ev)) return null;
    this._submitting = true;
    this._status("Submitting...");
    try {
      const answer = await this.collect();
      const url = submitUrl();
      if (!url) throw new Error("no preview server to submit to: run `gt-widget template preview`");
      let res;
      try {
        res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(answer) });
      } catch {
        throw new Error("the preview is closed (its server does not answer): restart `gt-widget template preview` to submit again");
      }
      const reply = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(reply.error || `the preview server refused the answer: HTTP ${res.status}`);
      this.lastAnswer = answer;
      if (reply.closed) {
        // `--once`: the server took this answer and stops; say so, and keep the page from posting again
        this._status("Submitted. This preview is now closed (it took one answer): you can close this tab.", "ok closed");
        this.setAttribute("data-closed", "");
        this.querySelectorAll('crowd-button[form-action="submit"]').forEach((b) => b.setAttribute("disabled", ""));
      } else {
        this._status("Submitted: the answer was handed to Python.", "ok");
      }
      this.setAttribute("data-submitted", String(Number(this.getAttribute("data-submitted") || 0) + 1));
      this.dispatchEvent(new CustomEvent("crowd-form-submitted", { bubbles: true, detail: { answer } }));
      return answer;
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      this._status(text, "error");
      console.error(`crowd-form: ${text}`);
      return null;
    } finally {
      this._submitting = false;
    }
  }

  /** @param {string} text @param {string} [kind] */
  _status(text, kind = "") {
    const s = /** @type {HTMLElement} */ (this.shadowRoot?.querySelector(".status"));
    s.textContent = text;
    s.className = `status ${kind}`;
  }
}

const BUTTON_CSS = `:host { display: inline-block; }
button { font: 14px system-ui, sans-serif; padding: 6px 18px; border-radius: 3px; border: 1px solid #879596; background: #fff; cursor: pointer; }
:host([variant="primary"]) button { background: #ec7211; border-color: #ec7211; color: #fff; font-weight: 600; }
button:disabled { opacity: .5; cursor: default; }`;

export class CrowdButton extends HTMLElement {
  static get observedAttributes() {
    return ["disabled"];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${BUTTON_CSS}</style><button type="button" part="button"><slot></slot></button>`;
    root.querySelector("button")?.addEventListener("click", () => {
      if (this.getAttribute("form-action") === "submit") void /** @type {CrowdForm | null} */ (this.closest("crowd-form"))?.submit();
    });
  }

  attributeChangedCallback() {
    /** @type {HTMLButtonElement} */ (this.shadowRoot?.querySelector("button")).disabled = this.hasAttribute("disabled");
  }
}
