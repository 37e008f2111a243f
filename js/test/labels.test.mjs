import assert from "node:assert/strict";
import { test } from "node:test";
import { LabelsError, parseLabels } from "../src/labels.js";

test("JSON array (what `to_json | escape` renders, after the browser un-escapes it)", () => {
  assert.deepEqual(parseLabels('["cat", "dog"]'), ["cat", "dog"]);
});

test("single-quoted array of the docs' examples", () => {
  assert.deepEqual(parseLabels("['Cat', 'Dog', 'Bird']"), ["Cat", "Dog", "Bird"]);
});

test("quotes, escapes, unicode and a trailing comma", () => {
  assert.deepEqual(parseLabels(`['Don\\'t care', "say \\"hi\\"", 'caf\\u00e9', "Ωmega",]`), [
    "Don't care",
    'say "hi"',
    "café",
    "Ωmega",
  ]);
  assert.deepEqual(parseLabels(`[ "it's" , 'a "b"' ]`), ["it's", 'a "b"']);
});

test("numbers become their text; label-category objects give their label", () => {
  assert.deepEqual(parseLabels("[1, 2.5]"), ["1", "2.5"]);
  assert.deepEqual(parseLabels('[{"label": "car"}, {label: \'bus\'}]'), ["car", "bus"]);
});

test("the labels property takes an array too; empty means no labels", () => {
  assert.deepEqual(parseLabels(["a", "b"]), ["a", "b"]);
  assert.deepEqual(parseLabels(""), []);
  assert.deepEqual(parseLabels(null), []);
  assert.deepEqual(parseLabels("[]"), []);
});

test("bad input gets a message that says what to write", () => {
  assert.throws(() => parseLabels("cat, dog"), (e) => e instanceof LabelsError && /\["Cat", "Dog"\]/.test(e.message));
  assert.throws(() => parseLabels("['cat', 'dog'"), /missing '\]'/);
  assert.throws(() => parseLabels("['cat' 'dog']"), /expected ',' or '\]'/);
  assert.throws(() => parseLabels("['cat', 'cat']"), /appears twice/);
  assert.throws(() => parseLabels("['cat', '']"), /non-empty string/);
  assert.throws(() => parseLabels("['cat'] x"), /after the labels array/);
  assert.throws(() => parseLabels("['unterminated]"), /unterminated string/);
});
