//! The steps the auth store's transactions share: inserting a user, the audit row, revoking
//! refresh-token families and a user's tokens, publishing revocations, storing a refresh token.

use chrono::{DateTime, Utc};
use sqlx::{Executor, IntoArguments};
use uuid::Uuid;

use super::super::guard::RevocationRow;
use super::super::rows::{AuditRow, ClaimedToken, KeyRow, UserRow};
use super::super::{AuditEvent, NewUser, REVOCATION_LIFETIME, UserRecord, kind_str};
use super::SqlAuthStore;
use crate::auth::tokens::RefreshTokenHash;
use crate::authn::revocation::RevocationKind;
use crate::error::StoreError;
use crate::store::{Backend, Fetched, Param};

impl<B> SqlAuthStore<B>
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
    pub(super) async fn insert_user(
        conn: &mut B::Connection,
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
        .await?
        .try_into()
    }

    pub(in crate::auth::store) async fn audit(
        conn: &mut B::Connection,
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
        .await?;
        Ok(())
    }

    pub(super) async fn revoke_family(
        conn: &mut B::Connection,
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
        .await?;
        Ok(())
    }

    pub(super) async fn revoke_user_tokens(
        conn: &mut B::Connection,
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
        .await?;
        Ok(())
    }

    /// Bumps the user's token epoch and publishes the revocation of lower epochs.
    pub(super) async fn bump_epoch(
        conn: &mut B::Connection,
        user_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let epoch: i64 = sqlx::query_scalar(
            "UPDATE users SET token_epoch = token_epoch + 1 WHERE id = $1 RETURNING token_epoch",
        )
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
        Self::add_revocation(conn, RevocationKind::User, user_id, epoch, at).await
    }

    /// Publishes a revocation (and drops the ones no token can be affected by any more).
    pub(super) async fn add_revocation(
        conn: &mut B::Connection,
        kind: RevocationKind,
        subject: Uuid,
        epoch: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM revocations WHERE expires_at < $1")
            .bind(at)
            .execute(&mut *conn)
            .await?;
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
        .await?;
        Ok(())
    }

    pub(super) async fn insert_token(
        conn: &mut B::Connection,
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
        .await?;
        Ok(())
    }
}
