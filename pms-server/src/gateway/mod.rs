//! The API gateway (port 4004), the only public service: routes `/auth/*`, `/api/patients*`,
//! `/api/audit`, `/api/billing/*` and `/api/analytics/*` to the services, verifies every access token locally (keys
//! from auth's JWKS, cached) before forwarding, propagates the request id and trace context, and
//! serves the API documentation (`/api-docs/{service}`, `/docs`). Its `/metrics` is not public
//! ([`metrics`]); paths are normalized and checked before routing ([`proxy`]).
//!
//! Services verify the token again: the gateway is a first line, not the only one.

mod docs;
mod metrics;
mod proxy;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{any, get};
use tower_http::set_header::SetResponseHeaderLayer;

use tokio_util::sync::CancellationToken;

use crate::authn::Verifier;
use crate::config::Settings;
use crate::http::{self, ReadyCheck};

/// Where each upstream service lives.
#[derive(Debug, Clone)]
pub(crate) struct Upstreams {
    pub auth: String,
    pub patient: String,
    pub billing: String,
    pub analytics: String,
}

/// All-in-one: the services' routers, which the gateway calls in process rather than over
/// loopback HTTP (the services keep their loopback listeners for direct and gRPC clients).
#[derive(Clone)]
pub struct LocalServices {
    pub auth: Router,
    pub patient: Router,
    pub billing: Router,
    pub analytics: Router,
}

impl LocalServices {
    fn router(&self, service: &str) -> Option<&Router> {
        match service {
            "auth" => Some(&self.auth),
            "patient" => Some(&self.patient),
            "billing" => Some(&self.billing),
            "analytics" => Some(&self.analytics),
            _ => None,
        }
    }
}

/// Shared state of the gateway's handlers.
#[derive(Clone)]
pub(crate) struct GatewayState {
    pub client: reqwest::Client,
    pub verifier: Arc<Verifier>,
    pub upstreams: Arc<Upstreams>,
    pub body_limit: usize,
    /// Peers whose `X-Forwarded-For` the gateway extends rather than replaces.
    pub trusted_proxies: Arc<Vec<http::Network>>,
    /// All-in-one: proves to the internal services that a request comes from this gateway.
    pub gateway_secret: Option<crate::request_meta::GatewaySecret>,
    /// Cuts long-lived (streamed) responses when the gateway shuts down.
    pub shutdown: CancellationToken,
    /// Who may read `/metrics` besides ADMIN.
    pub metrics_token: Option<metrics::MetricsToken>,
    /// All-in-one: the services called in process.
    pub local: Option<Arc<LocalServices>>,
}

/// Builds the gateway's router (with the common layers). With `local` (all-in-one), requests go
/// to those routers in process; otherwise to the services' URLs.
pub async fn build(
    settings: &Settings,
    shutdown: &CancellationToken,
    local: Option<LocalServices>,
) -> anyhow::Result<Router> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        // Per read, not per request: event streams stay open, heartbeats keep them alive.
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        // Give idle connections up well before the services' idle limit (their header-read
        // timeout) closes them, so that a request is rarely sent on a connection being closed.
        .pool_idle_timeout(settings.http.header_read_timeout / 2)
        .build()?;
    let state = GatewayState {
        client,
        verifier: Arc::new(Verifier::remote(
            settings.auth.url.base(),
            &settings.auth.issuer,
            &settings.auth.audience,
        )),
        upstreams: Arc::new(Upstreams {
            auth: settings.auth.url.base().to_owned(),
            patient: settings.gateway.patient_url.base().to_owned(),
            billing: settings.gateway.billing_url.base().to_owned(),
            analytics: settings.gateway.analytics_url.base().to_owned(),
        }),
        body_limit: settings.http.body_limit_bytes,
        trusted_proxies: Arc::new(settings.http.trusted_proxies.as_slice().to_vec()),
        gateway_secret: settings.http.gateway_secret.clone(),
        shutdown: shutdown.clone(),
        metrics_token: metrics::MetricsToken::new(settings.http.metrics_token.as_ref())?,
        local: local.map(Arc::new),
    };
    let verifier = state.verifier.clone();
    let ready: ReadyCheck = Arc::new(move || {
        let verifier = verifier.clone();
        Box::pin(async move {
            verifier
                .ensure_keys()
                .await
                .map_err(|e| format!("auth: {e}"))
        })
    });
    let api = Router::new()
        .route("/auth/{*rest}", any(proxy::forward))
        .route("/api/patients", any(proxy::forward))
        .route("/api/patients/{*rest}", any(proxy::forward))
        .route("/api/audit", any(proxy::forward))
        .route("/api/billing/{*rest}", any(proxy::forward))
        .route("/api/analytics/{*rest}", any(proxy::forward))
        // Patient and billing data, tokens: never stored by a cache, whatever the service said.
        .route_layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    let router = api
        .route("/docs", get(docs::ui))
        .route("/docs/swagger-init.js", get(docs::init_script))
        .route("/api-docs", get(docs::index))
        .route("/api-docs/{service}", get(docs::document))
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
        .merge(docs::assets());
    // The gateway's own listener judges its peers by `trusted_proxies`; the secret is what it
    // sends to the services, not what it expects from its clients.
    let public = crate::config::HttpSettings {
        gateway_secret: None,
        ..settings.http.clone()
    };
    Ok(http::with_layers(router, "gateway", &public, ready))
}
