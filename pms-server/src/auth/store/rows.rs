//! Row types of the auth tables and their conversions to the store's types, shared by both
//! backends' SQL (see [`super::sql`]).

use chrono::{DateTime, Utc};
use pms_proto::rest::{AuthAuditEntry, Role};
use secrecy::SecretString;
use sqlx::FromRow;
use uuid::Uuid;

use super::UserRecord;
use crate::auth::keys::StoredKey;
use crate::error::StoreError;

#[derive(FromRow)]
pub struct UserRow {
    pub(super) id: Uuid,
    pub(super) email: String,
    pub(super) password_hash: String,
    pub(super) role: String,
    pub(super) disabled: bool,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) token_epoch: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(UserRecord {
            id: row.id,
            email: row.email,
            role: parse_role(&row.role)?,
            disabled: row.disabled,
            password_hash: SecretString::from(row.password_hash),
            created_at: row.created_at,
            updated_at: row.updated_at,
            token_epoch: row.token_epoch,
        })
    }
}

pub(super) fn parse_role(role: &str) -> Result<Role, StoreError> {
    role.parse()
        .map_err(|e: String| StoreError::Other(sqlx::Error::Decode(e.into())))
}

/// The refresh token claimed by a rotation.
#[derive(FromRow)]
pub struct ClaimedToken {
    pub(super) family_id: Uuid,
    pub(super) user_id: Uuid,
    pub(super) expires_at: DateTime<Utc>,
}

#[derive(FromRow)]
pub struct AuditRow {
    pub(super) id: Uuid,
    pub(super) occurred_at: DateTime<Utc>,
    pub(super) actor_id: Option<Uuid>,
    pub(super) actor_role: Option<String>,
    pub(super) action: String,
    pub(super) subject_user_id: Option<Uuid>,
    pub(super) outcome: String,
    pub(super) client_ip: Option<String>,
    pub(super) request_id: Option<String>,
}

impl TryFrom<AuditRow> for AuthAuditEntry {
    type Error = StoreError;
    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        Ok(AuthAuditEntry {
            id: row.id,
            occurred_at: row.occurred_at,
            actor_id: row.actor_id,
            actor_role: row.actor_role.as_deref().map(parse_role).transpose()?,
            action: row.action,
            subject_user_id: row.subject_user_id,
            outcome: row.outcome,
            client_ip: row.client_ip,
            request_id: row.request_id,
        })
    }
}

#[derive(FromRow)]
pub struct KeyRow {
    pub(super) generation: i64,
    pub(super) kid: String,
    pub(super) pkcs8: Vec<u8>,
    pub(super) public_key: Vec<u8>,
    pub(super) created_at: DateTime<Utc>,
}

impl From<KeyRow> for StoredKey {
    fn from(row: KeyRow) -> Self {
        StoredKey {
            generation: row.generation,
            kid: row.kid,
            pkcs8: row.pkcs8.into(),
            public_key: row.public_key,
            created_at: row.created_at,
        }
    }
}
