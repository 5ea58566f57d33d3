//! Auth service bodies: login, tokens, users.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Compared case-insensitively; any malformed value is simply an unknown account (401).
    #[cfg_attr(feature = "openapi", schema(max_length = 254))]
    pub email: String,
    pub password: String,
}

/// Answer to login and refresh. `token` is the access token (name kept from the reference system).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// EdDSA-signed JWT access token.
    pub token: String,
    /// Opaque refresh token; single use (rotated on every refresh).
    pub refresh_token: String,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
}

/// `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A role: what a user may do (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Everything, including user management and the audit log.
    Admin,
    /// Patients read/write, billing read.
    Clinician,
    /// Billing read/write, patients read.
    Billing,
    /// Read only.
    Viewer,
}

impl Role {
    /// The wire name (`ADMIN`, …), also used in JWT claims and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Clinician => "CLINICIAN",
            Role::Billing => "BILLING",
            Role::Viewer => "VIEWER",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ADMIN" => Ok(Role::Admin),
            "CLINICIAN" => Ok(Role::Clinician),
            "BILLING" => Ok(Role::Billing),
            "VIEWER" => Ok(Role::Viewer),
            _ => Err(format!(
                "unknown role `{s}` (expected ADMIN, CLINICIAN, BILLING or VIEWER)"
            )),
        }
    }
}

/// A user account as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /auth/users` (ADMIN).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Unique regardless of case; stored lowercase. The domain needs a dot.
    #[cfg_attr(feature = "openapi", schema(format = Email, min_length = 3, max_length = 254))]
    pub email: String,
    /// 12–128 characters, not a common password, a repetition or a keyboard run.
    #[cfg_attr(feature = "openapi", schema(min_length = 12, max_length = 128))]
    pub password: String,
    pub role: Role,
}

/// `PATCH /auth/users/{id}` (ADMIN): change role and/or enable/disable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `POST /auth/me/password`: change one's own password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 12–128 characters, not a common password, a repetition or a keyboard run, and not the
    /// current one.
    #[cfg_attr(feature = "openapi", schema(min_length = 12, max_length = 128))]
    pub new_password: String,
}

/// `GET /auth/me`: who the bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    /// Expiry of the presented access token.
    pub token_expires_at: DateTime<Utc>,
}

/// `GET /auth/validate`: the presented access token is valid (reference-system compatible: the
/// status is what matters; the body says whose token it is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenValidation {
    /// Always `true` (an invalid token gets 401, not a body).
    pub valid: bool,
    /// User id (`sub` claim).
    pub sub: Uuid,
    pub role: Role,
    /// Expiry of the presented access token.
    pub expires_at: DateTime<Utc>,
}

/// One auth audit record (`GET /auth/audit`, ADMIN). Never contains passwords, tokens or hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuthAuditEntry {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// Who acted (absent for failed logins and other anonymous events).
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    /// e.g. `auth.login`, `auth.login_failed`, `auth.refresh_reuse`, `user.create`.
    pub action: String,
    /// The user the event is about, when known.
    pub subject_user_id: Option<Uuid>,
    /// SUCCESS, FAILED, DENIED or THROTTLED.
    pub outcome: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}
