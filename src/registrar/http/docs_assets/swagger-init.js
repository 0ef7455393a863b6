// Starts Swagger UI on /docs. A file of its own, not an inline script, so that the page's
// Content-Security-Policy can allow scripts from this origin only ('self').
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null, // no request to an outside validator
    tryItOutEnabled: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    // Logging in is one step: once POST /api/jwt answers, its JWT authorizes the bearer scheme,
    // so every other operation can be tried at once (Authorize shows it, and can clear it).
    responseInterceptor: function (response) {
      try {
        if (response.ok && /\/api\/jwt(\?|$)/.test(response.url) && response.body && response.body.jwt) {
          ui.preauthorizeApiKey("bearer", response.body.jwt);
        }
      } catch (e) {
        // A response that is not the login service's: nothing to do.
      }
      return response;
    },
  });
  window.ui = ui;
})();
