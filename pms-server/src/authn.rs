//! Access-token verification, shared by the gateway and every service: EdDSA JWTs whose public
//! keys come from the auth service's JWKS (cached; refetched on an unknown `kid`, at most once per
//! [`REFETCH_INTERVAL`]). The algorithm is pinned and `exp`, `iss`, `aud` are required. Revoked
//! tokens (a disabled user, a logged-out session, …) are refused: see [`revocation`]. A token's
//! signature is verified once per key set ([`cache`]); revocation on every request.

mod cache;
pub mod revocation;
pub mod streams;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pms_proto::rest::Role;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use uuid::Uuid;

use crate::error::ApiError;
use revocation::{FeedFollower, RevocationCheck, TokenSession};

/// How often an unknown `kid` may trigger a JWKS refetch (forged kids must not cause a storm).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Claims of a PMS access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    pub email: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// The claims of a token as signed and verified: [`Claims`] plus the session claims that
/// revocation needs. Kept apart from [`Claims`] so that code minting test tokens need not know them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenClaims {
    #[serde(flatten)]
    pub claims: Claims,
    /// Session id: the refresh-token family the token was issued in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// The user's token epoch at issue; a revocation bumps it.
    #[serde(default)]
    pub epoch: i64,
}

impl TokenClaims {
    /// What revocation checks look at.
    pub fn session(&self) -> TokenSession {
        TokenSession {
            user_id: self.claims.sub,
            session_id: self.sid,
            epoch: self.epoch,
        }
    }
}

/// A JSON Web Key Set as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One Ed25519 public key (RFC 8037 OKP).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// Base64url public key.
    pub x: String,
    pub kid: String,
    #[serde(rename = "use", default)]
    pub use_: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
}

impl Jwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(kid: &str, public_key: &[u8]) -> Jwk {
        Jwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: URL_SAFE_NO_PAD.encode(public_key),
            kid: kid.to_owned(),
            use_: Some("sig".to_owned()),
            alg: Some("EdDSA".to_owned()),
        }
    }
}

/// Why a token was refused. The client only ever sees a generic 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
    #[error("revoked token")]
    Revoked,
}

/// Where a verifier learns about revoked tokens.
enum Revocations {
    /// Not at all (unit tests of token minting).
    None,
    /// The auth service's feed, polled.
    Feed(Arc<FeedFollower>),
    /// An authoritative check on every verification (the auth service itself).
    Check(Arc<dyn RevocationCheck>),
}

enum KeySource {
    /// Fetched from the auth service.
    Remote {
        jwks_url: String,
        http: reqwest::Client,
    },
    /// The auth service's own keys.
    Local,
}

/// Verifies access tokens. Cheap to clone behind an `Arc`.
pub struct Verifier {
    validation: Validation,
    source: KeySource,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    revocations: Revocations,
    /// Tokens whose signature and claims verified with the current keys.
    verified: cache::VerifiedTokens,
}

impl Verifier {
    /// A verifier that fetches keys from `{auth_url}/.well-known/jwks.json`.
    pub fn remote(auth_url: &str, issuer: &str, audience: &str) -> Verifier {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Verifier {
            validation: validation(issuer, audience),
            revocations: Revocations::Feed(FeedFollower::new(auth_url, http.clone())),
            source: KeySource::Remote {
                jwks_url: format!("{}/.well-known/jwks.json", auth_url.trim_end_matches('/')),
                http,
            },
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            verified: cache::VerifiedTokens::default(),
        }
    }

    /// A verifier over a fixed key set (the auth service verifying its own tokens).
    pub fn local(jwks: &Jwks, issuer: &str, audience: &str) -> Result<Verifier, TokenError> {
        Ok(Verifier {
            validation: validation(issuer, audience),
            source: KeySource::Local,
            keys: RwLock::new(decode_jwks(jwks)?),
            last_fetch: Mutex::new(None),
            revocations: Revocations::None,
            verified: cache::VerifiedTokens::default(),
        })
    }

    /// Checks every verification against `check` (the auth service's own database).
    pub fn with_revocation_check(mut self, check: Arc<dyn RevocationCheck>) -> Verifier {
        self.revocations = Revocations::Check(check);
        self
    }

    /// Replaces the key set of a local verifier (after a key rotation).
    pub async fn replace_keys(&self, jwks: &Jwks) -> Result<(), TokenError> {
        let decoded = decode_jwks(jwks)?;
        let mut keys = self.keys.write().await;
        *keys = decoded;
        // Under the write lock: no verification with the old keys can be cached after this.
        self.verified.clear();
        Ok(())
    }

    /// Verifies a compact JWS and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        Ok(self.verify_token(token).await?.claims)
    }

    /// Whether a token verified earlier has been revoked since (long-lived streams ask this).
    pub async fn is_revoked(&self, session: &TokenSession) -> Result<bool, TokenError> {
        match &self.revocations {
            Revocations::None => Ok(false),
            Revocations::Feed(follower) => {
                follower.ensure_started().await;
                Ok(follower.denies(session))
            }
            Revocations::Check(check) => check
                .is_revoked(session)
                .await
                .map_err(TokenError::KeysUnavailable),
        }
    }

    /// Verifies a compact JWS (signature, claims, revocation) and returns all its claims.
    pub async fn verify_token(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let claims = match self.verified.get(token, self.validation.leeway) {
            Some(claims) => claims,
            None => self.verify_signature(token).await?,
        };
        if self.is_revoked(&claims.session()).await? {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        // The read guard must be gone before `refetch` (which takes the write lock): held across
        // it, it would deadlock this task and, queued behind it, every other request.
        let keys = self.keys.read().await;
        if let Some(key) = keys.get(&kid) {
            let data = jsonwebtoken::decode::<TokenClaims>(token, key, &self.validation)?;
            // Cached under the read lock: a key-set change (write lock) clears after this.
            self.verified.insert(token, &data.claims);
            return Ok(data.claims);
        }
        // Released first: `refetch` takes the write lock.
        drop(keys);
        let key = self.refetch(&kid).await?;
        let data = jsonwebtoken::decode::<TokenClaims>(token, &key, &self.validation)?;
        Ok(data.claims)
    }

    /// Pre-fetches the key set (used by readiness checks). Local verifiers are always ready.
    pub async fn ensure_keys(&self) -> Result<(), TokenError> {
        if !self.keys.read().await.is_empty() {
            return Ok(());
        }
        self.fetch_all().await
    }

    async fn refetch(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        // A kid the revocation feed announced is a real, newly rotated key: fetch at once.
        let announced = match &self.revocations {
            Revocations::Feed(follower) => {
                follower.ensure_started().await;
                follower.announces(kid)
            }
            _ => false,
        };
        {
            let mut last = self.last_fetch.lock().await;
            if !announced && last.is_some_and(|t| t.elapsed() < REFETCH_INTERVAL) {
                return Err(TokenError::UnknownKey);
            }
            *last = Some(Instant::now());
        }
        self.fetch_all().await?;
        self.keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or(TokenError::UnknownKey)
    }

    async fn fetch_all(&self) -> Result<(), TokenError> {
        let KeySource::Remote { jwks_url, http } = &self.source else {
            return Ok(());
        };
        let jwks: Jwks = async {
            http.get(jwks_url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e: reqwest::Error| TokenError::KeysUnavailable(e.without_url().to_string()))?;
        let decoded = decode_jwks(&jwks)?;
        let mut keys = self.keys.write().await;
        *keys = decoded;
        self.verified.clear();
        Ok(())
    }
}

fn validation(issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 5;
    v
}

fn decode_jwks(jwks: &Jwks) -> Result<HashMap<String, DecodingKey>, TokenError> {
    let mut keys = HashMap::new();
    for jwk in &jwks.keys {
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
            continue;
        }
        let key = DecodingKey::from_ed_components(&jwk.x).map_err(TokenError::Invalid)?;
        keys.insert(jwk.kid.clone(), key);
    }
    Ok(keys)
}

/// The authenticated caller of a request: a verified access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    /// What revocation checks need (long-lived streams re-check it).
    pub session: TokenSession,
}

impl AuthUser {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not {what}",
                self.role
            )))
        }
    }
}

/// Extracts the bearer token from an `Authorization` header value.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        let token = bearer(parts)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".to_owned()))?;
        match verifier.verify_token(token).await {
            Ok(verified) => {
                let session = verified.session();
                let claims = verified.claims;
                Ok(AuthUser {
                    id: claims.sub,
                    email: claims.email,
                    role: claims.role,
                    expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now),
                    session,
                })
            }
            Err(TokenError::KeysUnavailable(reason)) => {
                tracing::warn!(%reason, "cannot fetch signing keys from auth");
                Err(ApiError::Unavailable(
                    "the auth service is unavailable; try again shortly".to_owned(),
                ))
            }
            Err(e) => {
                tracing::debug!(error = %e, "token refused");
                Err(ApiError::Unauthorized(
                    "invalid or expired token".to_owned(),
                ))
            }
        }
    }
}
