// Served in place of https://assets.crowd.aws/crowd-html-elements.js (a classic script in templates):
// loads the ES-module stand-ins that sit beside this file.
(function () {
  "use strict";
  var here = document.currentScript && document.currentScript.src ? document.currentScript.src : location.href;
  import(new URL("./index.js", here).href).catch(function (err) {
    console.error("crowd elements stand-ins failed to load: " + err);
  });
})();
