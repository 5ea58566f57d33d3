//! The auth service (DESIGN §6): login with failed-login throttling, EdDSA access tokens and their
//! JWKS, rotating refresh tokens with reuse detection, user management, and the auth audit log.
//!
//! `build` opens the service's own database (PostgreSQL schema `auth` or `auth.db`), creates the
//! first admin and the signing key on an empty installation, and returns the router. Other
//! services never call into this module: they verify tokens with [`crate::authn`] against the
//! JWKS served here.

mod bootstrap;
mod common_passwords;
pub mod fixtures;
mod kek;
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

use crate::authn::revocation::{RevocationCheck, TokenSession};
use crate::authn::{Jwks, Verifier};
use crate::config::Settings;
use crate::http::{self, ReadyCheck};
use crate::store::ServiceDb;
pub use kek::Kek;
use password::{HashLimits, Passwords};
use store::AuthStore;
use throttle::{AuditBudget, Limits, LoginThrottle};
use tokens::AccessTokens;

/// How often each auth replica re-reads the signing keys (rotations by other replicas, retirement).
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// Shared state of the auth service's handlers.
#[derive(Clone)]
struct AppState {
    store: Arc<dyn AuthStore>,
    tokens: Arc<AccessTokens>,
    /// Verifies this service's own tokens (for the `AuthUser` extractor).
    verifier: Arc<Verifier>,
    /// The published keys (replaced on rotation and reload).
    jwks: Arc<std::sync::RwLock<Jwks>>,
    kek: Option<Arc<Kek>>,
    passwords: Passwords,
    throttle: Arc<LoginThrottle>,
    /// Bounds audit rows caused by unauthenticated requests.
    audit_budget: Arc<AuditBudget>,
    refresh_ttl: chrono::Duration,
    access_ttl: chrono::Duration,
}

impl AppState {
    /// Re-reads the signing keys: retired ones disappear from the JWKS; with `switch_signer` the
    /// newest signs from now on.
    async fn reload_keys(&self, switch_signer: bool) -> anyhow::Result<()> {
        let ring = keys::load_or_create(&*self.store, self.kek.as_deref(), self.access_ttl).await?;
        self.verifier
            .replace_keys(&ring.jwks)
            .await
            .map_err(|e| anyhow::anyhow!("cannot use the stored signing keys: {e}"))?;
        if switch_signer && self.tokens.kid() != ring.kid {
            self.tokens.set_signer(ring.kid, ring.encoding);
        }
        *self.jwks.write().unwrap_or_else(|p| p.into_inner()) = ring.jwks;
        Ok(())
    }

    /// The current JWKS.
    fn jwks(&self) -> Jwks {
        self.jwks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The auth service checks revocation in its own database: `/validate` and `/me` refuse at once.
struct StoreRevocationCheck(Arc<dyn AuthStore>);

#[async_trait::async_trait]
impl RevocationCheck for StoreRevocationCheck {
    async fn is_revoked(&self, token: &TokenSession) -> Result<bool, String> {
        self.0.is_revoked(token).await.map_err(|e| e.to_string())
    }
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
    let passwords = Passwords::with_limits(HashLimits::from_settings(auth)).await?;
    bootstrap::bootstrap_admin(&*auth_store, &passwords, auth, &settings.data_dir).await?;
    if let Some(fixtures) = settings.fixtures {
        settings.check_fixtures()?;
        fixtures::load(fixtures, &*auth_store, &passwords).await?;
    }
    let kek = Kek::from_settings(auth)?.map(Arc::new);
    if kek.is_none() {
        tracing::warn!(
            "no key-encryption key configured: the token signing key is stored unencrypted; set \
             PMS_AUTH__KEY_ENCRYPTION_KEY (or auth.key_encryption_key_file) in production"
        );
    }
    let access_ttl = chrono::Duration::from_std(auth.access_token_ttl)
        .context("invalid configuration: `auth.access_token_ttl_secs` is too large")?;
    let ring = keys::load_or_create(&*auth_store, kek.as_deref(), access_ttl).await?;
    let verifier = Verifier::local(&ring.jwks, &auth.issuer, &auth.audience)
        .map_err(|e| anyhow::anyhow!("cannot use the stored signing keys: {e}"))?
        .with_revocation_check(Arc::new(StoreRevocationCheck(auth_store.clone())));
    let state = AppState {
        store: auth_store,
        tokens: Arc::new(AccessTokens::new(
            ring.kid,
            ring.encoding,
            &auth.issuer,
            &auth.audience,
            auth.access_token_ttl.as_secs(),
        )),
        verifier: Arc::new(verifier),
        jwks: Arc::new(std::sync::RwLock::new(ring.jwks)),
        kek,
        passwords,
        throttle: Arc::new(LoginThrottle::new(Limits {
            per_account: auth.max_failed_logins_per_account,
            per_ip: auth.max_failed_logins_per_ip,
            window: chrono::Duration::from_std(auth.throttle_window)
                .context("invalid configuration: `auth.throttle_window_secs` is too large")?,
        })),
        // One row a second on average, bursts of 10, for failures anyone can cause without an
        // account (failures of real accounts are always recorded): a bounded trickle under a
        // flood, and the metric `auth_audit_suppressed_total` counts the rest.
        audit_budget: Arc::new(AuditBudget::new(1.0, 10.0)),
        refresh_ttl: chrono::Duration::from_std(auth.refresh_token_ttl)
            .context("invalid configuration: `auth.refresh_token_ttl_secs` is too large")?,
        access_ttl,
    };
    tokio::spawn(reload_keys_periodically(state.clone()));
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

/// Re-reads the keys every [`KEY_RELOAD_INTERVAL`] until the service's router is dropped.
async fn reload_keys_periodically(state: AppState) {
    loop {
        tokio::time::sleep(KEY_RELOAD_INTERVAL).await;
        // Only this task still holds the state: the service is gone.
        if Arc::strong_count(&state.tokens) <= 1 {
            return;
        }
        if let Err(e) = state.reload_keys(true).await {
            tracing::warn!(error = format!("{e:#}"), "cannot reload the signing keys");
        }
    }
}
