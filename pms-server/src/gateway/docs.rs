//! API documentation: each service's OpenAPI document at `/api-docs/{service}` (fetched from the
//! service's `/openapi.json`), an index at `/api-docs`, and a browsable UI at `/docs`. Swagger
//! UI's files are compiled into the binary (`/docs/assets/…`): the page loads nothing from any
//! other host, and its CSP allows only its own origin and forbids framing.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router};
use swagger_ui_dist::{ApiDefinition, OpenApiSource};

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
    // The only gateway-specific part: where the paths live. Statuses and media types are the
    // service's own document's (`crate::openapi::Conventions`), since the gateway answers with
    // the same shared layers (400 for a bad path, 401, 413, 431, 503) as the services.
    body["servers"] =
        serde_json::json!([{ "url": prefix, "description": "through the PMS gateway" }]);
    Ok(([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response())
}

/// Where Swagger UI's own files are served, from the binary (the `swagger-ui-dist` crate): the
/// page needs no other host, so it works on a network without internet access.
const ASSETS: &str = "/docs/assets";

/// The vendored Swagger UI files under [`ASSETS`].
pub(crate) fn assets() -> Router {
    swagger_ui_dist::generate_routes(ApiDefinition {
        uri_prefix: ASSETS,
        api_definition: OpenApiSource::Uri("/api-docs/patient"),
        title: Some("PMS API"),
    })
    .layer(middleware::from_fn(only_assets))
}

/// Serves the crate's scripts, styles and source maps, but not its own index page (an inline
/// script, which the CSP forbids anyway: `/docs` is the page), and lets browsers cache them.
async fn only_assets(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if ![".js", ".css", ".map"]
        .iter()
        .any(|ext| path.ends_with(ext))
    {
        return ApiError::NotFound("no such endpoint".to_owned()).into_response();
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

/// The `/docs` page may run its own scripts and styles (Swagger UI's and the init script, all
/// from this origin), fetch the API documents and try requests on its own origin, show inline
/// images (Swagger UI's icons are `data:` URIs), and nothing else; no page may frame it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";

/// `GET /docs`: Swagger UI over one service's document (`?api=`, default `patient`), with a link
/// to each of the others.
pub(crate) async fn ui() -> Response {
    let links: Vec<String> = SERVICES
        .iter()
        .map(|s| format!(r#"<a href="/docs?api={s}">{s}</a>"#))
        .collect();
    let page = format!(
        r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>PMS API</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
  <nav id="pms-apis">PMS API documents: {links}</nav>
  <div id="swagger-ui"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-init.js"></script>
</body>
</html>
"##,
        links = links.join(" · ")
    );
    (
        [(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)],
        Html(page),
    )
        .into_response()
}

/// `GET /docs/swagger-init.js`: starts Swagger UI on the document `?api=` names. A script of its
/// own (not inline) so that the CSP needs no `'unsafe-inline'`.
pub(crate) async fn init_script() -> Response {
    let names: Vec<String> = SERVICES.iter().map(|s| format!("'{s}'")).collect();
    // No `persistAuthorization`: a token typed into the page is not kept in localStorage. No
    // validator: it would send the documents' URLs to validator.swagger.io.
    let script = format!(
        r##"(function () {{
  var apis = [{names}];
  var wanted = new URLSearchParams(window.location.search).get('api');
  var api = apis.indexOf(wanted) >= 0 ? wanted : 'patient';
  window.ui = SwaggerUIBundle({{
    url: '/api-docs/' + api,
    dom_id: '#swagger-ui',
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    persistAuthorization: false,
    validatorUrl: null
  }});
}})();
"##,
        names = names.join(", ")
    );
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        script,
    )
        .into_response()
}
