//! The auth store's defences, in SQL for both backends (generic over the [`Backend`], like
//! [`super::sql`]): the revocation feed and the authoritative revocation check, the failed-login
//! throttle (shared by replicas, surviving restarts), and signing-key maintenance (sealing with
//! the KEK, rotation).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{Executor, IntoArguments};
use uuid::Uuid;

use super::rows::{AuditRow, ClaimedToken, KeyRow, UserRow};
use super::sql::SqlAuthStore;
use super::{AuditEvent, now};
use crate::auth::keys::StoredKey;
use crate::authn::revocation::{Revocation, RevocationFeed, RevocationKind, TokenSession};
use crate::error::StoreError;
use crate::store::{Backend, Fetched, Param};

/// A throttle key: SHA-256 of what is throttled (never stored in the clear).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ThrottleKey(pub [u8; 32]);

impl std::fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThrottleKey(..)")
    }
}

/// Revocations, throttle and key maintenance. Part of every [`super::AuthStore`].
#[async_trait]
pub trait GuardStore: Send + Sync {
    /// Active revocations created at or after `since` (every active one when `None`).
    async fn revocations_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<RevocationFeed, StoreError>;

    /// Whether a token must be refused: its user is gone or disabled, its epoch is below the
    /// user's, or its session is revoked.
    async fn is_revoked(&self, token: &TokenSession) -> Result<bool, StoreError>;

    /// The latest `blocked_until` of `keys` that is still in the future.
    async fn throttle_blocked_until(
        &self,
        keys: &[ThrottleKey],
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Counts a failure of `key` (a window after the last failure it starts again from one);
    /// from the `free`-th failure on, `key` is blocked for 5 s, 10 s, 20 s, … at most `window`.
    async fn throttle_failure(
        &self,
        key: &ThrottleKey,
        free: u32,
        window: TimeDelta,
    ) -> Result<(), StoreError>;

    /// Forgets the failures of `key` (a successful login).
    async fn throttle_clear(&self, key: &ThrottleKey) -> Result<(), StoreError>;

    /// Replaces the plaintext private key of `generation` by its sealed form, if it is still the
    /// plaintext `plain` (another replica may have sealed it first). `true` if replaced.
    async fn seal_signing_key(
        &self,
        generation: i64,
        plain: &[u8],
        sealed: &[u8],
    ) -> Result<bool, StoreError>;

    /// Stores `key` as the newest generation with its audit row; `false` if that generation
    /// exists already (a concurrent rotation won).
    async fn add_signing_key(
        &self,
        key: &StoredKey,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Deletes a retired signing key.
    async fn delete_signing_key(&self, generation: i64) -> Result<(), StoreError>;
}

/// The delay after the last free failure; each further failure doubles it.
pub const FIRST_DELAY: TimeDelta = TimeDelta::seconds(5);

/// The delay after the `failures`-th failure when `free` are allowed.
pub fn throttle_delay(failures: u32, free: u32, window: TimeDelta) -> TimeDelta {
    if failures < free {
        return TimeDelta::zero();
    }
    let doublings = (failures - free).min(20);
    (FIRST_DELAY * (1i32 << doublings)).min(window)
}

#[derive(sqlx::FromRow)]
pub struct RevocationRow {
    kind: String,
    subject: Uuid,
    epoch: i64,
    expires_at: DateTime<Utc>,
}

#[async_trait]
impl<B> GuardStore for SqlAuthStore<B>
where
    B: Backend,
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> Uuid: Param<'q, B>,
    for<'q> Option<Uuid>: Param<'q, B>,
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
    for<'q> i32: Param<'q, B>,
    RevocationRow: Fetched<B>,
    (bool, i64): Fetched<B>,
    (i32,): Fetched<B>,
    (DateTime<Utc>,): Fetched<B>,
{
    async fn revocations_since(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<RevocationFeed, StoreError> {
        let at = now();
        let rows = sqlx::query_as::<_, RevocationRow>(
            "SELECT kind, subject, epoch, expires_at FROM revocations \
             WHERE expires_at > $1 AND created_at >= $2 ORDER BY seq",
        )
        .bind(at)
        .bind(since.unwrap_or(DateTime::UNIX_EPOCH))
        .fetch_all(self.pool())
        .await?;
        let revocations = rows
            .into_iter()
            .map(|row| Revocation {
                kind: if row.kind == "user" {
                    RevocationKind::User
                } else {
                    RevocationKind::Session
                },
                id: row.subject,
                epoch: row.epoch,
                expires_at: row.expires_at,
            })
            .collect();
        Ok(RevocationFeed {
            now: at,
            revocations,
            kids: Vec::new(),
        })
    }

    async fn is_revoked(&self, token: &TokenSession) -> Result<bool, StoreError> {
        let user: Option<(bool, i64)> =
            sqlx::query_as("SELECT disabled, token_epoch FROM users WHERE id = $1")
                .bind(token.user_id)
                .fetch_optional(self.pool())
                .await?;
        match user {
            Some((false, epoch)) if token.epoch >= epoch => {}
            _ => return Ok(true),
        }
        let Some(sid) = token.session_id else {
            return Ok(false);
        };
        let revoked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM revocations WHERE kind = 'session' AND subject = $1 \
             AND expires_at > $2",
        )
        .bind(sid)
        .bind(now())
        .fetch_one(self.pool())
        .await?;
        Ok(revoked > 0)
    }

    async fn throttle_blocked_until(
        &self,
        keys: &[ThrottleKey],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at = now();
        let mut latest: Option<DateTime<Utc>> = None;
        for key in keys {
            let until: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT blocked_until FROM login_throttle \
                 WHERE key_hash = $1 AND blocked_until > $2",
            )
            .bind(&key.0[..])
            .bind(at)
            .fetch_optional(self.pool())
            .await?;
            latest = latest.max(until);
        }
        Ok(latest)
    }

    async fn throttle_failure(
        &self,
        key: &ThrottleKey,
        free: u32,
        window: TimeDelta,
    ) -> Result<(), StoreError> {
        let at = now();
        let mut tx = B::begin_write(self.pool()).await?;
        // Forget keys whose last failure left the window: the table stays as small as
        // the failures of one window.
        sqlx::query("DELETE FROM login_throttle WHERE last_failure_at < $1")
            .bind(at - window)
            .execute(&mut *tx)
            .await?;
        let previous: Option<i32> = sqlx::query_scalar(&format!(
            "SELECT failures FROM login_throttle WHERE key_hash = $1{}",
            B::LOCK_ROWS
        ))
        .bind(&key.0[..])
        .fetch_optional(&mut *tx)
        .await?;
        let failures = u32::try_from(previous.unwrap_or(0))
            .unwrap_or(0)
            .saturating_add(1);
        let blocked_until = at + throttle_delay(failures, free, window);
        sqlx::query(
            "INSERT INTO login_throttle (key_hash, failures, last_failure_at, blocked_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (key_hash) DO UPDATE SET \
             failures = excluded.failures, last_failure_at = excluded.last_failure_at, \
             blocked_until = excluded.blocked_until",
        )
        .bind(&key.0[..])
        .bind(i32::try_from(failures).unwrap_or(i32::MAX))
        .bind(at)
        .bind(blocked_until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn throttle_clear(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE key_hash = $1")
            .bind(&key.0[..])
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn seal_signing_key(
        &self,
        generation: i64,
        plain: &[u8],
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let updated =
            sqlx::query("UPDATE signing_keys SET pkcs8 = $3 WHERE generation = $1 AND pkcs8 = $2")
                .bind(generation)
                .bind(plain)
                .bind(sealed)
                .execute(self.pool())
                .await?;
        Ok(B::rows_affected(&updated) == 1)
    }

    async fn add_signing_key(
        &self,
        key: &StoredKey,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        use secrecy::ExposeSecret;
        let at = now();
        let mut tx = B::begin_write(self.pool()).await?;
        let inserted = sqlx::query(super::INSERT_SIGNING_KEY)
            .bind(key.generation)
            .bind(&key.kid)
            .bind(key.pkcs8.expose_secret())
            .bind(&key.public_key)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        if B::rows_affected(&inserted) != 1 {
            return Ok(false);
        }
        Self::audit(&mut tx, audit, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_signing_key(&self, generation: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM signing_keys WHERE generation = $1")
            .bind(generation)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_after_the_free_failures_and_stop_at_the_window() {
        let window = TimeDelta::seconds(900);
        assert_eq!(throttle_delay(4, 5, window), TimeDelta::zero());
        assert_eq!(throttle_delay(5, 5, window), TimeDelta::seconds(5));
        assert_eq!(throttle_delay(6, 5, window), TimeDelta::seconds(10));
        assert_eq!(throttle_delay(8, 5, window), TimeDelta::seconds(40));
        assert_eq!(throttle_delay(50, 5, window), window);
        assert_eq!(throttle_delay(u32::MAX, 5, window), window);
    }
}
