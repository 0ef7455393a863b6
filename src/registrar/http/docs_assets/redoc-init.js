// Starts ReDoc on /redoc. A file of its own, not an inline script, so that the page's
// Content-Security-Policy allows scripts from this origin only ('self'). ReDoc writes its styles
// as <style> elements; the page's nonce (allowed by that answer's CSP) goes on each of them.
(function () {
  "use strict";
  var root = document.getElementById("redoc");
  Redoc.init(
    root.getAttribute("data-openapi-url"),
    { nonce: root.getAttribute("data-nonce") },
    root
  );
})();
