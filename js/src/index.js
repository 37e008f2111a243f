// Entry point of the stand-ins for Ground Truth's crowd HTML elements (offline preview). Defines the
// elements, then fires `all-crowd-elements-ready` on document once the page is parsed and every element is
// upgraded (reference §1.1: templates set `labels` in a listener for it).
import { CrowdButton, CrowdForm } from "./form.js";
import { FullInstructions, ShortInstructions } from "./instructions.js";
import { CrowdInstanceSegmentation, CrowdSemanticSegmentation } from "./segmentation.js";

export { CrowdButton, CrowdForm, FullInstructions, ShortInstructions, CrowdInstanceSegmentation, CrowdSemanticSegmentation };

/** @type {[string, CustomElementConstructor][]} */
const ELEMENTS = [
  ["crowd-form", CrowdForm],
  ["crowd-button", CrowdButton],
  ["crowd-semantic-segmentation", CrowdSemanticSegmentation],
  ["crowd-instance-segmentation", CrowdInstanceSegmentation],
  ["full-instructions", FullInstructions],
  ["short-instructions", ShortInstructions],
];

for (const [tag, cls] of ELEMENTS) if (!customElements.get(tag)) customElements.define(tag, cls);

function ready() {
  if (document.documentElement.hasAttribute("data-crowd-elements-ready")) return;
  const missing = new Set(
    Array.from(document.querySelectorAll("*"), (e) => e.localName).filter((n) => n.startsWith("crowd-") && !customElements.get(n)),
  );
  if (missing.size) {
    console.warn(`gt-widget preview: ${[...missing].join(", ")} are not emulated offline; they render as plain HTML`);
  }
  document.documentElement.setAttribute("data-crowd-elements-ready", "");
  document.dispatchEvent(new CustomEvent("all-crowd-elements-ready", { bubbles: true }));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready, { once: true });
else ready();
