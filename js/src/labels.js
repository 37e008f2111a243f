// Parsing of the `labels` attribute of <crowd-semantic-segmentation> / <crowd-instance-segmentation>.
// Facts (reference §1.1): the built-in template writes JSON (`{{ task.input.labels | to_json | escape }}`,
// which the browser un-escapes), the docs' examples write a single-quoted JS-ish array
// (labels="['Cat', 'Dog', 'Bird']"). Choices: we accept any array literal of single- or double-quoted
// strings (with backslash escapes), numbers (kept as their text), a trailing comma, and objects of the
// label-category file ({"label": "cat"}); labels must be unique and non-empty (Ground Truth's rule, §3.1).

/** Error with a message that says what to write instead. */
export class LabelsError extends Error {}

const ESCAPES = /** @type {Record<string, string>} */ ({ n: "\n", t: "\t", r: "\r", b: "\b", f: "\f", v: "\v", 0: "\0" });

/**
 * Parse one JS/JSON literal (string, number, array, object, true/false/null) starting at text[i].
 * @param {string} text @param {number} i
 * @returns {[unknown, number]} the value and the index after it
 */
function parseValue(text, i) {
  i = skipSpace(text, i);
  const ch = text[i];
  if (ch === "'" || ch === '"') return parseString(text, i);
  if (ch === "[") {
    const out = [];
    i = skipSpace(text, i + 1);
    while (text[i] !== "]") {
      if (i >= text.length) throw new LabelsError("unterminated array: missing ']'");
      const [v, j] = parseValue(text, i);
      out.push(v);
      i = skipSpace(text, j);
      if (i >= text.length) throw new LabelsError("unterminated array: missing ']'");
      if (text[i] === ",") i = skipSpace(text, i + 1);
      else if (text[i] !== "]") throw new LabelsError(`expected ',' or ']' at character ${i + 1}`);
    }
    return [out, i + 1];
  }
  if (ch === "{") {
    /** @type {Record<string, unknown>} */
    const out = {};
    i = skipSpace(text, i + 1);
    while (text[i] !== "}") {
      if (i >= text.length) throw new LabelsError("unterminated object: missing '}'");
      let key;
      if (text[i] === "'" || text[i] === '"') [key, i] = parseString(text, i);
      else {
        const m = /^[A-Za-z_$][\w$-]*/.exec(text.slice(i));
        if (!m) throw new LabelsError(`expected a key at character ${i + 1}`);
        key = m[0];
        i += key.length;
      }
      i = skipSpace(text, i);
      if (text[i] !== ":") throw new LabelsError(`expected ':' at character ${i + 1}`);
      const [v, j] = parseValue(text, i + 1);
      out[String(key)] = v;
      i = skipSpace(text, j);
      if (text[i] === ",") i = skipSpace(text, i + 1);
      else if (text[i] !== "}") throw new LabelsError(`expected ',' or '}' at character ${i + 1}`);
    }
    return [out, i + 1];
  }
  const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
  if (m) return [m[0] === "null" ? null : m[0], i + m[0].length];
  throw new LabelsError(`unexpected ${ch === undefined ? "end of text" : JSON.stringify(ch)} at character ${i + 1}`);
}

/** @param {string} text @param {number} i */
function skipSpace(text, i) {
  while (i < text.length && /\s/.test(text[i])) i++;
  return i;
}

/** @param {string} text @param {number} i @returns {[string, number]} */
function parseString(text, i) {
  const quote = text[i];
  let out = "";
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j];
    if (c === quote) return [out, j + 1];
    if (c === "\\") {
      const n = text[++j];
      if (n === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(j + 1, j + 5))) {
        out += String.fromCharCode(parseInt(text.slice(j + 1, j + 5), 16));
        j += 4;
      } else out += ESCAPES[n] ?? n;
    } else out += c;
  }
  throw new LabelsError(`unterminated string starting at character ${i + 1}: missing ${quote}`);
}

/**
 * The label names of a `labels` attribute value or property value.
 * @param {unknown} value an attribute string, or an array (the `labels` JS property)
 * @returns {string[]}
 */
export function parseLabels(value) {
  if (value === null || value === undefined) return [];
  /** @type {unknown} */
  let items = value;
  if (typeof value === "string") {
    const text = value.trim();
    if (!text) return [];
    if (!text.startsWith("[")) {
      throw new LabelsError(
        `labels must be an array such as ["Cat", "Dog"] or ['Cat', 'Dog'], got ${JSON.stringify(text.slice(0, 60))}`,
      );
    }
    const [parsed, end] = parseValue(text, 0);
    if (skipSpace(text, end) !== text.length) {
      throw new LabelsError(`unexpected text after the labels array at character ${end + 1}`);
    }
    items = parsed;
  }
  if (!Array.isArray(items)) {
    throw new LabelsError(`labels must be an array of strings, got ${typeof items}`);
  }
  const names = items.map((item, k) => {
    if (item && typeof item === "object" && "label" in item) item = /** @type {{label: unknown}} */ (item).label;
    if (typeof item === "number") item = String(item);
    if (typeof item !== "string" || !item.trim()) {
      throw new LabelsError(`label ${k + 1} must be a non-empty string, got ${JSON.stringify(item)}`);
    }
    return item;
  });
  const seen = new Set();
  for (const n of names) {
    if (seen.has(n)) throw new LabelsError(`label ${JSON.stringify(n)} appears twice; Ground Truth labels must be unique`);
    seen.add(n);
  }
  return names;
}
