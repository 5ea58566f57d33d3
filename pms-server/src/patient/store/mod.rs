//! The patient service's storage boundary: the [`PatientStore`] trait, the types it speaks, and
//! its two implementations (PostgreSQL and SQLite, one SQL body in [`sql`]).
//!
//! Every write (create, update, delete) inserts the new history version and its audit row in the
//! same transaction as the change, so a change is never committed without its trail. Reads and
//! refused attempts are audited with [`PatientStore::record_audit`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use pms_proto::rest::{AuditEntry, Patient, PatientVersion, Role};
use sqlx::migrate::Migrator;
use uuid::Uuid;

use crate::error::StoreError;
use crate::events::relay::RelayWaker;
use crate::store::{Db, Migrations};

use super::model::{NewPatient, PatientChanges};

mod rows;
mod sql;

#[cfg(test)]
mod tests;

pub use sql::{PgPatientStore, SqlitePatientStore};

static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres/patient");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite/patient");

/// The patient service's migrations, per backend.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: &POSTGRES,
    sqlite: &SQLITE,
};

/// The store over a connected database.
pub fn for_db(db: Db, relay: RelayWaker) -> Arc<dyn PatientStore> {
    match db {
        Db::Postgres(pool) => Arc::new(PgPatientStore::new(pool, relay)),
        Db::Sqlite(pool) => Arc::new(SqlitePatientStore::new(pool, relay)),
    }
}

/// Patients, their history, and the patient audit log.
#[async_trait]
pub trait PatientStore: Send + Sync {
    /// Creates a patient with a fresh id and the next MRN; `audit` (whose `patient_id` is set to
    /// the new id) and the CREATED version commit with it. A live patient with the same email
    /// (case-insensitive) → [`StoreError::Conflict`] on a constraint containing [`EMAIL_UNIQUE`].
    async fn create(&self, patient: &NewPatient, audit: AuditRecord)
    -> Result<Patient, StoreError>;

    /// A live (not deleted) patient.
    async fn get(&self, id: Uuid) -> Result<Option<Patient>, StoreError>;

    /// One page of live patients.
    async fn list(&self, query: &ListQuery) -> Result<Page<Patient, PatientKey>, StoreError>;

    /// Applies `changes` if the patient is live and its version is `expected` (any version when
    /// `None`): compare-and-set, so concurrent updates never silently overwrite each other.
    async fn update(
        &self,
        id: Uuid,
        expected: Option<i64>,
        changes: &PatientChanges,
        audit: AuditRecord,
    ) -> Result<WriteOutcome, StoreError>;

    /// Soft-deletes a live patient (kept for history and audit), same precondition as `update`.
    async fn delete(
        &self,
        id: Uuid,
        expected: Option<i64>,
        audit: AuditRecord,
    ) -> Result<WriteOutcome, StoreError>;

    /// Every version of a patient, deleted or not, oldest first (empty: no such patient).
    async fn history(&self, id: Uuid) -> Result<Vec<PatientVersion>, StoreError>;

    /// Appends one audit row on its own.
    async fn record_audit(&self, audit: AuditRecord) -> Result<(), StoreError>;

    /// One page of audit rows, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry, i64>, StoreError>;
}

/// Part of the name of the unique index on live patients' lowercased emails (PostgreSQL reports
/// the index name, SQLite the column), for [`crate::error::ResultExt::on_constraint`].
pub const EMAIL_UNIQUE: &str = "email_key";

/// What a precondition-checked write did.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// Applied; the patient as it is now (for a delete: as it was when deleted).
    Done(Patient),
    /// No live patient with this id.
    NotFound,
    /// The patient is at another version.
    Stale { current: i64 },
}

/// Order of a patient listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Oldest first (the default).
    CreatedAsc,
    CreatedDesc,
    /// By name, case-insensitive; ties in creation order.
    NameAsc,
    NameDesc,
}

impl SortOrder {
    /// The `?sort=` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::CreatedAsc => "createdAt",
            SortOrder::CreatedDesc => "-createdAt",
            SortOrder::NameAsc => "name",
            SortOrder::NameDesc => "-name",
        }
    }

    pub fn parse(s: &str) -> Option<SortOrder> {
        [
            SortOrder::CreatedAsc,
            SortOrder::CreatedDesc,
            SortOrder::NameAsc,
            SortOrder::NameDesc,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// Where a patient sits in every sort order: the keyset position a page continues after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientKey {
    /// Creation sequence (the MRN's number).
    pub seq: i64,
    /// Lowercased, whitespace-collapsed name.
    pub name_key: String,
}

/// A patient listing request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Case-insensitive prefix of the name, of any word of the name, of the email or of the MRN.
    /// Matched literally (`%` and `_` are not wildcards).
    pub search: Option<String>,
    pub sort: SortOrder,
    /// Continue after this position (exclusive).
    pub after: Option<PatientKey>,
    pub limit: u32,
}

/// An audit listing request (newest first).
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub patient_id: Option<Uuid>,
    /// Continue with rows older than this sequence number.
    pub before: Option<i64>,
    pub limit: u32,
}

/// One page of results and, if more follow, the key to continue after.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

/// An action on patient data, as audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    List,
    Read,
    Create,
    Update,
    Delete,
    History,
    AuditRead,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::List => "patient.list",
            AuditAction::Read => "patient.read",
            AuditAction::Create => "patient.create",
            AuditAction::Update => "patient.update",
            AuditAction::Delete => "patient.delete",
            AuditAction::History => "patient.history",
            AuditAction::AuditRead => "audit.read",
        }
    }

    /// The audited resource kind.
    pub fn resource(self) -> &'static str {
        match self {
            AuditAction::List => "patients",
            AuditAction::AuditRead => "audit",
            _ => "patient",
        }
    }

    /// Whether a successful action is audited inside the write transaction (by the store).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            AuditAction::Create | AuditAction::Update | AuditAction::Delete
        )
    }
}

/// How an audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    Success,
    /// The caller's role does not allow it (403).
    Denied,
    NotFound,
    /// Invalid input (400, 413, 415).
    Rejected,
    /// Duplicate email or stale version (409, 412).
    Conflict,
    /// A server-side failure (5xx).
    Failed,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "SUCCESS",
            AuditOutcome::Denied => "DENIED",
            AuditOutcome::NotFound => "NOT_FOUND",
            AuditOutcome::Rejected => "REJECTED",
            AuditOutcome::Conflict => "CONFLICT",
            AuditOutcome::Failed => "FAILED",
        }
    }
}

/// One audit row to write. Carries ids and classifications only, never field values.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    /// Also the time of the change it describes (microsecond precision, as both backends store).
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    pub action: AuditAction,
    pub patient_id: Option<Uuid>,
    pub outcome: AuditOutcome,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

impl AuditRecord {
    /// A record stamped now, for `action` by `actor` (`(user id, role)`).
    pub fn now(action: AuditAction, actor: Option<(Uuid, Role)>, outcome: AuditOutcome) -> Self {
        AuditRecord {
            id: Uuid::new_v4(),
            occurred_at: Utc::now().trunc_subsecs(6),
            actor_id: actor.map(|a| a.0),
            actor_role: actor.map(|a| a.1),
            action,
            patient_id: None,
            outcome,
            client_ip: None,
            request_id: None,
        }
    }

    pub fn patient(mut self, id: Option<Uuid>) -> Self {
        self.patient_id = id;
        self
    }

    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }
}
