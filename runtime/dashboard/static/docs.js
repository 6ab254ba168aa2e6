// Swagger UI over this server's OpenAPI document. "Authorize" takes a bearer
// token (the dashboard's, when this browser session has one) and keeps it in
// this page's memory only.
window.addEventListener("load", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
  const saved = sessionStorage.getItem("callboard.token");
  if (saved) {
    window.ui.authActions.authorize({
      bearer: { name: "bearer", schema: { type: "http", scheme: "bearer" }, value: saved },
    });
  }
});
