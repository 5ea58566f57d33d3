//! The billing store's SQL, written once: [`SqlBillingStore`] is generic over the [`Backend`].
//! The dialects agree on everything used here (`$n` placeholders, `ON CONFLICT … DO NOTHING`,
//! `RETURNING`) except row locking ([`Backend::LOCK_ROWS`]): PostgreSQL locks with `SELECT … FOR
//! UPDATE` inside a plain transaction; SQLite has no row locks, and `BEGIN IMMEDIATE`
//! ([`Backend::begin_write`]) takes the database's write lock up front, which serialises writers.
//!
//! Lock order, everywhere: account row, then invoice row, then payment row. Ids that never change
//! (an invoice's account) are read before taking the locks.
//!
//! Layout: [`support`] — locking, idempotency, ledger booking, audit and outbox helpers;
//! [`writes`] — the account and invoice transactions; [`payments`] — payments and refunds;
//! [`consumer`] — applying patient events; [`reads`] — queries; [`pg_accounts`] — PostgreSQL's
//! one-statement batch of accounts ([`BillingDialect`]); this file — the store and the trait impl
//! that ties them up.

mod consumer;
mod payments;
mod pg_accounts;
mod reads;
mod support;
mod writes;

use futures::future::BoxFuture;
use pms_proto::rest::LedgerEntryKind;
use uuid::Uuid;

use super::{AuditRecord, BillingAction, BillingError, Outcome};
use crate::error::StoreError;

use prelude::*;

/// What the store's modules need in scope.
mod prelude {
    pub use chrono::{DateTime, Utc};
    pub use pms_proto::billing_events::BillingEvent;
    pub use pms_proto::rest::{
        AccountStatus, BillingAccount, BillingAuditEntry, Invoice, LedgerEntryKind, Payment,
        Refund, Statement,
    };
    pub use serde::Serialize;
    pub use serde::de::DeserializeOwned;
    pub use uuid::Uuid;

    pub(in crate::billing::store) use super::super::rows::{
        AccountRow, AuditRow, EntryRow, InvoiceRow, LineRow, PaymentRow, account_columns,
        group_lines, invoice_columns, payment_columns,
    };
    pub(in crate::billing::store) use super::super::{
        AuditMeta, AuditRecord, BillingAction, BillingError, BillingStore, WriteContext, Written,
        now,
    };
    pub(in crate::billing::store) use super::{Entry, decode_json, id_text, is_key_race, success};
    pub use crate::audit::AuditAction;
    pub use crate::billing::events::{
        CONSUMER_GROUP, ConsumedPatientEvent, PatientChange, billing_event,
    };
    pub use crate::billing::ledger;
    pub use crate::billing::model::{NewAccount, NewInvoice, NewPayment, NewRefund, PatientRef};
    pub use crate::error::StoreError;
    pub use crate::events::dedup::Claim;
    pub use crate::events::outbox::Enqueue;
    pub use crate::events::relay::RelayWaker;
    pub use crate::store::{Backend, Fetched, Param, SqlBuilder};
    pub use chrono::NaiveDate;
    pub use sqlx::{Database, Executor, IntoArguments, Pool, Postgres, Sqlite};

    pub(super) use super::{SqlBillingStore, Tx};
}

/// One balance movement to append to the ledger.
pub(super) struct Entry {
    pub kind: LedgerEntryKind,
    pub invoice_id: Uuid,
    pub payment_id: Option<Uuid>,
    pub refund_id: Option<Uuid>,
    /// Signed: positive raises what the patient owes.
    pub amount: i64,
}

/// The audit record of a successful write.
pub(super) fn success(
    action: BillingAction,
    resource: &'static str,
    resource_id: Uuid,
    account_id: Uuid,
    amount: Option<i64>,
) -> AuditRecord {
    AuditRecord {
        action,
        resource,
        resource_id: Some(resource_id),
        account_id: Some(account_id),
        amount,
        outcome: Outcome::Success,
    }
}

/// An optional id as event text (empty when absent, as protobuf strings are).
pub(super) fn id_text(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// The `ACCOUNT_CREATED` event of account `id`, created for `new` by `meta`'s actor at `at`.
fn account_created(
    id: Uuid,
    new: &NewAccount,
    meta: &AuditMeta,
    at: DateTime<Utc>,
) -> crate::events::EventRecord {
    let event = BillingEvent {
        event_type: "ACCOUNT_CREATED".to_owned(),
        account_id: id.to_string(),
        patient_id: new.patient.as_str().to_owned(),
        status: AccountStatus::Active.as_str().to_owned(),
        actor_id: id_text(meta.actor_id),
        ..BillingEvent::default()
    };
    billing_event(event, at)
}

/// What a batch of `ensure_account` calls answers, one result per call (or an error for the
/// whole batch, which then wrote nothing).
type EnsuredBatch<'a> = BoxFuture<'a, Result<Vec<pg_accounts::Ensure>, BillingError>>;

/// The billing store's backend: a [`Backend`], and how it writes a batch of `ensure_account`
/// calls.
pub trait BillingDialect: Backend {
    /// The batch written the backend's faster way (PostgreSQL: [`pg_accounts`], one statement);
    /// none: the generic transaction ([`SqlBillingStore::ensure_accounts_tx`]).
    fn ensure_accounts_at_once<'a>(
        pool: &'a Pool<Self>,
        requests: &'a [(NewAccount, AuditMeta)],
    ) -> Option<EnsuredBatch<'a>>;
}

impl BillingDialect for Postgres {
    fn ensure_accounts_at_once<'a>(
        pool: &'a Pool<Self>,
        requests: &'a [(NewAccount, AuditMeta)],
    ) -> Option<EnsuredBatch<'a>> {
        Some(Box::pin(pg_accounts::ensure_accounts(pool, requests)))
    }
}

impl BillingDialect for Sqlite {
    fn ensure_accounts_at_once<'a>(
        _pool: &'a Pool<Self>,
        _requests: &'a [(NewAccount, AuditMeta)],
    ) -> Option<EnsuredBatch<'a>> {
        None
    }
}

/// A stored Idempotency-Key response that does not (de)serialise.
pub(super) fn decode_json(e: serde_json::Error) -> BillingError {
    BillingError::Store(StoreError::Other(sqlx::Error::Decode(Box::new(e))))
}

/// A unique violation on the idempotency table: a concurrent request with the same key won.
pub(super) fn is_key_race<T>(result: &Result<T, BillingError>) -> bool {
    matches!(
        result,
        Err(BillingError::Store(StoreError::Conflict(c))) if c.contains("idempotency_keys")
    )
}

/// [`BillingStore`](super::BillingStore) on backend `B`.
pub struct SqlBillingStore<B: Database> {
    pool: Pool<B>,
    relay: RelayWaker,
}

/// The billing store on PostgreSQL (schema `billing`): `SELECT … FOR UPDATE` row locks, so
/// concurrent writes to one account serialise while writes to different accounts run in parallel.
pub type PgBillingStore = SqlBillingStore<Postgres>;
/// The billing store on SQLite (file `billing.db`): no row locks — every write transaction starts
/// with `BEGIN IMMEDIATE`, which takes the database's single write lock and so serialises writers.
pub type SqliteBillingStore = SqlBillingStore<Sqlite>;

impl<B: Database> SqlBillingStore<B> {
    /// The store on `pool`; `relay` is woken after commits that enqueued events.
    pub fn new(pool: Pool<B>, relay: RelayWaker) -> Self {
        Self { pool, relay }
    }
}

impl<B: Database> Clone for SqlBillingStore<B> {
    fn clone(&self) -> Self {
        Self::new(self.pool.clone(), self.relay.clone())
    }
}

/// A write transaction.
type Tx<B> = sqlx::Transaction<'static, B>;

#[async_trait::async_trait]
impl<B> BillingStore for SqlBillingStore<B>
where
    B: BillingDialect,
    B::Connection: Enqueue + Claim,
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> Uuid: Param<'q, B>,
    for<'q> Option<Uuid>: Param<'q, B>,
    for<'q> i32: Param<'q, B>,
    for<'q> i64: Param<'q, B>,
    for<'q> Option<i64>: Param<'q, B>,
    for<'q> &'q str: Param<'q, B>,
    for<'q> Option<&'q str>: Param<'q, B>,
    for<'q> String: Param<'q, B>,
    for<'q> Option<String>: Param<'q, B>,
    for<'q> DateTime<Utc>: Param<'q, B>,
    for<'q> Option<NaiveDate>: Param<'q, B>,
    AccountRow: Fetched<B>,
    InvoiceRow: Fetched<B>,
    PaymentRow: Fetched<B>,
    LineRow: Fetched<B>,
    EntryRow: Fetched<B>,
    AuditRow: Fetched<B>,
    (i64,): Fetched<B>,
    (Uuid,): Fetched<B>,
    (String, String): Fetched<B>,
    (Uuid, Uuid): Fetched<B>,
{
    async fn ensure_account(
        &self,
        new: &NewAccount,
        meta: &AuditMeta,
    ) -> Result<(BillingAccount, bool), BillingError> {
        // Most calls come from a patient create, before billing consumed its event: the
        // account does not exist yet, so a read first would only add a round trip.
        self.ensure_account_tx(new, meta).await
    }

    async fn ensure_accounts(
        &self,
        requests: &[(NewAccount, AuditMeta)],
    ) -> Vec<Result<(BillingAccount, bool), BillingError>> {
        let batch = match B::ensure_accounts_at_once(&self.pool, requests) {
            Some(write) => {
                let batch = write.await;
                let created = |answers: &Vec<pg_accounts::Ensure>| {
                    answers.iter().any(|a| matches!(a, Ok((_, true))))
                };
                if batch.as_ref().is_ok_and(created) {
                    self.relay.wake();
                }
                batch
            }
            None => match requests {
                [(new, meta)] => return vec![self.ensure_account_tx(new, meta).await],
                _ => self
                    .ensure_accounts_tx(requests)
                    .await
                    .map(|accounts| accounts.into_iter().map(Ok).collect()),
            },
        };
        match batch {
            Ok(answers) => answers,
            Err(e) => {
                tracing::debug!(error = %e, requests = requests.len(), "account batch failed; one by one");
                let mut results = Vec::with_capacity(requests.len());
                for (new, meta) in requests {
                    results.push(self.ensure_account_tx(new, meta).await);
                }
                results
            }
        }
    }

    async fn account(&self, id: Uuid) -> Result<BillingAccount, BillingError> {
        self.account_row(id).await?.into_api().map_err(Into::into)
    }

    async fn accounts(&self, limit: i64) -> Result<Vec<BillingAccount>, BillingError> {
        self.account_rows(limit).await
    }

    async fn account_by_patient(
        &self,
        patient: &PatientRef,
    ) -> Result<BillingAccount, BillingError> {
        self.account_row_by_patient(patient)
            .await?
            .into_api()
            .map_err(Into::into)
    }

    #[tracing::instrument(name = "billing.set_status", skip_all, fields(account_id = %id))]
    async fn set_account_status(
        &self,
        id: Uuid,
        status: AccountStatus,
        meta: &AuditMeta,
    ) -> Result<BillingAccount, BillingError> {
        self.set_account_status_tx(id, status, meta).await
    }

    #[tracing::instrument(name = "billing.create_invoice", skip_all, fields(%account_id))]
    async fn create_invoice(
        &self,
        account_id: Uuid,
        new: &NewInvoice,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError> {
        let result = self.create_invoice_tx(account_id, new, ctx).await;
        self.settle(result, ctx).await
    }

    async fn invoice(&self, id: Uuid) -> Result<Invoice, BillingError> {
        Self::load_invoice(&self.pool, id).await
    }

    async fn invoice_id_by_number(&self, number: i64) -> Result<Option<Uuid>, BillingError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM invoices WHERE number = $1")
                .bind(number)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn invoices(&self, account_id: Uuid, limit: i64) -> Result<Vec<Invoice>, BillingError> {
        self.invoices_of(account_id, limit).await
    }

    #[tracing::instrument(name = "billing.issue", skip_all, fields(invoice_id = %id))]
    async fn issue_invoice(
        &self,
        id: Uuid,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError> {
        let result = self.issue_invoice_tx(id, ctx).await;
        self.settle(result, ctx).await
    }

    #[tracing::instrument(name = "billing.void", skip_all, fields(invoice_id = %id))]
    async fn void_invoice(
        &self,
        id: Uuid,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError> {
        let result = self.void_invoice_tx(id, ctx).await;
        self.settle(result, ctx).await
    }

    #[tracing::instrument(name = "billing.record_payment", skip_all, fields(%invoice_id))]
    async fn record_payment(
        &self,
        invoice_id: Uuid,
        new: &NewPayment,
        ctx: &WriteContext,
    ) -> Result<Written<Payment>, BillingError> {
        let result = self.record_payment_tx(invoice_id, new, ctx).await;
        self.settle(result, ctx).await
    }

    async fn payment(&self, id: Uuid) -> Result<Payment, BillingError> {
        self.payment_by_id(id).await
    }

    async fn payments(&self, invoice_id: Uuid) -> Result<Vec<Payment>, BillingError> {
        self.payments_of(invoice_id).await
    }

    #[tracing::instrument(name = "billing.refund_payment", skip_all, fields(%payment_id))]
    async fn refund_payment(
        &self,
        payment_id: Uuid,
        new: &NewRefund,
        ctx: &WriteContext,
    ) -> Result<Written<Refund>, BillingError> {
        let result = self.refund_payment_tx(payment_id, new, ctx).await;
        self.settle(result, ctx).await
    }

    #[tracing::instrument(name = "billing.patient_event", skip_all, fields(%event_id))]
    async fn apply_patient_event(
        &self,
        event_id: Uuid,
        patient: &NewAccount,
        change: PatientChange,
        actor: Option<Uuid>,
    ) -> Result<bool, BillingError> {
        self.apply_patient_event_tx(event_id, patient, change, actor)
            .await
    }

    #[tracing::instrument(name = "billing.patient_events", skip_all, fields(events = events.len()))]
    async fn apply_patient_events(
        &self,
        events: &[ConsumedPatientEvent],
    ) -> Result<usize, BillingError> {
        self.apply_patient_events_tx(events).await
    }

    async fn statement(&self, account_id: Uuid) -> Result<Statement, BillingError> {
        self.statement_of(account_id).await
    }

    async fn record_audits(
        &self,
        records: &[AuditRecord],
        meta: &AuditMeta,
    ) -> Result<(), StoreError> {
        // At most a page (1000 rows × 12 parameters): within both backends' limits.
        let mut conn = B::acquire_write(&self.pool).await?;
        Self::insert_audits(&mut *conn, records, meta)
            .await
            .map_err(StoreError::from)
    }

    async fn audit_entries(
        &self,
        account_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<BillingAuditEntry>, StoreError> {
        self.audit_rows(account_id, limit).await
    }
}
