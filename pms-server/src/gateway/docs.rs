//! API documentation: each service's OpenAPI document at `/api-docs/{service}` (fetched from the
//! service's `/openapi.json`), an index at `/api-docs`, and a browsable UI at `/docs`. The UI page
//! loads Swagger UI's assets when viewed, so nothing is downloaded at build time.

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

/// `GET /docs`: Swagger UI over every service's document.
pub(crate) async fn ui() -> Html<String> {
    let urls: Vec<String> = SERVICES
        .iter()
        .map(|s| format!("{{url: '/api-docs/{s}', name: '{s}'}}"))
        .collect();
    Html(format!(
        r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>PMS API</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js" crossorigin></script>
  <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-standalone-preset.js" crossorigin></script>
  <script>
    window.ui = SwaggerUIBundle({{
      urls: [{urls}],
      "urls.primaryName": "patient",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      persistAuthorization: true
    }});
  </script>
</body>
</html>
"##,
        urls = urls.join(", ")
    ))
}
