//! [`AuthStore`] in SQL, written once for both backends: [`SqlAuthStore`] is generic over the
//! [`Backend`] (SQLite accepts `$n` placeholders too). The dialects differ only in row
//! locking: PostgreSQL locks the enabled admins (`FOR UPDATE`) before a role/disable change so two
//! admins demoting each other concurrently cannot leave none; SQLite's `BEGIN IMMEDIATE` already
//! serialises writers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pms_proto::rest::{AuthAuditEntry, Role};
use secrecy::ExposeSecret;
use sqlx::{Database, Executor, IntoArguments, Pool, Postgres, Sqlite};
use uuid::Uuid;

use super::guard::RevocationRow;
use super::rows::{AuditRow, ClaimedToken, KeyRow, UserRow};
use super::{
    Action, AuditEvent, AuthStore, LAST_ADMIN, NewSession, NewUser, Outcome, Rotation, UserChange,
    UserRecord, now,
};
use crate::auth::keys::StoredKey;
use crate::auth::tokens::RefreshTokenHash;
use crate::authn::revocation::RevocationKind;
use crate::error::StoreError;
use crate::http::RequestMeta;
use crate::store::{Backend, Fetched, Param};

macro_rules! user_columns {
    () => {
        "id, email, password_hash, role, disabled, created_at, updated_at, token_epoch"
    };
}

// After the macro: the module uses it.
mod support;

/// [`AuthStore`] on backend `B`.
#[derive(Debug)]
pub struct SqlAuthStore<B: Database> {
    pool: Pool<B>,
}

/// [`AuthStore`] on PostgreSQL (the `auth` schema).
pub type PgAuthStore = SqlAuthStore<Postgres>;
/// [`AuthStore`] on SQLite (`auth.db`).
pub type SqliteAuthStore = SqlAuthStore<Sqlite>;

impl<B: Database> Clone for SqlAuthStore<B> {
    fn clone(&self) -> Self {
        SqlAuthStore {
            pool: self.pool.clone(),
        }
    }
}

impl<B: Database> SqlAuthStore<B> {
    pub fn new(pool: Pool<B>) -> Self {
        Self { pool }
    }

    pub(super) fn pool(&self) -> &Pool<B> {
        &self.pool
    }
}

#[async_trait]
impl<B> AuthStore for SqlAuthStore<B>
where
    B: Backend,
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> Uuid: Param<'q, B>,
    for<'q> Option<Uuid>: Param<'q, B>,
    for<'q> i32: Param<'q, B>,
    for<'q> i64: Param<'q, B>,
    for<'q> Option<bool>: Param<'q, B>,
    for<'q> &'q str: Param<'q, B>,
    for<'q> Option<&'q str>: Param<'q, B>,
    for<'q> String: Param<'q, B>,
    for<'q> Option<String>: Param<'q, B>,
    for<'q> &'q [u8]: Param<'q, B>,
    for<'q> Vec<u8>: Param<'q, B>,
    for<'q> DateTime<Utc>: Param<'q, B>,
    UserRow: Fetched<B>,
    AuditRow: Fetched<B>,
    KeyRow: Fetched<B>,
    ClaimedToken: Fetched<B>,
    (i64,): Fetched<B>,
    (String, bool): Fetched<B>,
    (Uuid, Uuid): Fetched<B>,
    RevocationRow: Fetched<B>,
    (bool, i64): Fetched<B>,
    (i32,): Fetched<B>,
    (DateTime<Utc>,): Fetched<B>,
{
    async fn count_users(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    async fn create_first_user(&self, user: &NewUser) -> Result<bool, StoreError> {
        let at = now();
        let mut tx = B::begin_write(&self.pool).await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?;
        if users > 0 {
            return Ok(false);
        }
        match Self::insert_user(&mut tx, user, at).await {
            // PostgreSQL: a replica starting at the same moment inserted the same admin
            // between our count and our insert. Dropping `tx` rolls back.
            Err(StoreError::Conflict(_)) => return Ok(false),
            other => other?,
        };
        let event = AuditEvent::new(Action::Bootstrap, Outcome::Success, &RequestMeta::default())
            .about(user.id);
        Self::audit(&mut tx, &event, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_user(
        &self,
        user: &NewUser,
        audit: &AuditEvent,
    ) -> Result<UserRecord, StoreError> {
        let at = now();
        let mut tx = B::begin_write(&self.pool).await?;
        let created = Self::insert_user(&mut tx, user, at).await?;
        Self::audit(&mut tx, audit, at).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query_as::<_, UserRow>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(UserRecord::try_from)
        .transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query_as::<_, UserRow>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE lower(email) = lower($1)"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?
        .map(UserRecord::try_from)
        .transpose()
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        sqlx::query_as::<_, UserRow>(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY email"
        ))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(UserRecord::try_from)
        .collect()
    }

    async fn update_user(
        &self,
        id: Uuid,
        change: UserChange,
        audit: &AuditEvent,
    ) -> Result<UserRecord, StoreError> {
        let at = now();
        let mut tx = B::begin_write(&self.pool).await?;
        let lock_admins = format!(
            "SELECT id FROM users WHERE role = 'ADMIN' AND NOT disabled{}",
            B::LOCK_ROWS
        );
        sqlx::query(&lock_admins).fetch_all(&mut *tx).await?;
        let before: Option<(String, bool)> =
            sqlx::query_as("SELECT role, disabled FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let updated: UserRecord = sqlx::query_as::<_, UserRow>(concat!(
            "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), \
             updated_at = $4 WHERE id = $1 RETURNING ",
            user_columns!()
        ))
        .bind(id)
        .bind(change.role.map(Role::as_str))
        .bind(change.disabled)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()?;
        let admins: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'ADMIN' AND NOT disabled")
                .fetch_one(&mut *tx)
                .await?;
        if admins == 0 {
            return Err(StoreError::Conflict(LAST_ADMIN.to_owned()));
        }
        if change.disabled == Some(true) {
            Self::revoke_user_tokens(&mut tx, id, at).await?;
        }
        // Access tokens carry the role: a role change or a disable must end them too
        // (a no-op change, e.g. an admin "setting" their own role, revokes nothing).
        let (old_role, was_disabled) = before.unwrap_or_default();
        let role_changed = change.role.is_some_and(|role| role.as_str() != old_role);
        if role_changed || (change.disabled == Some(true) && !was_disabled) {
            Self::bump_epoch(&mut tx, id, at).await?;
        }
        Self::audit(&mut tx, audit, at).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn set_password(
        &self,
        id: Uuid,
        password_hash: &str,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let at = now();
        let mut tx = B::begin_write(&self.pool).await?;
        let updated =
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        if B::rows_affected(&updated) == 0 {
            return Err(StoreError::NotFound);
        }
        Self::revoke_user_tokens(&mut tx, id, at).await?;
        Self::bump_epoch(&mut tx, id, at).await?;
        Self::audit(&mut tx, audit, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn start_session(
        &self,
        session: &NewSession,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let at = now();
        let mut tx = B::begin_write(&self.pool).await?;
        Self::insert_token(
            &mut tx,
            &session.token_hash,
            session.family_id,
            session.user_id,
            at,
            session.expires_at,
        )
        .await?;
        Self::audit(&mut tx, audit, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &RefreshTokenHash,
        next: &RefreshTokenHash,
        expires_at: DateTime<Utc>,
        origin: &RequestMeta,
    ) -> Result<Rotation, StoreError> {
        let at = now();
        let mut tx = B::begin_write(&self.pool).await?;
        // Claim the token atomically: of two concurrent presentations exactly one wins;
        // the other sees it used and is treated as reuse.
        let claimed = sqlx::query_as::<_, ClaimedToken>(
            "UPDATE refresh_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL \
             RETURNING family_id, user_id, expires_at",
        )
        .bind(presented.as_bytes())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let (rotation, event) = match claimed {
            None => {
                let known: Option<(Uuid, Uuid)> = sqlx::query_as(
                    "SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(presented.as_bytes())
                .fetch_optional(&mut *tx)
                .await?;
                match known {
                    // Nothing to record in the transaction: the caller audits unknown
                    // tokens within its rate limit (anyone can send garbage).
                    None => return Ok(Rotation::Unknown),
                    Some((family_id, user_id)) => {
                        Self::revoke_family(&mut tx, family_id, at).await?;
                        Self::add_revocation(&mut tx, RevocationKind::Session, family_id, 0, at)
                            .await?;
                        (
                            Rotation::Reused,
                            AuditEvent::new(Action::RefreshReuse, Outcome::Denied, origin)
                                .about(user_id),
                        )
                    }
                }
            }
            Some(token) if token.expires_at <= at => {
                Self::revoke_family(&mut tx, token.family_id, at).await?;
                (
                    Rotation::Expired,
                    AuditEvent::new(Action::RefreshFailed, Outcome::Failed, origin)
                        .about(token.user_id),
                )
            }
            Some(token) => {
                let user: Option<UserRecord> = sqlx::query_as::<_, UserRow>(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE id = $1"
                ))
                .bind(token.user_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(UserRecord::try_from)
                .transpose()?;
                match user {
                    Some(user) if !user.disabled => {
                        Self::insert_token(&mut tx, next, token.family_id, user.id, at, expires_at)
                            .await?;
                        let event = AuditEvent::new(Action::Refresh, Outcome::Success, origin)
                            .by(user.id, user.role)
                            .about(user.id);
                        (
                            Rotation::Rotated {
                                user,
                                session_id: token.family_id,
                            },
                            event,
                        )
                    }
                    _ => {
                        Self::revoke_family(&mut tx, token.family_id, at).await?;
                        (
                            Rotation::Disabled,
                            AuditEvent::new(Action::RefreshFailed, Outcome::Denied, origin)
                                .about(token.user_id),
                        )
                    }
                }
            }
        };
        Self::audit(&mut tx, &event, at).await?;
        tx.commit().await?;
        Ok(rotation)
    }

    async fn end_session(
        &self,
        presented: &RefreshTokenHash,
        origin: &RequestMeta,
    ) -> Result<bool, StoreError> {
        let at = now();
        let mut tx = B::begin_write(&self.pool).await?;
        let known: Option<(Uuid, Uuid)> =
            sqlx::query_as("SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(presented.as_bytes())
                .fetch_optional(&mut *tx)
                .await?;
        let Some((family_id, user_id)) = known else {
            return Ok(false);
        };
        Self::revoke_family(&mut tx, family_id, at).await?;
        Self::add_revocation(&mut tx, RevocationKind::Session, family_id, 0, at).await?;
        let event = AuditEvent::new(Action::Logout, Outcome::Success, origin).about(user_id);
        Self::audit(&mut tx, &event, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record(&self, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut conn = B::acquire_write(&self.pool).await?;
        Self::audit(&mut conn, audit, now()).await
    }

    async fn recent_audit(&self, limit: i64) -> Result<Vec<AuthAuditEntry>, StoreError> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, occurred_at, actor_id, actor_role, action, subject_user_id, outcome, \
             client_ip, request_id FROM auth_audit ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(AuthAuditEntry::try_from)
        .collect()
    }

    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        Ok(sqlx::query_as::<_, KeyRow>(
            "SELECT generation, kid, pkcs8, public_key, created_at FROM signing_keys \
             ORDER BY generation",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(StoredKey::from)
        .collect())
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> Result<bool, StoreError> {
        let inserted = sqlx::query(super::INSERT_SIGNING_KEY)
            .bind(key.generation)
            .bind(&key.kid)
            .bind(key.pkcs8.expose_secret())
            .bind(&key.public_key)
            .bind(key.created_at)
            .execute(&mut *B::acquire_write(&self.pool).await?)
            .await?;
        Ok(B::rows_affected(&inserted) == 1)
    }
}
