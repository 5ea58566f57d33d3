//! [`AuthStore`] in SQL, written once for both backends: `sql_store!` expands the same bodies for
//! PostgreSQL and SQLite (which accepts `$n` placeholders). The dialects differ only in row
//! locking: PostgreSQL locks the enabled admins (`FOR UPDATE`) before a role/disable change so two
//! admins demoting each other concurrently cannot leave none; SQLite's `BEGIN IMMEDIATE` already
//! serialises writers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pms_proto::rest::{AuthAuditEntry, Role};
use secrecy::ExposeSecret;
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use super::rows::{AuditRow, ClaimedToken, KeyRow, UserRow, db};
use super::{
    Action, AuditEvent, AuthStore, LAST_ADMIN, NewSession, NewUser, Outcome, REVOCATION_LIFETIME,
    Rotation, UserChange, UserRecord, kind_str, now,
};
use crate::auth::keys::StoredKey;
use crate::auth::tokens::RefreshTokenHash;
use crate::authn::revocation::RevocationKind;
use crate::error::StoreError;
use crate::http::RequestMeta;
use crate::store::BeginWrite;

macro_rules! user_columns {
    () => {
        "id, email, password_hash, role, disabled, created_at, updated_at, token_epoch"
    };
}

macro_rules! sql_store {
    ($(#[$doc:meta])* $store:ident, $pool:ty, $db:ty, lock_admins = $lock:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $store {
            pool: $pool,
        }

        impl $store {
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }

            pub(super) fn pool(&self) -> &$pool {
                &self.pool
            }

            async fn insert_user(
                conn: &mut <$db as sqlx::Database>::Connection,
                user: &NewUser,
                at: DateTime<Utc>,
            ) -> Result<UserRecord, StoreError> {
                sqlx::query_as::<_, UserRow>(concat!(
                    "INSERT INTO users (id, email, password_hash, role, disabled, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, FALSE, $5, $5) RETURNING ",
                    user_columns!()
                ))
                .bind(user.id)
                .bind(user.email.key())
                .bind(&user.password_hash)
                .bind(user.role.as_str())
                .bind(at)
                .fetch_one(conn)
                .await
                .map_err(db)?
                .try_into()
            }

            pub(super) async fn audit(
                conn: &mut <$db as sqlx::Database>::Connection,
                event: &AuditEvent,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO auth_audit (id, occurred_at, actor_id, actor_role, action, \
                     subject_user_id, outcome, client_ip, request_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(Uuid::now_v7())
                .bind(at)
                .bind(event.meta.actor_id)
                .bind(event.meta.role_str())
                .bind(event.action.as_str())
                .bind(event.subject_user_id)
                .bind(event.outcome.as_str())
                .bind(event.meta.client_ip())
                .bind(event.meta.request_id())
                .execute(conn)
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn revoke_family(
                conn: &mut <$db as sqlx::Database>::Connection,
                family_id: Uuid,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 \
                     WHERE family_id = $1 AND revoked_at IS NULL",
                )
                .bind(family_id)
                .bind(at)
                .execute(conn)
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn revoke_user_tokens(
                conn: &mut <$db as sqlx::Database>::Connection,
                user_id: Uuid,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 \
                     WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(at)
                .execute(conn)
                .await
                .map_err(db)?;
                Ok(())
            }

            /// Bumps the user's token epoch and publishes the revocation of lower epochs.
            async fn bump_epoch(
                conn: &mut <$db as sqlx::Database>::Connection,
                user_id: Uuid,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                let epoch: i64 = sqlx::query_scalar(
                    "UPDATE users SET token_epoch = token_epoch + 1 WHERE id = $1 RETURNING token_epoch",
                )
                .bind(user_id)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
                Self::add_revocation(conn, RevocationKind::User, user_id, epoch, at).await
            }

            /// Publishes a revocation (and drops the ones no token can be affected by any more).
            async fn add_revocation(
                conn: &mut <$db as sqlx::Database>::Connection,
                kind: RevocationKind,
                subject: Uuid,
                epoch: i64,
                at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM revocations WHERE expires_at < $1")
                    .bind(at)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
                sqlx::query(
                    "INSERT INTO revocations (kind, subject, epoch, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(kind_str(kind))
                .bind(subject)
                .bind(epoch)
                .bind(at)
                .bind(at + REVOCATION_LIFETIME)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                Ok(())
            }

            async fn insert_token(
                conn: &mut <$db as sqlx::Database>::Connection,
                hash: &RefreshTokenHash,
                family_id: Uuid,
                user_id: Uuid,
                issued_at: DateTime<Utc>,
                expires_at: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(hash.as_bytes())
                .bind(family_id)
                .bind(user_id)
                .bind(issued_at)
                .bind(expires_at)
                .execute(conn)
                .await
                .map_err(db)?;
                Ok(())
            }
        }

        #[async_trait]
        impl AuthStore for $store {
            async fn count_users(&self) -> Result<i64, StoreError> {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)
            }

            async fn create_first_user(&self, user: &NewUser) -> Result<bool, StoreError> {
                let at = now();
                let mut tx = self.pool.begin_write().await.map_err(db)?;
                let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
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
                tx.commit().await.map_err(db)?;
                Ok(true)
            }

            async fn create_user(
                &self,
                user: &NewUser,
                audit: &AuditEvent,
            ) -> Result<UserRecord, StoreError> {
                let at = now();
                let mut tx = self.pool.begin_write().await.map_err(db)?;
                let created = Self::insert_user(&mut tx, user, at).await?;
                Self::audit(&mut tx, audit, at).await?;
                tx.commit().await.map_err(db)?;
                Ok(created)
            }

            async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
                sqlx::query_as::<_, UserRow>(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .map(UserRecord::try_from)
                    .transpose()
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
                sqlx::query_as::<_, UserRow>(concat!(
                    "SELECT ", user_columns!(), " FROM users WHERE lower(email) = lower($1)"
                ))
                .bind(email)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?
                .map(UserRecord::try_from)
                .transpose()
            }

            async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
                sqlx::query_as::<_, UserRow>(concat!("SELECT ", user_columns!(), " FROM users ORDER BY email"))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?
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
                let mut tx = self.pool.begin_write().await.map_err(db)?;
                sqlx::query(concat!("SELECT id FROM users WHERE role = 'ADMIN' AND NOT disabled", $lock))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                let before: Option<(String, bool)> =
                    sqlx::query_as("SELECT role, disabled FROM users WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
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
                .await
                .map_err(db)?
                .ok_or(StoreError::NotFound)?
                .try_into()?;
                let admins: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users WHERE role = 'ADMIN' AND NOT disabled",
                )
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
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
                tx.commit().await.map_err(db)?;
                Ok(updated)
            }

            async fn set_password(
                &self,
                id: Uuid,
                password_hash: &str,
                audit: &AuditEvent,
            ) -> Result<(), StoreError> {
                let at = now();
                let mut tx = self.pool.begin_write().await.map_err(db)?;
                let updated = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(password_hash)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Self::revoke_user_tokens(&mut tx, id, at).await?;
                Self::bump_epoch(&mut tx, id, at).await?;
                Self::audit(&mut tx, audit, at).await?;
                tx.commit().await.map_err(db)?;
                Ok(())
            }

            async fn start_session(
                &self,
                session: &NewSession,
                audit: &AuditEvent,
            ) -> Result<(), StoreError> {
                let at = now();
                let mut tx = self.pool.begin_write().await.map_err(db)?;
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
                tx.commit().await.map_err(db)?;
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
                let mut tx = self.pool.begin_write().await.map_err(db)?;
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
                .await
                .map_err(db)?;
                let (rotation, event) = match claimed {
                    None => {
                        let known: Option<(Uuid, Uuid)> = sqlx::query_as(
                            "SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1",
                        )
                        .bind(presented.as_bytes())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?;
                        match known {
                            // Nothing to record in the transaction: the caller audits unknown
                            // tokens within its rate limit (anyone can send garbage).
                            None => return Ok(Rotation::Unknown),
                            Some((family_id, user_id)) => {
                                Self::revoke_family(&mut tx, family_id, at).await?;
                                Self::add_revocation(
                                    &mut tx, RevocationKind::Session, family_id, 0, at,
                                )
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
                            "SELECT ", user_columns!(), " FROM users WHERE id = $1"
                        ))
                        .bind(token.user_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?
                        .map(UserRecord::try_from)
                        .transpose()?;
                        match user {
                            Some(user) if !user.disabled => {
                                Self::insert_token(&mut tx, next, token.family_id, user.id, at, expires_at)
                                    .await?;
                                let event = AuditEvent::new(Action::Refresh, Outcome::Success, origin)
                                    .by(user.id, user.role)
                                    .about(user.id);
                                (Rotation::Rotated { user, session_id: token.family_id }, event)
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
                tx.commit().await.map_err(db)?;
                Ok(rotation)
            }

            async fn end_session(
                &self,
                presented: &RefreshTokenHash,
                origin: &RequestMeta,
            ) -> Result<bool, StoreError> {
                let at = now();
                let mut tx = self.pool.begin_write().await.map_err(db)?;
                let known: Option<(Uuid, Uuid)> = sqlx::query_as(
                    "SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(presented.as_bytes())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                let Some((family_id, user_id)) = known else {
                    return Ok(false);
                };
                Self::revoke_family(&mut tx, family_id, at).await?;
                Self::add_revocation(&mut tx, RevocationKind::Session, family_id, 0, at).await?;
                let event = AuditEvent::new(Action::Logout, Outcome::Success, origin).about(user_id);
                Self::audit(&mut tx, &event, at).await?;
                tx.commit().await.map_err(db)?;
                Ok(true)
            }

            async fn record(&self, audit: &AuditEvent) -> Result<(), StoreError> {
                let mut conn = self.pool.acquire().await.map_err(db)?;
                Self::audit(&mut conn, audit, now()).await
            }

            async fn recent_audit(&self, limit: i64) -> Result<Vec<AuthAuditEntry>, StoreError> {
                sqlx::query_as::<_, AuditRow>(
                    "SELECT id, occurred_at, actor_id, actor_role, action, subject_user_id, outcome, \
                     client_ip, request_id FROM auth_audit ORDER BY seq DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?
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
                .await
                .map_err(db)?
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
                .execute(&self.pool)
                .await
                .map_err(db)?;
                Ok(inserted.rows_affected() == 1)
            }
        }
    };
}

sql_store!(
    /// [`AuthStore`] on PostgreSQL (the `auth` schema).
    PgAuthStore,
    PgPool,
    sqlx::Postgres,
    lock_admins = " FOR UPDATE"
);
sql_store!(
    /// [`AuthStore`] on SQLite (`auth.db`).
    SqliteAuthStore,
    SqlitePool,
    sqlx::Sqlite,
    lock_admins = ""
);
