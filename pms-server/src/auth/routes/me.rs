//! The caller's own account: who am I, and changing one's password.

use axum::extract::State;
use axum::http::StatusCode;
use pms_proto::rest::{ChangePasswordRequest, Me, Problem};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::AppState;
use crate::auth::model::Password;
use crate::auth::store::{Action, AuditEvent, Outcome};
use crate::auth::throttle::AttemptKeys;
use crate::authn::AuthUser;
use crate::error::ApiError;
use crate::http::{ApiJson, RequestMeta};

/// Who the bearer token belongs to.
#[utoipa::path(
    get, path = "/me", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Missing, invalid or expired token", body = Problem),
    )
)]
pub async fn me(caller: AuthUser) -> ApiJson<Me> {
    ApiJson(Me {
        id: caller.id,
        email: caller.email,
        role: caller.role,
        token_expires_at: caller.expires_at,
    })
}

/// Changes the caller's password and ends all their sessions: refresh tokens at once, access
/// tokens within seconds everywhere (revocation).
///
/// A wrong current password is 403 and counts as a failed login for the throttle.
#[utoipa::path(
    post, path = "/me/password", tag = "users",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every refresh token of the account is revoked"),
        (status = 400, description = "Invalid new password", body = Problem),
        (status = 401, description = "Missing, invalid or expired token, or disabled account", body = Problem),
        (status = 403, description = "The current password is wrong", body = Problem),
        (status = 429, description = "Too many failed attempts", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    meta: RequestMeta,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let new_password =
        Password::parse(req.new_password).map_err(|m| ApiError::field("newPassword", m))?;
    if new_password.expose() == req.current_password {
        return Err(ApiError::field(
            "newPassword",
            "must differ from the current password",
        ));
    }
    let account = state
        .store
        .user_by_id(caller.id)
        .await?
        .filter(|user| !user.disabled)
        .ok_or_else(|| ApiError::Unauthorized("the account is disabled or gone".to_owned()))?;
    let keys = AttemptKeys::new(&account.email, meta.client_ip_text().as_deref());
    if let Err(throttled) = state.throttle.check(&*state.store, &keys).await? {
        return Err(ApiError::TooManyRequests {
            detail: "too many failed attempts; try again later".to_owned(),
            retry_after_secs: throttled.retry_after_secs,
        });
    }
    let current = SecretString::from(req.current_password);
    if !state
        .passwords
        .verify(current, Some(account.password_hash.expose_secret()))
        .await?
    {
        let event = AuditEvent::new(Action::UserPassword, Outcome::Failed, &meta)
            .by(caller.id, caller.role)
            .about(caller.id);
        state.throttle.failed(&*state.store, &keys).await?;
        state.store.record(&event).await?;
        return Err(ApiError::Forbidden(
            "the current password is incorrect".to_owned(),
        ));
    }
    state.throttle.succeeded(&*state.store, &keys).await?;
    let hash = state.passwords.hash(new_password.into_secret()).await?;
    let event = AuditEvent::new(Action::UserPassword, Outcome::Success, &meta)
        .by(caller.id, caller.role)
        .about(caller.id);
    state.store.set_password(account.id, &hash, &event).await?;
    Ok(StatusCode::NO_CONTENT)
}
