//! The auth audit log (ADMIN): recent events, newest first.

use axum::extract::State;
use pms_proto::rest::{AuthAuditEntry, Problem};
use serde::Deserialize;
use utoipa::IntoParams;

use super::require_admin;
use crate::auth::AppState;
use crate::authn::AuthUser;
use crate::error::ApiError;
use crate::http::{ApiJson, ApiQuery};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many rows, 1–1000 (default 100).
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Recent auth events: logins (also failed and throttled), refreshes, reuse detections, logouts,
/// user changes. Never passwords, tokens or hashes.
#[utoipa::path(
    get, path = "/audit", tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Newest first", body = [AuthAuditEntry]),
        (status = 400, description = "Invalid `limit`", body = Problem),
        (status = 401, description = "Missing, invalid or expired token", body = Problem),
        (status = 403, description = "Not an ADMIN", body = Problem),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<ApiJson<Vec<AuthAuditEntry>>, ApiError> {
    require_admin(&caller, "read the audit log")?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok(ApiJson(state.store.recent_audit(i64::from(limit)).await?))
}
