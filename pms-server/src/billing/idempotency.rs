//! The `Idempotency-Key` request header of money-moving POSTs.
//!
//! A key is scoped to the caller (user id) and stored with a SHA-256 of the request (method, path
//! and the parsed body re-serialised, so formatting does not matter) and the result it produced,
//! in the same transaction as the write. The same key with the same request answers the stored
//! result again (same status and body, plus `Idempotent-Replayed: true`) without writing
//! anything; the same key with a different request is refused with 422. Refused requests store
//! nothing, so their key stays usable.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, Method};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use uuid::Uuid;

use super::store::IdempotencyClaim;
use crate::error::ApiError;

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Response header set when the body is a replay of a stored result.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` of a request, if it has one (1–255 visible ASCII characters).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(&IDEMPOTENCY_KEY) else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| {
                !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::field(
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
                )
            })?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

impl IdempotencyKey {
    /// The claim to store with the write, if the request carried a key.
    pub fn claim(
        &self,
        actor_id: Uuid,
        method: &Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Option<IdempotencyClaim>, ApiError> {
        let Some(key) = &self.0 else {
            return Ok(None);
        };
        let body = serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Some(IdempotencyClaim {
            actor_id,
            key: key.clone(),
            request_hash: request_hash(method, path, &body),
        }))
    }
}

fn request_hash(method: &Method, path: &str, body: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [method.as_str().as_bytes(), path.as_bytes(), body] {
        // Length-prefixed, so no two different (method, path, body) triples hash alike.
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    async fn extract(header: Option<&str>) -> Result<IdempotencyKey, ApiError> {
        let mut builder = Request::builder().uri("/x");
        if let Some(h) = header {
            builder = builder.header("Idempotency-Key", h);
        }
        let (mut parts, ()) = builder.body(()).expect("request").into_parts();
        IdempotencyKey::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn keys_are_optional_and_validated() {
        assert!(extract(None).await.expect("no key").0.is_none());
        assert_eq!(
            extract(Some("abc-123")).await.expect("key").0.as_deref(),
            Some("abc-123")
        );
        for bad in ["", "has space", &"k".repeat(256)] {
            let err = extract(Some(bad)).await.expect_err(bad);
            assert_eq!(err.status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let base = request_hash(&Method::POST, "/a", b"{}");
        assert_eq!(base, request_hash(&Method::POST, "/a", b"{}"));
        assert_ne!(base, request_hash(&Method::PUT, "/a", b"{}"));
        assert_ne!(base, request_hash(&Method::POST, "/b", b"{}"));
        assert_ne!(base, request_hash(&Method::POST, "/a", b"{ }"));
        assert_ne!(
            request_hash(&Method::POST, "/ab", b"c"),
            request_hash(&Method::POST, "/a", b"bc")
        );
    }
}
