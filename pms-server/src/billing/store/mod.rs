//! The billing store: the ledger's persistence, one trait with a PostgreSQL and a SQLite
//! implementation (the SQL is written once in `sql/`, generic over the backend).
//!
//! Every write is one transaction that locks what it changes (PostgreSQL: the account row, then
//! the invoice/payment rows, `FOR UPDATE`, always in that order; SQLite: `BEGIN IMMEDIATE`),
//! checks the [`ledger`](super::ledger) rules against the locked state, books the change, appends
//! the ledger entry, updates the running balance, stores the Idempotency-Key result and writes the
//! audit row and the outbox event (`billing` topic) — so all of them commit together or not at
//! all. It also applies `patient` topic events, deduplicated on the event id.

mod rows;
mod sql;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pms_proto::rest::{
    AccountStatus, BillingAccount, BillingAuditEntry, Invoice, Payment, Refund, Statement,
};
use uuid::Uuid;

use super::events::{ConsumedPatientEvent, PatientChange};
use super::ledger::Refusal;
use super::model::{NewAccount, NewInvoice, NewPayment, NewRefund, PatientRef};
use crate::error::StoreError;
use crate::events::relay::RelayWaker;
use crate::store::Db;

pub use sql::{PgBillingStore, SqlBillingStore, SqliteBillingStore};

pub use crate::audit::{AuditMeta, Outcome};

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

/// An action on billing data, as audited (names are part of the audit API: never renamed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingAction {
    AccountCreate,
    AccountList,
    AccountRead,
    AccountUpdate,
    StatementRead,
    InvoiceCreate,
    InvoiceList,
    InvoiceRead,
    InvoiceIssue,
    InvoiceVoid,
    PaymentCreate,
    PaymentList,
    PaymentRead,
    RefundCreate,
    AuditRead,
}

impl crate::audit::AuditAction for BillingAction {
    fn name(self) -> &'static str {
        match self {
            BillingAction::AccountCreate => "billing.account.create",
            BillingAction::AccountList => "billing.account.list",
            BillingAction::AccountRead => "billing.account.read",
            BillingAction::AccountUpdate => "billing.account.update",
            BillingAction::StatementRead => "billing.statement.read",
            BillingAction::InvoiceCreate => "billing.invoice.create",
            BillingAction::InvoiceList => "billing.invoice.list",
            BillingAction::InvoiceRead => "billing.invoice.read",
            BillingAction::InvoiceIssue => "billing.invoice.issue",
            BillingAction::InvoiceVoid => "billing.invoice.void",
            BillingAction::PaymentCreate => "billing.payment.create",
            BillingAction::PaymentList => "billing.payment.list",
            BillingAction::PaymentRead => "billing.payment.read",
            BillingAction::RefundCreate => "billing.refund.create",
            BillingAction::AuditRead => "billing.audit.read",
        }
    }

    /// What a successful action is about. A refused attempt may name the resource it was made
    /// on instead (a payment refused on its invoice): [`AuditRecord::resource`].
    fn resource(self) -> &'static str {
        match self {
            BillingAction::AccountCreate
            | BillingAction::AccountList
            | BillingAction::AccountRead
            | BillingAction::AccountUpdate
            | BillingAction::StatementRead => "account",
            BillingAction::InvoiceCreate
            | BillingAction::InvoiceList
            | BillingAction::InvoiceRead
            | BillingAction::InvoiceIssue
            | BillingAction::InvoiceVoid => "invoice",
            BillingAction::PaymentCreate
            | BillingAction::PaymentList
            | BillingAction::PaymentRead => "payment",
            BillingAction::RefundCreate => "refund",
            BillingAction::AuditRead => "audit",
        }
    }
}

/// An audit record written on its own (reads, refusals, denials); writes audit themselves.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub action: BillingAction,
    /// The kind of `resource_id`.
    pub resource: &'static str,
    pub resource_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub amount: Option<i64>,
    pub outcome: Outcome,
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
        BillingError::Store(StoreError::from(e))
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

    /// [`BillingStore::ensure_account`] for many patients, in one transaction when it can (the
    /// calls of concurrent patient creates, group-committed by
    /// [`crate::billing::account_writer`]): one result per request, in order.
    async fn ensure_accounts(
        &self,
        requests: &[(NewAccount, AuditMeta)],
    ) -> Vec<Result<(BillingAccount, bool), BillingError>>;

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

    /// The id of the invoice with this human number (`INV-000042` is 42), if any.
    async fn invoice_id_by_number(&self, number: i64) -> Result<Option<Uuid>, BillingError>;

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

    /// Applies `events` in order in one transaction (all or nothing), each once as
    /// [`BillingStore::apply_patient_event`] does; returns how many were new.
    async fn apply_patient_events(
        &self,
        events: &[ConsumedPatientEvent],
    ) -> Result<usize, BillingError>;

    /// Every ledger entry of the account with its running balance, and the totals.
    async fn statement(&self, account_id: Uuid) -> Result<Statement, BillingError>;

    /// Writes one audit row on its own.
    async fn record_audit(&self, record: &AuditRecord, meta: &AuditMeta) -> Result<(), StoreError> {
        self.record_audits(std::slice::from_ref(record), meta).await
    }

    /// Writes audit rows of one request in one statement (a listing: one row per account).
    async fn record_audits(
        &self,
        records: &[AuditRecord],
        meta: &AuditMeta,
    ) -> Result<(), StoreError>;

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
