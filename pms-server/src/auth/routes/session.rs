//! Sessions: login (throttled, constant-work for unknown accounts), refresh-token rotation,
//! logout, token validation and the public JWKS.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use pms_proto::rest::{LoginRequest, Problem, RefreshRequest, TokenResponse, TokenValidation};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::auth::AppState;
use crate::auth::model::Email;
use crate::auth::store::{Action, AuditEvent, NewSession, Outcome, Rotation, UserRecord};
use crate::auth::throttle::AttemptKeys;
use crate::auth::tokens::{NewRefreshToken, RefreshTokenHash, Subject};
use crate::authn::{AuthUser, Jwks};
use crate::email::EMAIL_MAX as EMAIL_MAX_LEN;
use crate::error::ApiError;
use crate::http::{ApiJson, RequestMeta};

/// The one answer to every failed login, whatever the reason (no account enumeration).
fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("invalid email or password".to_owned())
}

/// The one answer to every refused refresh token.
fn invalid_refresh_token() -> ApiError {
    ApiError::Unauthorized("invalid or expired refresh token".to_owned())
}

/// Token responses must not be cached (RFC 6749 §5.1).
fn no_store(body: TokenResponse) -> Response {
    let mut response = ApiJson(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Logs in with email and password.
///
/// Unknown accounts, wrong passwords and disabled accounts get the same 401, after the same work.
/// Failures are throttled per (account, client address) and per client address with growing
/// delays (429 + `Retry-After`); a correct password from an address that is not delayed is
/// always accepted.
#[utoipa::path(
    post, path = "/login", tag = "session",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Malformed body, or an email longer than 254 characters", body = Problem),
        (status = 401, description = "Invalid email or password", body = Problem),
        (status = 429, description = "Too many failed logins from this address", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds until a login may be tried again"))),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    // Bounded before it becomes a key or causes any work.
    // Characters, as the document's `maxLength` counts (at most 4 bytes each: still bounded).
    if req.email.chars().count() > EMAIL_MAX_LEN {
        return Err(ApiError::field(
            "email",
            format!("must be at most {EMAIL_MAX_LEN} characters"),
        ));
    }
    let account = Email::normalize_login(&req.email);
    let password = SecretString::from(req.password);
    let keys = AttemptKeys::new(&account, meta.client_ip_text().as_deref());
    if let Err(throttled) = state.throttle.check(&*state.store, &keys).await? {
        metrics::counter!("auth_logins_throttled_total").increment(1);
        if state.audit_budget.allow() {
            let event = AuditEvent::new(Action::LoginFailed, Outcome::Throttled, &meta);
            state.store.record(&event).await?;
        }
        return Err(ApiError::TooManyRequests {
            detail: "too many failed logins from this address; try again later".to_owned(),
            retry_after_secs: throttled.retry_after_secs,
        });
    }
    let user = state.store.user_by_email(&account).await?;
    // Always verify, against a dummy hash for unknown accounts: same work, same timing.
    let hash = user.as_ref().map(|u| u.password_hash.expose_secret());
    let matches = state.passwords.verify(password, hash).await?;
    let user = match user {
        Some(user) if matches && !user.disabled => user,
        other => {
            // Counted only now: concurrent correct logins never see each other's attempts.
            state.throttle.failed(&*state.store, &keys).await?;
            let event = match &other {
                Some(user) => {
                    tracing::Span::current().record("user_id", tracing::field::display(user.id));
                    let outcome = if matches {
                        Outcome::Denied
                    } else {
                        Outcome::Failed
                    };
                    Some(AuditEvent::new(Action::LoginFailed, outcome, &meta).about(user.id))
                }
                // Unknown accounts cost an attacker nothing to invent: audited within budget.
                None => state
                    .audit_budget
                    .allow()
                    .then(|| AuditEvent::new(Action::LoginFailed, Outcome::Failed, &meta)),
            };
            if let Some(event) = event {
                state.store.record(&event).await?;
            }
            metrics::counter!("auth_logins_failed_total").increment(1);
            return Err(invalid_credentials());
        }
    };
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    state.throttle.succeeded(&*state.store, &keys).await?;
    let refresh = NewRefreshToken::generate()?;
    let session = NewSession {
        token_hash: refresh.hash,
        family_id: Uuid::new_v4(),
        user_id: user.id,
        expires_at: Utc::now() + state.refresh_ttl,
    };
    let event = AuditEvent::new(Action::Login, Outcome::Success, &meta)
        .by(user.id, user.role)
        .about(user.id);
    state.store.start_session(&session, &event).await?;
    Ok(no_store(token_response(
        &state,
        &user,
        session.family_id,
        refresh.token,
    )?))
}

fn token_response(
    state: &AppState,
    user: &UserRecord,
    session_id: Uuid,
    refresh_token: String,
) -> Result<TokenResponse, ApiError> {
    let token = state.tokens.issue(&Subject {
        id: user.id,
        email: user.email.clone(),
        role: user.role,
        session_id,
        epoch: user.token_epoch,
    })?;
    Ok(TokenResponse {
        token,
        refresh_token,
        expires_in: state.tokens.ttl_secs(),
        token_type: "Bearer".to_owned(),
    })
}

/// Exchanges a refresh token for a new access token and a new refresh token.
///
/// Every refresh token works once. Presenting one that was already used (or revoked) revokes its
/// whole family: both the thief and the victim must log in again.
#[utoipa::path(
    post, path = "/refresh", tag = "session",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token is spent", body = TokenResponse),
        (status = 400, description = "Malformed body", body = Problem),
        (status = 401, description = "Unknown, used, revoked or expired refresh token, or disabled account", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn refresh(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let Some(presented) = RefreshTokenHash::of(&req.refresh_token) else {
        audit_unknown_refresh(&state, &meta).await?;
        return Err(invalid_refresh_token());
    };
    let next = NewRefreshToken::generate()?;
    let expires_at = Utc::now() + state.refresh_ttl;
    match state
        .store
        .rotate_refresh_token(&presented, &next.hash, expires_at, &meta)
        .await?
    {
        Rotation::Rotated { user, session_id } => {
            tracing::Span::current().record("user_id", tracing::field::display(user.id));
            Ok(no_store(token_response(
                &state, &user, session_id, next.token,
            )?))
        }
        Rotation::Reused => {
            metrics::counter!("auth_refresh_reuse_total").increment(1);
            tracing::warn!("refresh token reused: its family is revoked");
            Err(invalid_refresh_token())
        }
        Rotation::Unknown => {
            audit_unknown_refresh(&state, &meta).await?;
            Err(invalid_refresh_token())
        }
        Rotation::Expired | Rotation::Disabled => Err(invalid_refresh_token()),
    }
}

/// Audits a refresh with a token that is not ours, within the unauthenticated audit budget
/// (anyone can send garbage, as fast as they like).
async fn audit_unknown_refresh(state: &AppState, meta: &RequestMeta) -> Result<(), ApiError> {
    if state.audit_budget.allow() {
        let event = AuditEvent::new(Action::RefreshFailed, Outcome::Failed, meta);
        state.store.record(&event).await?;
    }
    Ok(())
}

/// Ends the session of a refresh token (revokes its family). Idempotent: unknown tokens get 204.
#[utoipa::path(
    post, path = "/logout", tag = "session",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "The session is over"),
        (status = 400, description = "Malformed body", body = Problem),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    if let Some(presented) = RefreshTokenHash::of(&req.refresh_token) {
        state.store.end_session(&presented, &meta).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// 200 for a valid bearer token, 401 otherwise (reference-system compatible).
#[utoipa::path(
    get, path = "/validate", tag = "session",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token is valid", body = TokenValidation),
        (status = 401, description = "Missing, invalid or expired token", body = Problem),
    )
)]
pub async fn validate(caller: AuthUser) -> ApiJson<TokenValidation> {
    ApiJson(TokenValidation {
        valid: true,
        sub: caller.id,
        role: caller.role,
        expires_at: caller.expires_at,
    })
}

/// The public keys that verify access tokens (RFC 7517; Ed25519 keys per RFC 8037).
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "session",
    responses((status = 200, description = "The key set", body = Jwks))
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = ApiJson(state.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
