//! The billing store: the ledger's persistence, one trait with a PostgreSQL and a SQLite
//! implementation (the SQL is written once in `sql/` and expanded for both).
//!
//! Every write is one transaction that locks what it changes (PostgreSQL: the account row, then
//! the invoice/payment rows, `FOR UPDATE`, always in that order; SQLite: `BEGIN IMMEDIATE`),
//! checks the [`ledger`](super::ledger) rules against the locked state, books the change, appends
//! the ledger entry, updates the running balance, stores the Idempotency-Key result and writes the
//! audit row and the outbox event (`billing` topic) — so all of them commit together or not at
//! all. It also applies `patient` topic events, deduplicated on the event id.

mod postgres;
mod rows;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pms_proto::rest::{
    AccountStatus, BillingAccount, BillingAuditEntry, Invoice, Payment, Refund, Role, Statement,
};
use uuid::Uuid;

use super::events::PatientChange;
use super::ledger::Refusal;
use super::model::{NewAccount, NewInvoice, NewPayment, NewRefund, PatientRef};
use crate::error::StoreError;
use crate::events::relay::RelayWaker;
use crate::store::Db;

pub use postgres::PgBillingStore;
pub use sqlite::SqliteBillingStore;

/// Who did something, from where: the non-PHI half of every audit row.
#[derive(Debug, Clone, Default)]
pub struct AuditMeta {
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// An `Idempotency-Key` claim: the caller's key and the hash of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub actor_id: Uuid,
    pub key: String,
    pub request_hash: String,
}

/// Context of a money-moving write.
#[derive(Debug, Clone, Default)]
pub struct WriteContext {
    pub meta: AuditMeta,
    pub idempotency: Option<IdempotencyClaim>,
}

/// Result of a write that honours `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<T> {
    pub value: T,
    /// The key had been used for the same request: `value` is the stored result and nothing new
    /// was written.
    pub replayed: bool,
}

/// An audit record written on its own (reads, refusals, denials); writes audit themselves.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub action: &'static str,
    pub resource: &'static str,
    pub resource_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub amount: Option<i64>,
    pub outcome: Outcome,
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Denied,
    NotFound,
    Rejected,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Denied => "DENIED",
            Outcome::NotFound => "NOT_FOUND",
            Outcome::Rejected => "REJECTED",
            Outcome::Failed => "FAILED",
        }
    }
}

/// Failures of a ledger operation.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The named resource does not exist (404 / NOT_FOUND).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The ledger rules refused the operation (409 or 422).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The Idempotency-Key was already used with a different request (422).
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BillingError {
    fn from(e: sqlx::Error) -> Self {
        BillingError::Store(StoreError::from_sqlx(e))
    }
}

impl BillingError {
    /// The audit outcome of this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            BillingError::NotFound(_) => Outcome::NotFound,
            BillingError::Refused(_) | BillingError::IdempotencyMismatch => Outcome::Rejected,
            BillingError::Store(_) => Outcome::Failed,
        }
    }
}

/// Persistence of accounts, invoices, payments, refunds, the ledger and the audit log.
#[async_trait::async_trait]
pub trait BillingStore: Send + Sync {
    /// The patient's account, created ACTIVE if missing (audited when created). Returns whether
    /// it was created. Safe under concurrent calls for the same patient.
    async fn ensure_account(
        &self,
        new: &NewAccount,
        meta: &AuditMeta,
    ) -> Result<(BillingAccount, bool), BillingError>;

    async fn account(&self, id: Uuid) -> Result<BillingAccount, BillingError>;

    /// Accounts, newest first, at most `limit`.
    async fn accounts(&self, limit: i64) -> Result<Vec<BillingAccount>, BillingError>;

    async fn account_by_patient(
        &self,
        patient: &PatientRef,
    ) -> Result<BillingAccount, BillingError>;

    /// Changes an account's status (closing needs a zero balance).
    async fn set_account_status(
        &self,
        id: Uuid,
        status: AccountStatus,
        meta: &AuditMeta,
    ) -> Result<BillingAccount, BillingError>;

    /// A new DRAFT invoice with the next invoice number.
    async fn create_invoice(
        &self,
        account_id: Uuid,
        new: &NewInvoice,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError>;

    async fn invoice(&self, id: Uuid) -> Result<Invoice, BillingError>;

    /// The account's invoices, newest first, at most `limit`.
    async fn invoices(&self, account_id: Uuid, limit: i64) -> Result<Vec<Invoice>, BillingError>;

    /// `DRAFT → ISSUED`: the total is booked on the account.
    async fn issue_invoice(
        &self,
        id: Uuid,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError>;

    /// `DRAFT | ISSUED (nothing paid) → VOID`: an issued total is reversed on the account.
    async fn void_invoice(
        &self,
        id: Uuid,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError>;

    /// Records a payment; refuses overpayment. Concurrent payments on one invoice serialise.
    async fn record_payment(
        &self,
        invoice_id: Uuid,
        new: &NewPayment,
        ctx: &WriteContext,
    ) -> Result<Written<Payment>, BillingError>;

    async fn payment(&self, id: Uuid) -> Result<Payment, BillingError>;

    /// Payments of an invoice, oldest first.
    async fn payments(&self, invoice_id: Uuid) -> Result<Vec<Payment>, BillingError>;

    /// Refunds (part of) a payment; refuses more than is left.
    async fn refund_payment(
        &self,
        payment_id: Uuid,
        new: &NewRefund,
        ctx: &WriteContext,
    ) -> Result<Written<Refund>, BillingError>;

    /// Applies one `patient` topic event (once: a redelivered `event_id` does nothing and returns
    /// `false`). Created/updated: the account exists (created ACTIVE if missing) with the event's
    /// contact details; deleted: the account is closed, or suspended while it still owes.
    async fn apply_patient_event(
        &self,
        event_id: Uuid,
        patient: &NewAccount,
        change: PatientChange,
        actor: Option<Uuid>,
    ) -> Result<bool, BillingError>;

    /// Every ledger entry of the account with its running balance, and the totals.
    async fn statement(&self, account_id: Uuid) -> Result<Statement, BillingError>;

    /// Writes one audit row on its own.
    async fn record_audit(&self, record: &AuditRecord, meta: &AuditMeta) -> Result<(), StoreError>;

    /// Audit rows, newest first, optionally of one account.
    async fn audit_entries(
        &self,
        account_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<BillingAuditEntry>, StoreError>;
}

/// The store over a connected billing database; `relay` is woken after every commit that
/// enqueued events.
pub fn for_db(db: &Db, relay: RelayWaker) -> Arc<dyn BillingStore> {
    match db {
        Db::Postgres(pool) => Arc::new(PgBillingStore::new(pool.clone(), relay)),
        Db::Sqlite(pool) => Arc::new(SqliteBillingStore::new(pool.clone(), relay)),
    }
}

/// The billing migrations, per backend.
pub fn migrations() -> crate::store::Migrations {
    static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres/billing");
    static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite/billing");
    crate::store::Migrations {
        postgres: &POSTGRES,
        sqlite: &SQLITE,
    }
}

/// The time the ledger stamps on rows, truncated to microseconds so that what PostgreSQL stores
/// (and a replayed response shows) equals what was returned the first time.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
