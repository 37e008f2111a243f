// Served in place of https://assets.crowd.aws/crowd-html-elements.js (a classic script in templates):
// loads the ES-module stand-ins that sit beside this file.
(function () {
  "use strict";
  var script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  var here = script && script.src ? script.src : location.href;
  import(new URL("./index.js", here).href).catch(function (err) {
    console.error("crowd elements stand-ins failed to load: " + err);
  });
})();
