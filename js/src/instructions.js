// <short-instructions> and <full-instructions> stand-ins (reference §1.2). A segmentation element puts them
// in its sidebar (slots "short" / "full"); anywhere else they render in place. Short instructions show their
// content; full instructions show a "View full instructions" link that opens a dialog with their content.

const SHORT_CSS = `:host { display: block; font: 14px/1.45 system-ui, sans-serif; }
h3 { margin: 0 0 .4em; font-size: 15px; }`;

/** Base of both: re-renders when connected and when its `header` attribute changes. */
class HeaderedElement extends HTMLElement {
  static get observedAttributes() {
    return ["header"];
  }

  connectedCallback() {
    this.render();
  }

  attributeChangedCallback() {
    this.render();
  }

  render() {}
}

export class ShortInstructions extends HeaderedElement {
  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${SHORT_CSS}</style><h3 part="header"></h3><slot></slot>`;
  }

  /** @override */
  render() {
    const h = /** @type {HTMLElement} */ (this.shadowRoot?.querySelector("h3"));
    h.textContent = this.getAttribute("header") ?? "";
    h.hidden = !this.getAttribute("header");
  }
}

const FULL_CSS = `:host { display: block; font: 14px/1.45 system-ui, sans-serif; margin-top: .6em; }
a { color: #0073bb; cursor: pointer; }
dialog { max-width: min(720px, 90vw); max-height: 85vh; border: 1px solid #aab7b8; border-radius: 6px; padding: 0; }
dialog header { display: flex; justify-content: space-between; align-items: center; padding: .6em 1em; background: #f2f3f3; }
dialog h2 { margin: 0; font-size: 17px; }
dialog .body { padding: 1em; overflow: auto; }
button { font: inherit; }`;

export class FullInstructions extends HeaderedElement {
  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${FULL_CSS}</style>
<a part="link" class="view-full" role="button" tabindex="0">View full instructions</a>
<dialog part="dialog" aria-label="Full instructions"><header><h2></h2>
<button type="button" class="close" aria-label="Close">Close</button></header><div class="body"><slot></slot></div></dialog>`;
    const link = /** @type {HTMLElement} */ (root.querySelector("a"));
    link.addEventListener("click", () => this.open());
    link.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") this.open();
    });
    root.querySelector("button.close")?.addEventListener("click", () => this.close());
  }

  /** @override */
  render() {
    const h = /** @type {HTMLElement} */ (this.shadowRoot?.querySelector("h2"));
    h.textContent = this.getAttribute("header") || "Full instructions";
  }

  /** Open the dialog (what "View full instructions" does). */
  open() {
    const d = /** @type {HTMLDialogElement} */ (this.shadowRoot?.querySelector("dialog"));
    if (!d.open) d.showModal();
  }

  close() {
    /** @type {HTMLDialogElement} */ (this.shadowRoot?.querySelector("dialog")).close();
  }
}
