//! HTTP plumbing shared by every service: extractors that answer problem+json, the common layer
//! stack (request id, tracing, metrics, body and header limits, request deadline, security
//! headers, panic → 500), health and metrics endpoints, and `serve` (connection limits in
//! [`crate::edge`]) with graceful shutdown.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::edge;
use crate::error::{ApiError, problem_response};

pub use crate::request_meta::{REQUEST_ID, RequestMeta};

/// `axum::Json` whose rejections are problem+json: 400 (syntax, types, unknown fields, not an
/// object), 413 (too large), 415 (not JSON).
///
/// Every request body of the API is a JSON object, and the documents say so; serde alone would
/// also read a struct from an array (`[null, null]`), so anything but an object is refused here.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected `Content-Type: application/json`".to_owned(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| json_rejection(e.into()))?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        Json::<T>::from_bytes(&bytes)
            .map(|Json(value)| ApiJson(value))
            .map_err(json_rejection)
    }
}

/// `application/json` or `application/<anything>+json`, parameters ignored (axum's rule).
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json") && !sub.contains('/'))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::bad_request(format!(
            "invalid request body: {}",
            std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.body_text())
        )),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(format!(
            "malformed JSON: {}",
            std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.body_text())
        )),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected `Content-Type: application/json`".to_owned())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("request body is larger than the server accepts".to_owned())
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `axum::extract::Query` answering 400 problem+json.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(format!("invalid query: {}", e.body_text()))
            })
    }
}

/// `axum::extract::Path` answering 400 problem+json (e.g. an id that is not a UUID).
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::bad_request(format!("invalid path: {}", e.body_text()))
            })
    }
}

/// Wraps a service router with the layers every service shares, plus `/health/*` and `/metrics`.
pub fn with_common_layers(
    router: Router,
    service: &'static str,
    http: &crate::config::HttpSettings,
    ready: ReadyCheck,
) -> Router {
    with_layers(
        router.route("/metrics", get(metrics_text)),
        service,
        http,
        ready,
    )
}

/// [`with_common_layers`] without `/metrics`: for a router that serves it its own way (the
/// gateway, where it is not public).
pub fn with_layers(
    router: Router,
    service: &'static str,
    http: &crate::config::HttpSettings,
    ready: ReadyCheck,
) -> Router {
    let body_limit = http.body_limit_bytes;
    let trust = Arc::new(crate::request_meta::ProxyTrust {
        networks: http.trusted_proxies.as_slice().to_vec(),
        gateway_secret: http.gateway_secret.clone(),
    });
    let max_header_bytes = http.max_header_bytes;
    let request_timeout = http.request_timeout;
    crate::observe::watch_service(service, ready.clone());
    // Only what needs the matched route runs per route (the metrics name the route template;
    // the deadline is inside them so a timed-out request is still counted). Everything else
    // wraps the router once, as one concrete stack. Layers applied per route are boxed one
    // inside the other, and every request cloned the matched route's whole chain (each
    // `from_fn` layer clones what it wraps): about 200 allocations per proxied GET.
    let routed = router
        .merge(health_routes(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(move |req, next| {
            edge::request_deadline(request_timeout, req, next)
        }))
        .layer(middleware::from_fn(move |req, next| {
            record_metrics(service, req, next)
        }));
    let stack = tower::ServiceBuilder::new()
        // Responses carry patient and billing data: no cache keeps them (a handler that knows
        // better, e.g. the API documents, sets its own), and no browser guesses their type.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        // Outside the request-id normalization: an oversized head (a huge X-Request-Id
        // included) is refused with 431, not silently trimmed.
        .layer(middleware::from_fn(move |req, next| {
            edge::bound_header_size(max_header_bytes, req, next)
        }))
        // The bounded request id and the client address exist before anything logs.
        .map_request(move |req| crate::request_meta::normalize(&trust, req))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(TraceLayer::new_for_http().make_span_with(move |req: &Request| {
            // Path only, never the query: `?q=` may hold a patient's name.
            let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("http", service, method = %req.method(), path = %req.uri().path(), request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(|_| {
            problem_response(StatusCode::INTERNAL_SERVER_ERROR, Some("internal error".to_owned()), Vec::new())
        }))
        .layer(middleware::from_fn(close_after_refused_body))
        .layer(DefaultBodyLimit::max(body_limit))
        .service(routed);
    Router::new().fallback_service(stack)
}

/// A request refused for its body (413) leaves that body unread on the connection; closing the
/// connection keeps the client from sending its next request into the leftover bytes.
async fn close_after_refused_body(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    response
}

/// An IP network (`10.0.0.0/8`, `::1/128`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Network {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(ip)) => self.contains(IpAddr::V6(ip.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}

/// Parses a comma-separated list of networks.
pub fn parse_networks(list: &str) -> Result<Vec<Network>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (addr, prefix) = item.split_once('/').unwrap_or((item, ""));
            let addr: std::net::IpAddr = addr
                .parse()
                .map_err(|_| format!("`{item}` is not an IP network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = if prefix.is_empty() {
                max
            } else {
                prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("`{item}` has a bad prefix length"))?
            };
            Ok(Network { addr, prefix })
        })
        .collect()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn record_metrics(service: &'static str, req: Request, next: Next) -> Response {
    use metrics::Label;
    let started = Instant::now();
    let method = static_method(req.method());
    // The route template, never the concrete path, keeps label cardinality low. Written
    // `/patients/:id`: braces in label values trip simple exposition parsers.
    let route: Arc<str> = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| {
            p.as_str()
                .chars()
                .filter(|c| *c != '}')
                .map(|c| if c == '{' { ':' } else { c })
                .collect::<String>()
                .into()
        })
        .unwrap_or_else(|| Arc::from("unmatched"));
    let response = next.run(req).await;
    // Labels from static strings and a shared route: this runs twice per proxied request, and
    // owned label strings were a third of a GET's allocations.
    let mut labels = vec![
        Label::from_static_parts("service", service),
        Label::from_static_parts("method", method),
        Label::new("route", route),
    ];
    // Latency per route (the status would multiply the histogram's series for little use).
    metrics::histogram!("http_request_duration_seconds", labels.clone())
        .record(started.elapsed().as_secs_f64());
    let status = response.status();
    labels.push(match static_status(status) {
        Some(code) => Label::from_static_parts("status", code),
        None => Label::new("status", status.as_u16().to_string()),
    });
    metrics::counter!("http_requests_total", labels).increment(1);
    response
}

/// The method as a static label value (`OTHER` for extension methods).
fn static_method(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The statuses the API answers, as static label values.
fn static_status(status: StatusCode) -> Option<&'static str> {
    Some(match status.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        412 => "412",
        413 => "413",
        415 => "415",
        422 => "422",
        428 => "428",
        429 => "429",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => return None,
    })
}

/// Readiness probe of a service: `Err(reason)` while a dependency is down.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

fn health_routes(ready: ReadyCheck) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({ "status": "UP" })) }),
        )
        .route(
            "/health/ready",
            get(move || {
                let ready = ready.clone();
                async move {
                    match ready().await {
                        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "UP" }))),
                        Err(reason) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(serde_json::json!({ "status": "DOWN", "reason": reason })),
                        ),
                    }
                }
            }),
        )
}

/// The Prometheus text of this process's metrics.
pub(crate) async fn metrics_text() -> Response {
    match crate::telemetry::metrics_handle() {
        Some(handle) => {
            crate::observe::sample_all().await;
            render(handle)
        }
        None => (StatusCode::OK, "").into_response(),
    }
}

fn render(handle: &PrometheusHandle) -> Response {
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// Serves `router` on `listener` with the default connection limits until `shutdown` fires,
/// then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    edge::serve(
        listener,
        router,
        edge::ConnectionLimits::default(),
        shutdown,
    )
    .await
}

/// [`serve`] with the connection limits of `http` (header-read timeout, connection cap).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    http: &crate::config::HttpSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    edge::serve(listener, router, http.into(), shutdown).await
}

/// Adds the `bearer` (JWT) security scheme to a service's OpenAPI document.
pub struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_are_bounded() {
        use axum::http::Method;
        assert_eq!(static_method(&Method::GET), "GET");
        assert_eq!(static_method(&Method::DELETE), "DELETE");
        // Any other method a client invents is one series, not one per invention.
        let invented = Method::from_bytes(b"BREW").expect("method");
        assert_eq!(static_method(&invented), "OTHER");
        assert_eq!(static_status(StatusCode::CREATED), Some("201"));
        assert_eq!(static_status(StatusCode::PRECONDITION_FAILED), Some("412"));
        assert_eq!(static_status(StatusCode::IM_A_TEAPOT), None);
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let nets = parse_networks("127.0.0.0/8, ::1/128,10.1.2.3").expect("valid");
        let has = |ip: &str| nets.iter().any(|n| n.contains(ip.parse().expect("ip")));
        assert!(has("127.0.0.1") && has("127.255.0.9") && has("::1") && has("10.1.2.3"));
        assert!(!has("10.1.2.4") && !has("192.168.1.1") && !has("::2"));
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("not-an-ip").is_err());
        assert_eq!(parse_networks("").expect("empty"), Vec::new());
    }
}
