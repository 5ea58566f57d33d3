//! Reverse proxy: maps a public path to a service, checks the bearer token, and forwards the
//! request (body bounded, hop-by-hop headers dropped, `X-Forwarded-For`, request id and
//! `traceparent` added) and streams the response back.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::net::SocketAddr;
use tower::ServiceExt;

use super::GatewayState;
use crate::authn::TokenError;
use crate::error::ApiError;
use crate::request_meta::GATEWAY_SECRET;

/// Auth endpoints reachable without a token (everything else is verified here first).
const PUBLIC_AUTH_PATHS: [&str; 5] = [
    "/login",
    "/refresh",
    "/logout",
    "/.well-known/jwks.json",
    "/openapi.json",
];

/// Where a public path goes.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    /// Which upstream (for error messages).
    service: &'static str,
    base: &'a str,
    /// Path on the upstream.
    path: String,
    /// Whether the gateway must see a valid access token first.
    needs_token: bool,
}

fn route<'a>(path: &str, upstreams: &'a super::Upstreams) -> Option<Target<'a>> {
    if let Some(rest) = path.strip_prefix("/auth") {
        let rest = if rest.is_empty() { "/" } else { rest };
        return Some(Target {
            service: "auth",
            base: &upstreams.auth,
            path: rest.to_owned(),
            needs_token: !PUBLIC_AUTH_PATHS.contains(&rest),
        });
    }
    let api = path.strip_prefix("/api")?;
    let (service, base) = if api == "/patients" || api.starts_with("/patients/") || api == "/audit"
    {
        ("patient", &upstreams.patient)
    } else if api.starts_with("/billing/") {
        ("billing", &upstreams.billing)
    } else if api.starts_with("/analytics/") {
        ("analytics", &upstreams.analytics)
    } else {
        return None;
    };
    Some(Target {
        service,
        base,
        path: api.to_owned(),
        needs_token: true,
    })
}

/// The path as routed and forwarded, normalized (RFC 3986 §6.2.2): percent-encoded unreserved
/// characters decoded, other escapes upper-cased. Refused (400): dot segments, plain or encoded
/// (`..`, `%2e%2e`, `.%2E`…), which a service's URL handling would resolve into another route;
/// encoded separators (`%2f`, `%5c`) and backslashes, which some parsers read as `/`; control
/// characters; malformed escapes.
fn normalize_path(raw: &str) -> Result<String, ApiError> {
    let refuse = |why: &str| Err(ApiError::bad_request(format!("invalid path: {why}")));
    let bytes = raw.as_bytes();
    let mut path = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                    return refuse("malformed percent-encoding");
                };
                match value {
                    b'/' | b'\\' => return refuse("encoded slashes are not allowed"),
                    v if v.is_ascii_control() => {
                        return refuse("control characters are not allowed");
                    }
                    v if v.is_ascii_alphanumeric() || b"-._~".contains(&v) => {
                        path.push(char::from(v))
                    }
                    v => path.push_str(&format!("%{v:02X}")),
                }
                i += 3;
            }
            b'\\' => return refuse("backslashes are not allowed"),
            // `Uri` admits only visible ASCII in a path, so byte = char here.
            b => {
                path.push(char::from(b));
                i += 1;
            }
        }
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return refuse("dot segments are not allowed");
    }
    Ok(path)
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus `host`.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The `X-Forwarded-For` sent upstream. From a trusted proxy: its chain with the proxy appended
/// (the standard way, so the services find the client as the right-most untrusted address);
/// from anyone else: the peer alone, since a client must not choose the address that services
/// audit and throttle by.
fn forwarded_for(
    incoming: &HeaderMap,
    peer: std::net::IpAddr,
    trusted: &[crate::http::Network],
) -> Option<HeaderValue> {
    let mut chain: Vec<&str> = Vec::new();
    if trusted.iter().any(|n| n.contains(peer)) {
        chain.extend(
            incoming
                .get_all(X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|hop| !hop.is_empty()),
        );
    }
    let peer = peer.to_string();
    chain.push(&peer);
    HeaderValue::from_str(&chain.join(", ")).ok()
}

/// Forwards one request to its service.
pub(crate) async fn forward(
    State(state): State<GatewayState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let path = normalize_path(parts.uri.path())?;
    let target = route(&path, &state.upstreams)
        .ok_or_else(|| ApiError::NotFound("no such endpoint".to_owned()))?;
    if target.needs_token {
        check_token(&state, &parts.headers).await?;
    }

    let body = axum::body::to_bytes(body, state.body_limit)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!("request body exceeds {} bytes", state.body_limit))
        })?;

    let mut url = format!("{}{}", target.base, target.path);
    if let Some(query) = parts.uri.query() {
        url.push('?');
        url.push_str(query);
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) && *name != X_FORWARDED_FOR && *name != GATEWAY_SECRET {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(value) = forwarded_for(&parts.headers, peer.ip(), &state.trusted_proxies) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    if let Some(secret) = &state.gateway_secret {
        headers.insert(GATEWAY_SECRET, secret.header_value());
    }
    if !headers.contains_key("traceparent") {
        headers.insert("traceparent", new_traceparent());
    }

    if let Some(router) = state.local.as_ref().and_then(|l| l.router(target.service)) {
        return Ok(call_in_process(
            router.clone(),
            &state,
            parts.method,
            &url[target.base.len()..],
            headers,
            body,
        )
        .await);
    }

    let send = || {
        state
            .client
            .request(parts.method.clone(), &url)
            .headers(headers.clone())
            .body(body.clone())
            .send()
    };
    let upstream = match send().await {
        Ok(response) => Ok(response),
        // A pooled connection the service closed meanwhile fails before any byte of the request
        // is processed; safe methods are retried once on a fresh connection.
        Err(e) if parts.method.is_safe() && !e.is_timeout() => {
            tracing::debug!(service = target.service, error = %e.without_url(), "retrying on a new connection");
            send().await
        }
        Err(e) => Err(e),
    }
    .map_err(|e| {
        tracing::warn!(service = target.service, error = %e.without_url(), "upstream unreachable");
        ApiError::Unavailable(format!("the {} service is unavailable; try again shortly", target.service))
    })?;

    let mut response = Response::builder().status(upstream.status());
    if let Some(out) = response.headers_mut() {
        for (name, value) in upstream.headers() {
            if !is_hop_by_hop(name) {
                out.append(name.clone(), value.clone());
            }
        }
    }
    response
        .body(Body::from_stream(
            upstream
                .bytes_stream()
                .take_until(state.shutdown.clone().cancelled_owned()),
        ))
        .map_err(|e| ApiError::Internal(e.into()))
}

/// All-in-one: calls the service's router in this process (no loopback connection, no second
/// HTTP parse), with what a forwarded request carries: the same headers (gateway secret,
/// `X-Forwarded-For`, trace context) and the gateway's loopback address as the peer.
async fn call_in_process(
    router: axum::Router,
    state: &GatewayState,
    method: axum::http::Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = method;
    // Invariant: the path was normalized by `normalize_path` and the query came from a parsed URI.
    *request.uri_mut() = match path_and_query.parse() {
        Ok(uri) => uri,
        Err(_) => return ApiError::bad_request("malformed request target").into_response(),
    };
    *request.headers_mut() = headers;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
    let Ok(mut response) = router.oneshot(request).await;
    let hop_by_hop: Vec<HeaderName> = response
        .headers()
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    for name in hop_by_hop {
        response.headers_mut().remove(name);
    }
    // A body of known length is complete; an open-ended one (an event stream) ends at shutdown.
    if axum::body::HttpBody::size_hint(response.body())
        .exact()
        .is_some()
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let stream = body
        .into_data_stream()
        .take_until(state.shutdown.clone().cancelled_owned());
    Response::from_parts(parts, Body::from_stream(stream))
}

async fn check_token(state: &GatewayState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".to_owned()))?;
    match state.verifier.verify(token).await {
        Ok(_) => Ok(()),
        Err(TokenError::KeysUnavailable(reason)) => {
            tracing::warn!(%reason, "cannot fetch signing keys from auth");
            Err(ApiError::Unavailable(
                "the auth service is unavailable; try again shortly".to_owned(),
            ))
        }
        Err(e) => {
            tracing::debug!(error = %e, "token refused at the gateway");
            Err(ApiError::Unauthorized(
                "invalid or expired token".to_owned(),
            ))
        }
    }
}

/// A fresh W3C `traceparent` (version 00, sampled) for requests that arrive without one.
fn new_traceparent() -> HeaderValue {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    HeaderValue::from_str(&format!("00-{trace}-{span}-01")).unwrap_or_else(|_| {
        HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstreams() -> super::super::Upstreams {
        super::super::Upstreams {
            auth: "http://a".into(),
            patient: "http://p".into(),
            billing: "http://b".into(),
            analytics: "http://s".into(),
        }
    }

    #[test]
    fn routes_public_paths_to_services() {
        let u = upstreams();
        let login = route("/auth/login", &u).expect("routed");
        assert_eq!(
            (login.service, login.path.as_str(), login.needs_token),
            ("auth", "/login", false)
        );
        let users = route("/auth/users", &u).expect("routed");
        assert_eq!(
            (users.service, users.path.as_str(), users.needs_token),
            ("auth", "/users", true)
        );
        let one = route("/api/patients/42/history", &u).expect("routed");
        assert_eq!(
            (one.service, one.path.as_str(), one.needs_token),
            ("patient", "/patients/42/history", true)
        );
        assert_eq!(route("/api/audit", &u).expect("routed").path, "/audit");
        let billing = route("/api/billing/accounts", &u).expect("routed");
        assert_eq!(
            (billing.service, billing.path.as_str()),
            ("billing", "/billing/accounts")
        );
        let stream = route("/api/analytics/events/stream", &u).expect("routed");
        assert_eq!(
            (stream.service, stream.path.as_str()),
            ("analytics", "/analytics/events/stream")
        );
        assert_eq!(route("/api/patientsX", &u), None);
        assert_eq!(route("/api/other", &u), None);
    }

    #[test]
    fn forwarded_for_is_appended_for_trusted_proxies_only() {
        let trusted = crate::http::parse_networks("10.0.0.0/8").expect("nets");
        let mut incoming = HeaderMap::new();
        incoming.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("198.51.100.7, 10.1.1.1"),
        );
        incoming.append(X_FORWARDED_FOR, HeaderValue::from_static("10.2.2.2"));
        let chain = |peer: &str| {
            forwarded_for(&incoming, peer.parse().expect("ip"), &trusted)
                .expect("value")
                .to_str()
                .expect("ascii")
                .to_owned()
        };
        assert_eq!(
            chain("10.0.0.9"),
            "198.51.100.7, 10.1.1.1, 10.2.2.2, 10.0.0.9"
        );
        assert_eq!(
            chain("203.0.113.1"),
            "203.0.113.1",
            "a client cannot choose"
        );
        let none = forwarded_for(&HeaderMap::new(), "10.0.0.9".parse().expect("ip"), &trusted);
        assert_eq!(none.expect("value"), "10.0.0.9");
    }

    #[test]
    fn paths_are_normalized_or_refused() {
        for (raw, normal) in [
            ("/api/patients", "/api/patients"),
            ("/api/patients/%61b%7e", "/api/patients/ab~"),
            ("/api/patients/a%20b%c3%a9", "/api/patients/a%20b%C3%A9"),
            ("/auth/%6cogin", "/auth/login"),
            ("/api/patients/..x/a.b", "/api/patients/..x/a.b"),
        ] {
            assert_eq!(normalize_path(raw).expect(raw), normal);
        }
        for raw in [
            "/api/patients/../metrics",
            "/api/patients/./x",
            "/api/patients/%2e%2e/metrics",
            "/api/patients/%2E./metrics",
            "/api/patients/.%2e/metrics",
            "/api/billing/%2e%2e/openapi.json",
            "/api/patients/%2e",
            "/api/patients/a%2fb",
            "/api/patients/a%2Fb",
            "/api/patients/a%5cb",
            "/api/patients/a\\b",
            "/api/patients/a%00b",
            "/api/patients/a%zz",
            "/api/patients/a%2",
        ] {
            let refused = normalize_path(raw).expect_err(raw);
            assert!(
                matches!(refused, ApiError::BadRequest { .. }),
                "{raw}: {refused:?}"
            );
        }
    }

    #[test]
    fn traceparent_is_well_formed() {
        let tp = new_traceparent();
        let parts: Vec<&str> = tp.to_str().expect("ascii").split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len(), parts[3]),
            ("00", 32, 16, "01")
        );
    }
}
