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
    document_problem_responses(&mut body);
    Ok(([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response())
}

/// Makes a service's document say what every handler does on errors, whatever its annotations
/// say: errors are `application/problem+json` (not `application/json`); an operation with a JSON
/// body may answer 400 and 415; a parameterized one 400; a secured one 401.
fn document_problem_responses(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": { "application/problem+json": {
                "schema": { "$ref": "#/components/schemas/Problem" } } }
        })
    };
    let secured_by_default = doc
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        let path_parameters = item
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
        for (method, operation) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                continue;
            }
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let json_body = operation
                .get("requestBody")
                .and_then(|b| b.get("content"))
                .and_then(|c| c.get("application/json"))
                .is_some();
            let parameters = path_parameters
                || operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .is_some_and(|p| !p.is_empty());
            let secured = match operation.get("security").and_then(Value::as_array) {
                Some(schemes) => schemes
                    .iter()
                    .any(|s| s.as_object().is_some_and(|o| !o.is_empty())),
                None => secured_by_default,
            };
            let responses = operation.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut)
                    && let Some(schema) = content.remove("application/json")
                {
                    content.insert("application/problem+json".to_owned(), schema);
                }
            }
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status)
                    .or_insert_with(|| problem(description));
            };
            if json_body || parameters {
                add("400", "Invalid input");
            }
            if json_body {
                add("415", "The body is not `application/json`");
            }
            if secured {
                add("401", "Missing, invalid or expired access token");
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_documented_as_problems() {
        let mut doc = serde_json::json!({
            "paths": { "/patients/{id}": {
                "parameters": [{ "name": "id", "in": "path" }],
                "put": {
                    "security": [{ "bearer": [] }],
                    "requestBody": { "content": { "application/json": {} } },
                    "responses": {
                        "200": { "content": { "application/json": { "schema": {} } } },
                        "404": { "content": { "application/json": { "schema": { "x": 1 } } } }
                    }
                }
            }, "/login": { "post": {
                "security": [{}],
                "responses": { "200": {} }
            } } }
        });
        document_problem_responses(&mut doc);
        let put = &doc["paths"]["/patients/{id}"]["put"]["responses"];
        assert!(put["200"]["content"]["application/json"].is_object());
        assert_eq!(
            put["404"]["content"]["application/problem+json"]["schema"]["x"],
            1
        );
        assert!(put["404"]["content"].get("application/json").is_none());
        for status in ["400", "401", "415"] {
            assert!(
                put[status]["content"]["application/problem+json"].is_object(),
                "{status}"
            );
        }
        let login = &doc["paths"]["/login"]["post"]["responses"];
        assert!(login.get("401").is_none() && login.get("400").is_none());
    }
}
