//! Signing-key rotation (ADMIN) and the revocation feed that every token verifier polls.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use pms_proto::rest::Problem;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::require_admin;
use crate::auth::AppState;
use crate::auth::keys;
use crate::auth::store::{Action, AuditEvent, Outcome};
use crate::authn::AuthUser;
use crate::authn::revocation::RevocationFeed;
use crate::error::ApiError;
use crate::http::{ApiJson, ApiQuery, RequestMeta};

/// How long a new key is published before it signs: two feed polls and a margin.
const PROPAGATION: std::time::Duration = std::time::Duration::from_millis(2500);

/// The result of a rotation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedKey {
    /// `kid` of the key that signs from now on.
    pub kid: String,
    /// Every `kid` now published in the JWKS (older keys stay until their tokens expired).
    pub published: Vec<String>,
}

/// Makes a new signing key current (it is published first and signs a few seconds later, when
/// every verifier knows it; the call returns then). Tokens signed with older keys stay valid until
/// they expire: their public keys stay in the JWKS until then, and are dropped after.
#[utoipa::path(
    post, path = "/keys/rotate", tag = "keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rotated", body = RotatedKey),
        (status = 401, description = "Missing, invalid or expired token", body = Problem),
        (status = 403, description = "Not an ADMIN", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %caller.id))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: AuthUser,
    meta: RequestMeta,
) -> Result<ApiJson<RotatedKey>, ApiError> {
    require_admin(&caller, "rotate signing keys")?;
    let event =
        AuditEvent::new(Action::KeyRotate, Outcome::Success, &meta).by(caller.id, caller.role);
    let kid = keys::rotate(&*state.store, state.kek.as_deref(), &event).await?;
    // Publish first, sign later: once every verifier has polled the feed (which announces the
    // new kid) tokens signed with it are accepted everywhere from their first request.
    state.reload_keys(false).await?;
    tokio::time::sleep(PROPAGATION).await;
    state.reload_keys(true).await?;
    Ok(ApiJson(RotatedKey {
        kid,
        published: state.jwks().keys.into_iter().map(|k| k.kid).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Only revocations recorded at or after this time (RFC 3339); all active ones if absent.
    #[param(value_type = DateTime<Utc>, required = false)]
    since: Option<DateTime<Utc>>,
}

/// Active revocations of access tokens (by user epoch or by session), polled by the gateway's and
/// every service's token verifier. For internal callers (no `Authorization`) and ADMINs.
#[utoipa::path(
    get, path = "/revocations", tag = "keys",
    params(FeedQuery),
    responses(
        (status = 200, description = "Active revocations", body = RevocationFeed),
        (status = 400, description = "Invalid `since`", body = Problem),
        (status = 401, description = "Invalid or expired token", body = Problem),
        (status = 403, description = "A token that is not an ADMIN's", body = Problem),
    )
)]
pub async fn revocations(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<AuthUser, ApiError>,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<ApiJson<RevocationFeed>, ApiError> {
    // Through the gateway a request always carries a user's token: only ADMINs get the list.
    if headers.contains_key(header::AUTHORIZATION) {
        require_admin(&caller?, "read the revocation feed")?;
    }
    let mut feed = state.store.revocations_since(query.since).await?;
    feed.kids = state.jwks().keys.into_iter().map(|k| k.kid).collect();
    Ok(ApiJson(feed))
}
