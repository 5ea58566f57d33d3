//! The auth service (DESIGN §6): login with failed-login throttling, EdDSA access tokens and their
//! JWKS, rotating refresh tokens with reuse detection, user management, and the auth audit log.
//!
//! `build` opens the service's own database (PostgreSQL schema `auth` or `auth.db`), creates the
//! first admin and the signing key on an empty installation, and returns the router. Other
//! services never call into this module: they verify tokens with [`crate::authn`] against the
//! JWKS served here.

mod bootstrap;
mod keys;
mod model;
mod password;
mod routes;
mod store;
mod throttle;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;

use crate::authn::{Jwks, Verifier};
use crate::config::Settings;
use crate::http::{self, ReadyCheck};
use crate::store::ServiceDb;
use password::Passwords;
use store::AuthStore;
use throttle::{Limits, LoginThrottle};
use tokens::AccessTokens;

/// Shared state of the auth service's handlers.
#[derive(Clone)]
struct AppState {
    store: Arc<dyn AuthStore>,
    tokens: Arc<AccessTokens>,
    /// Verifies this service's own tokens (for the `AuthUser` extractor).
    verifier: Arc<Verifier>,
    jwks: Arc<Jwks>,
    passwords: Passwords,
    throttle: Arc<LoginThrottle>,
    refresh_ttl: chrono::Duration,
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// Builds the auth service's router (with the common layers).
pub async fn build(settings: &Settings) -> anyhow::Result<Router> {
    let auth = &settings.auth;
    let db = crate::store::connect(
        ServiceDb::Auth,
        settings.database_url_for(ServiceDb::Auth),
        &settings.data_dir,
        settings.database.max_connections,
        &store::MIGRATIONS,
    )
    .await
    .context("while opening the auth database")?;
    let auth_store = store::for_db(db.clone());
    let passwords = Passwords::new().await?;
    bootstrap::bootstrap_admin(&*auth_store, &passwords, auth, &settings.data_dir).await?;
    let ring = keys::load_or_create(&*auth_store).await?;
    let verifier = Verifier::local(&ring.jwks, &auth.issuer, &auth.audience)
        .map_err(|e| anyhow::anyhow!("cannot use the stored signing keys: {e}"))?;
    let state = AppState {
        store: auth_store,
        tokens: Arc::new(AccessTokens::new(
            ring.kid,
            ring.encoding,
            &auth.issuer,
            &auth.audience,
            auth.access_token_ttl_secs,
        )),
        verifier: Arc::new(verifier),
        jwks: Arc::new(ring.jwks),
        passwords,
        throttle: Arc::new(LoginThrottle::new(Limits {
            per_account: auth.max_failed_logins_per_account,
            per_ip: auth.max_failed_logins_per_ip,
            window: Duration::from_secs(auth.throttle_window_secs),
        })),
        refresh_ttl: i64::try_from(auth.refresh_token_ttl_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .context("invalid configuration: `auth.refresh_token_ttl_secs` is too large")?,
    };
    let ready: ReadyCheck = Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { db.ping().await })
    });
    Ok(http::with_common_layers(
        routes::router(state),
        "auth",
        &settings.http,
        ready,
    ))
}
