//! `/metrics` on the gateway, the public port: never anonymous. It answers a bearer token equal
//! to `http.metrics_token` (for a Prometheus scraper) or an ADMIN access token; anything else is
//! 401 (403 for a valid token of another role). All-in-one, these counters describe every service
//! (failed logins, stream clients, create/delete counts), which is why they are not public.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header;
use axum::response::Response;
use pms_proto::rest::Role;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

use super::GatewayState;
use crate::authn::TokenError;
use crate::error::ApiError;

/// The configured metrics token, kept only as a MAC under a per-process random key, so that
/// checking a presented token is one constant-time comparison whatever its length.
#[derive(Clone)]
pub(crate) struct MetricsToken {
    key: hmac::Key,
    tag: hmac::Tag,
}

impl MetricsToken {
    /// `None` when no token is configured (only ADMIN tokens read `/metrics` then).
    pub(crate) fn new(token: Option<&SecretString>) -> anyhow::Result<Option<MetricsToken>> {
        let Some(token) = token else {
            return Ok(None);
        };
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| anyhow::anyhow!("no randomness for the metrics token key"))?;
        let tag = hmac::sign(&key, token.expose_secret().as_bytes());
        Ok(Some(MetricsToken { key, tag }))
    }

    fn matches(&self, presented: &str) -> bool {
        hmac::verify(&self.key, presented.as_bytes(), self.tag.as_ref()).is_ok()
    }
}

/// `GET /metrics` on the gateway.
pub(crate) async fn metrics(
    State(state): State<GatewayState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("metrics need the metrics token or an ADMIN token".to_owned())
        })?;
    if state
        .metrics_token
        .as_ref()
        .is_some_and(|expected| expected.matches(token))
    {
        return Ok(crate::http::metrics_text().await);
    }
    match state.verifier.verify(token).await {
        Ok(claims) if claims.role == Role::Admin => Ok(crate::http::metrics_text().await),
        Ok(_) => Err(ApiError::Forbidden(
            "only ADMIN may read the gateway's metrics".to_owned(),
        )),
        Err(TokenError::KeysUnavailable(_)) => Err(ApiError::Unavailable(
            "the auth service is unavailable; try again shortly".to_owned(),
        )),
        Err(_) => Err(ApiError::Unauthorized(
            "invalid metrics token or access token".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_matches_itself_only() {
        let token = MetricsToken::new(Some(&SecretString::from("s3cret-metrics-token")))
            .expect("key")
            .expect("configured");
        assert!(token.matches("s3cret-metrics-token"));
        assert!(!token.matches("s3cret-metrics-toke"));
        assert!(!token.matches("s3cret-metrics-tokenX"));
        assert!(!token.matches(""));
        assert!(MetricsToken::new(None).expect("no key needed").is_none());
    }
}
