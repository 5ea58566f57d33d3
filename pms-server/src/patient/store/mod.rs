//! The patient service's storage boundary: the [`PatientStore`] trait, the types it speaks, and
//! its two implementations (PostgreSQL and SQLite, one SQL body in [`sql`]).
//!
//! Every write (create, update, delete) inserts the new history version and its audit row in the
//! same transaction as the change, so a change is never committed without its trail. Reads and
//! refused attempts are audited with [`PatientStore::record_audit`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use pms_proto::rest::{AuditEntry, Patient, PatientVersion};
use sqlx::migrate::Migrator;
use uuid::Uuid;

use crate::audit::{AuditAction, AuditMeta, Outcome};
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

    /// Creates many patients, in one transaction when it can (the creates of concurrent
    /// requests, group-committed by [`crate::patient::create_writer`]): one result per create, in
    /// order, each what [`PatientStore::create`] would have answered alone.
    async fn create_many(
        &self,
        creates: &[(NewPatient, AuditRecord)],
    ) -> Vec<Result<Patient, StoreError>>;

    /// Reads a live patient and appends `audit` (its outcome SUCCESS, or NOT_FOUND when there is
    /// none) in one statement, so one commit: durable when this returns. `None` where the backend
    /// cannot (SQLite): the caller reads, then records the row (group-committed).
    async fn get_audited(
        &self,
        id: Uuid,
        audit: &AuditRecord,
    ) -> Option<Result<Option<Patient>, StoreError>>;

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

    /// Undoes a soft delete: the patient is live again (same id and MRN, next version), with a
    /// RESTORED version, a PATIENT_RESTORED event and `audit` in the same transaction. Same
    /// precondition as `update`; [`WriteOutcome::NotFound`] when no *deleted* patient has this id;
    /// a live patient that took the email meanwhile → [`StoreError::Conflict`] on
    /// [`EMAIL_UNIQUE`].
    async fn restore(
        &self,
        id: Uuid,
        expected: Option<i64>,
        audit: AuditRecord,
    ) -> Result<WriteOutcome, StoreError>;

    /// Every version of a patient, deleted or not, oldest first (empty: no such patient).
    async fn history(&self, id: Uuid) -> Result<Vec<PatientVersion>, StoreError>;

    /// Appends one audit row on its own.
    async fn record_audit(&self, audit: AuditRecord) -> Result<(), StoreError> {
        self.record_audits(std::slice::from_ref(&audit)).await
    }

    /// Appends audit rows in one transaction (a listing's one row per returned patient; the reads
    /// of many requests, group-committed by [`crate::patient::audit_writer`]).
    async fn record_audits(&self, audits: &[AuditRecord]) -> Result<(), StoreError>;

    /// One page of audit rows, newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry, i64>, StoreError>;

    /// The installation's cursor key: `offer` is stored if there is none yet (the first replica
    /// to start wins), and the stored key is returned.
    async fn cursor_key(&self, offer: &[u8]) -> Result<Vec<u8>, StoreError>;
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
    /// List soft-deleted patients instead of live ones.
    pub deleted: bool,
}

/// An audit listing request (newest first). Filters combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub patient_id: Option<Uuid>,
    /// Rows of this actor only.
    pub actor_id: Option<Uuid>,
    /// Rows of this action only (an [`AuditAction::name`]).
    pub action: Option<&'static str>,
    /// Rows at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Rows before this time.
    pub until: Option<DateTime<Utc>>,
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
pub enum PatientAction {
    /// A listing without `q`: one row per returned patient.
    List,
    /// A listing with `q`: one row per returned patient.
    Search,
    Read,
    Create,
    Update,
    Delete,
    History,
    AuditRead,
    /// A listing of deleted patients: one row per returned patient.
    ListDeleted,
    Restore,
}

impl AuditAction for PatientAction {
    fn name(self) -> &'static str {
        match self {
            PatientAction::List => "patient.list",
            PatientAction::Search => "patient.search",
            PatientAction::Read => "patient.read",
            PatientAction::Create => "patient.create",
            PatientAction::Update => "patient.update",
            PatientAction::Delete => "patient.delete",
            PatientAction::History => "patient.history",
            PatientAction::AuditRead => "audit.read",
            PatientAction::ListDeleted => "patient.list_deleted",
            PatientAction::Restore => "patient.restore",
        }
    }

    fn resource(self) -> &'static str {
        match self {
            PatientAction::AuditRead => "audit",
            _ => "patient",
        }
    }
}

impl PatientAction {
    /// Every action, in the order the API documents them.
    pub const ALL: [PatientAction; 10] = [
        PatientAction::List,
        PatientAction::Search,
        PatientAction::Read,
        PatientAction::Create,
        PatientAction::Update,
        PatientAction::Delete,
        PatientAction::History,
        PatientAction::AuditRead,
        PatientAction::ListDeleted,
        PatientAction::Restore,
    ];

    /// Whether a successful action is audited inside the write transaction (by the store).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            PatientAction::Create
                | PatientAction::Update
                | PatientAction::Delete
                | PatientAction::Restore
        )
    }
}

/// One audit row to write. Carries ids and classifications only, never field values.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    /// Also the time of the change it describes (microsecond precision, as both backends store).
    pub occurred_at: DateTime<Utc>,
    /// Who, from where.
    pub meta: AuditMeta,
    pub action: PatientAction,
    pub patient_id: Option<Uuid>,
    pub outcome: Outcome,
}

impl AuditRecord {
    /// A record stamped now, for `action` by `meta`'s actor.
    pub fn now(action: PatientAction, meta: AuditMeta, outcome: Outcome) -> Self {
        AuditRecord {
            // Time-ordered: rows append to the id index instead of landing on a random page.
            id: Uuid::now_v7(),
            occurred_at: Utc::now().trunc_subsecs(6),
            meta,
            action,
            patient_id: None,
            outcome,
        }
    }

    pub fn patient(mut self, id: Option<Uuid>) -> Self {
        self.patient_id = id;
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// One SUCCESS row per patient a read returned (same time, actor and request; fresh time-ordered ids),
    /// or this row alone, without a patient, when it returned none.
    pub fn per_patient(&self, patients: impl IntoIterator<Item = Uuid>) -> Vec<AuditRecord> {
        let rows: Vec<AuditRecord> = patients
            .into_iter()
            .map(|id| AuditRecord {
                id: Uuid::now_v7(),
                ..self.clone().patient(Some(id))
            })
            .collect();
        if rows.is_empty() {
            vec![self.clone()]
        } else {
            rows
        }
    }
}
