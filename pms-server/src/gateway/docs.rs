//! API documentation: each service's OpenAPI document at `/api-docs/{service}` (fetched from the
//! service's `/openapi.json`), an index at `/api-docs`, and a browsable UI at `/docs`. The UI page
//! loads Swagger UI's assets when viewed, so nothing is downloaded at build time; its CSP allows
//! only those assets and its own origin, and forbids framing.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::GatewayState;
use crate::error::ApiError;
use crate::http::ApiPath;

/// Documented services; `patients` is accepted as an alias (the reference system's path).
const SERVICES: [&str; 4] = ["auth", "patient", "billing", "analytics"];

/// `GET /api-docs`: the documents available.
pub(crate) async fn index() -> Json<serde_json::Value> {
    let docs: Vec<_> = SERVICES
        .iter()
        .map(|s| serde_json::json!({ "name": s, "url": format!("/api-docs/{s}") }))
        .collect();
    Json(serde_json::json!({ "documents": docs, "ui": "/docs" }))
}

/// `GET /api-docs/{service}`: the service's OpenAPI document, served through the gateway.
pub(crate) async fn document(
    State(state): State<GatewayState>,
    ApiPath(service): ApiPath<String>,
) -> Result<Response, ApiError> {
    // `prefix`: where the service's paths live on the gateway, so "try it out" goes through it.
    let (name, base, prefix) = match service.as_str() {
        "auth" => ("auth", &state.upstreams.auth, "/auth"),
        "patient" | "patients" => ("patient", &state.upstreams.patient, "/api"),
        "billing" => ("billing", &state.upstreams.billing, "/api"),
        "analytics" => ("analytics", &state.upstreams.analytics, "/api"),
        other => {
            return Err(ApiError::NotFound(format!(
                "no API document `{other}` (available: {})",
                SERVICES.join(", ")
            )));
        }
    };
    let unavailable = || {
        ApiError::Unavailable(format!(
            "the {name} service is unavailable; try again shortly"
        ))
    };
    let upstream = state
        .client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .map_err(|_| unavailable())?;
    if !upstream.status().is_success() {
        return Err(unavailable());
    }
    let mut body: serde_json::Value = upstream.json().await.map_err(|_| {
        ApiError::BadGateway(format!("the {name} service sent an invalid document"))
    })?;
    body["servers"] =
        serde_json::json!([{ "url": prefix, "description": "through the PMS gateway" }]);
    Ok(([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response())
}

/// Where the page loads Swagger UI from; the CSP allows exactly this (and the page's own origin).
const SWAGGER_UI: &str = "https://unpkg.com/swagger-ui-dist@5/";

/// The `/docs` page may run Swagger UI's scripts and styles and its own init script, fetch the
/// API documents and try requests on its own origin, show inline images (Swagger UI's icons are
/// `data:` URIs), and nothing else; no page may frame it.
fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src 'self' {SWAGGER_UI}; style-src 'self' {SWAGGER_UI}; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'none'"
    )
}

/// `GET /docs`: Swagger UI over every service's document.
pub(crate) async fn ui() -> Response {
    let page = format!(
        r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>PMS API</title>
  <link rel="stylesheet" href="{SWAGGER_UI}swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{SWAGGER_UI}swagger-ui-bundle.js" crossorigin></script>
  <script src="{SWAGGER_UI}swagger-ui-standalone-preset.js" crossorigin></script>
  <script src="/docs/swagger-init.js"></script>
</body>
</html>
"##
    );
    (
        [(header::CONTENT_SECURITY_POLICY, content_security_policy())],
        Html(page),
    )
        .into_response()
}

/// `GET /docs/swagger-init.js`: starts Swagger UI. A script of its own (not inline) so that the
/// CSP needs no `'unsafe-inline'`.
pub(crate) async fn init_script() -> Response {
    let urls: Vec<String> = SERVICES
        .iter()
        .map(|s| format!("{{url: '/api-docs/{s}', name: '{s}'}}"))
        .collect();
    // No `persistAuthorization`: a token typed into the page is not kept in localStorage. No
    // validator: it would send the documents' URLs to validator.swagger.io.
    let script = format!(
        r##"window.ui = SwaggerUIBundle({{
  urls: [{urls}],
  "urls.primaryName": "patient",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  persistAuthorization: false,
  validatorUrl: null
}});
"##,
        urls = urls.join(", ")
    );
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        script,
    )
        .into_response()
}
