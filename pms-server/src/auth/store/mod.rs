//! The auth service's storage: the [`AuthStore`] trait (users, refresh-token families, signing
//! keys, audit log) with one SQL implementation per backend ([`sql`]).
//!
//! Every method that changes state writes its audit row in the same transaction, so an event is
//! recorded if and only if it happened. Refresh-token rotation and reuse detection happen inside
//! one transaction too: the decisions cannot be split from the writes without opening races.

mod guard;
mod rows;
mod sql;

/// Expands each check of a conformance module into a SQLite and a PostgreSQL test (textual
/// scope: visible in the modules declared below).
#[cfg(test)]
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let (store, _dir) = crate::auth::store::testing::sqlite_store().await;
                    super::$check(&*store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    let url = crate::store::testing::fresh_postgres_url().await;
                    let store = crate::auth::store::testing::postgres_store(&url).await;
                    super::$check(&*store).await;
                }
            )*
        }
    };
}

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod conformance_guard;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use pms_proto::rest::{AuthAuditEntry, Role, User};
use secrecy::SecretString;
use sqlx::migrate::Migrator;
use uuid::Uuid;

use crate::audit::AuditMeta;
use crate::auth::keys::StoredKey;
use crate::auth::model::Email;
use crate::auth::tokens::RefreshTokenHash;
use crate::authn::revocation::RevocationKind;
use crate::error::StoreError;
use crate::http::RequestMeta;
use crate::store::{Db, Migrations};

pub use guard::{GuardStore, ThrottleKey};
pub use sql::{PgAuthStore, SqliteAuthStore};

static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres/auth");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite/auth");

/// The auth service's migrations.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: &POSTGRES,
    sqlite: &SQLITE,
};

/// The unique index that makes emails case-insensitively unique.
pub const EMAIL_CONSTRAINT: &str = "users_email_key";
/// [`StoreError::Conflict`] name of an update that would leave no enabled admin.
pub const LAST_ADMIN: &str = "last_admin";

/// How long a revocation is kept: longer than any access token lives (at most 900 s, checked
/// by the configuration) plus the verifiers' clock leeway.
pub const REVOCATION_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(20);

fn kind_str(kind: RevocationKind) -> &'static str {
    match kind {
        RevocationKind::User => "user",
        RevocationKind::Session => "session",
    }
}

/// The store over a connected database.
pub fn for_db(db: Db) -> Arc<dyn AuthStore> {
    match db {
        Db::Postgres(pool) => Arc::new(PgAuthStore::new(pool)),
        Db::Sqlite(pool) => Arc::new(SqliteAuthStore::new(pool)),
    }
}

/// A stored user account.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    /// Argon2id PHC string. Not a secret in the strict sense, but it never leaves the service.
    pub password_hash: SecretString,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Access tokens issued with a lower epoch are revoked.
    pub token_epoch: i64,
}

impl UserRecord {
    /// The API view (no hash).
    pub fn to_api(&self) -> User {
        User {
            id: self.id,
            email: self.email.clone(),
            role: self.role,
            disabled: self.disabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A user to create.
#[derive(Debug)]
pub struct NewUser {
    pub id: Uuid,
    pub email: Email,
    pub password_hash: String,
    pub role: Role,
}

/// A change to a user; `None` leaves the field as is.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// The first refresh token of a new family (a login).
#[derive(Debug)]
pub struct NewSession {
    pub token_hash: RefreshTokenHash,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    /// The token was live: it is now used and `next` is live in its family (`session_id`).
    Rotated { user: UserRecord, session_id: Uuid },
    /// The token was already used or revoked: the whole family is now revoked.
    Reused,
    /// The token had expired (its family is now revoked).
    Expired,
    /// The account is disabled (its family is now revoked).
    Disabled,
    /// No such token.
    Unknown,
}

/// Audited actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// First-start creation of the admin.
    Bootstrap,
    Login,
    LoginFailed,
    Refresh,
    RefreshFailed,
    RefreshReuse,
    Logout,
    UserCreate,
    UserUpdate,
    UserPassword,
    KeyRotate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Bootstrap => "user.bootstrap",
            Action::Login => "auth.login",
            Action::LoginFailed => "auth.login_failed",
            Action::Refresh => "auth.refresh",
            Action::RefreshFailed => "auth.refresh_failed",
            Action::RefreshReuse => "auth.refresh_reuse",
            Action::Logout => "auth.logout",
            Action::UserCreate => "user.create",
            Action::UserUpdate => "user.update",
            Action::UserPassword => "user.password",
            Action::KeyRotate => "key.rotate",
        }
    }
}

pub use crate::audit::Outcome;

impl crate::audit::AuditAction for Action {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn resource(self) -> &'static str {
        match self {
            Action::Bootstrap | Action::UserCreate | Action::UserUpdate | Action::UserPassword => {
                "user"
            }
            _ => "session",
        }
    }
}

/// An audit row to write. Carries ids and the request's origin, never credentials.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: Action,
    pub outcome: Outcome,
    /// Who acted, from where (the request id and address bounded at the edge).
    pub meta: AuditMeta,
    pub subject_user_id: Option<Uuid>,
}

impl AuditEvent {
    /// An event with no actor and no subject yet.
    pub fn new(action: Action, outcome: Outcome, origin: &RequestMeta) -> AuditEvent {
        AuditEvent {
            action,
            outcome,
            meta: AuditMeta::new(None, origin.clone()),
            subject_user_id: None,
        }
    }

    /// Who acted.
    pub fn by(mut self, actor_id: Uuid, actor_role: Role) -> AuditEvent {
        self.meta.actor_id = Some(actor_id);
        self.meta.actor_role = Some(actor_role);
        self
    }

    /// Which account the event is about.
    pub fn about(mut self, subject_user_id: Uuid) -> AuditEvent {
        self.subject_user_id = Some(subject_user_id);
        self
    }
}

/// A new signing key, once per generation (plain or sealed, both backends).
const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys \
     (generation, kid, pkcs8, public_key, created_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (generation) DO NOTHING";

/// Storage of the auth service. Implemented for PostgreSQL and SQLite; both pass the same
/// conformance suite.
#[async_trait]
pub trait AuthStore: GuardStore + Send + Sync {
    async fn count_users(&self) -> Result<i64, StoreError>;

    /// Creates `user` only if there are no users at all (audited as `user.bootstrap`). `false`
    /// when users exist, including when a replica starting at the same moment created them.
    async fn create_first_user(&self, user: &NewUser) -> Result<bool, StoreError>;

    /// Creates a user. A duplicate email is `Conflict(`[`EMAIL_CONSTRAINT`]`)`.
    async fn create_user(
        &self,
        user: &NewUser,
        audit: &AuditEvent,
    ) -> Result<UserRecord, StoreError>;

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;

    /// Case-insensitive lookup.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Every user, by email.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Applies `change`; disabling also revokes the user's refresh tokens. `NotFound` for an
    /// unknown id; `Conflict(`[`LAST_ADMIN`]`)` (nothing written) if no enabled admin would remain.
    async fn update_user(
        &self,
        id: Uuid,
        change: UserChange,
        audit: &AuditEvent,
    ) -> Result<UserRecord, StoreError>;

    /// Replaces the password hash and revokes every refresh token of the user.
    async fn set_password(
        &self,
        id: Uuid,
        password_hash: &str,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Stores the first refresh token of a new family (a successful login).
    async fn start_session(
        &self,
        session: &NewSession,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// Presents a refresh token: if live, marks it used and stores `next` (valid until
    /// `expires_at`) in its family; if used or revoked, revokes the family (reuse detection).
    /// Audits `auth.refresh`, `auth.refresh_failed` or `auth.refresh_reuse`.
    async fn rotate_refresh_token(
        &self,
        presented: &RefreshTokenHash,
        next: &RefreshTokenHash,
        expires_at: DateTime<Utc>,
        origin: &RequestMeta,
    ) -> Result<Rotation, StoreError>;

    /// Revokes the family of a refresh token (logout, audited). `false` if the token is unknown.
    async fn end_session(
        &self,
        presented: &RefreshTokenHash,
        origin: &RequestMeta,
    ) -> Result<bool, StoreError>;

    /// Writes an audit row for an event that changes nothing else (a failed login).
    async fn record(&self, audit: &AuditEvent) -> Result<(), StoreError>;

    /// The newest `limit` audit rows, newest first.
    async fn recent_audit(&self, limit: i64) -> Result<Vec<AuthAuditEntry>, StoreError>;

    /// Every signing key, oldest generation first.
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError>;

    /// Stores `key` unless its generation exists already; `true` if stored.
    async fn insert_signing_key(&self, key: &StoredKey) -> Result<bool, StoreError>;
}

/// The store's clock: UTC, truncated to microseconds (PostgreSQL's precision), so values read
/// back equal the values written on both backends.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Stores for the store's and the service's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use super::{AuthStore, MIGRATIONS, for_db};
    use crate::store::{ServiceDb, connect};

    /// A store on a fresh SQLite file (kept while the directory lives).
    pub async fn sqlite_store() -> (Arc<dyn AuthStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = connect(ServiceDb::Auth, None, dir.path(), 4, &MIGRATIONS)
            .await
            .expect("sqlite store");
        (for_db(db), dir)
    }

    /// A store on the PostgreSQL database at `url` (migrated).
    pub async fn postgres_store(url: &str) -> Arc<dyn AuthStore> {
        let url = secrecy::SecretString::from(url.to_owned());
        let db = connect(
            ServiceDb::Auth,
            Some(&url),
            std::path::Path::new("."),
            4,
            &MIGRATIONS,
        )
        .await
        .expect("postgres store");
        for_db(db)
    }
}
