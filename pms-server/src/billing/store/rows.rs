//! Database rows of the billing tables (identical on both backends) and their conversion into
//! the API's shapes. A value the schema's CHECK constraints cannot hold (an unknown status) is a
//! decode error, not a panic.

use chrono::{DateTime, NaiveDate, Utc};
use pms_proto::rest::{
    AccountStatus, BillingAccount, BillingAuditEntry, Invoice, InvoiceLine, InvoiceStatus,
    LedgerEntryKind, Payment, PaymentMethod, StatementEntry,
};
use uuid::Uuid;

use crate::billing::ledger;
use crate::billing::model::invoice_number;
use crate::error::StoreError;

/// Columns of [`AccountRow`], for `SELECT`s.
macro_rules! account_columns {
    () => {
        "id, patient_id, status, currency, balance, created_at, updated_at"
    };
}
/// Columns of [`InvoiceRow`].
macro_rules! invoice_columns {
    () => {
        "id, number, account_id, status, currency, total, paid, due_date, created_at, issued_at, \
         voided_at"
    };
}
/// Columns of [`PaymentRow`].
macro_rules! payment_columns {
    () => {
        "id, invoice_id, account_id, amount, currency, method, reference, refunded, received_at"
    };
}
pub(super) use {account_columns, invoice_columns, payment_columns};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Other(sqlx::Error::Decode(
        format!("unexpected {what} `{value}` in the billing database").into(),
    ))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub patient_id: String,
    pub status: String,
    pub currency: Option<String>,
    pub balance: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AccountRow {
    pub fn status(&self) -> Result<AccountStatus, StoreError> {
        AccountStatus::parse(&self.status).ok_or_else(|| corrupt("account status", &self.status))
    }

    pub fn into_api(self) -> Result<BillingAccount, StoreError> {
        Ok(BillingAccount {
            status: self.status()?,
            id: self.id,
            patient_id: self.patient_id,
            currency: self.currency,
            balance: self.balance,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub id: Uuid,
    pub number: i64,
    pub account_id: Uuid,
    pub status: String,
    pub currency: String,
    pub total: i64,
    pub paid: i64,
    pub due_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
}

impl InvoiceRow {
    pub fn status(&self) -> Result<InvoiceStatus, StoreError> {
        InvoiceStatus::parse(&self.status).ok_or_else(|| corrupt("invoice status", &self.status))
    }

    pub fn into_api(self, lines: Vec<InvoiceLine>) -> Result<Invoice, StoreError> {
        let status = self.status()?;
        Ok(Invoice {
            id: self.id,
            number: invoice_number(self.number),
            account_id: self.account_id,
            status,
            currency: self.currency,
            lines,
            total: self.total,
            paid: self.paid,
            balance: ledger::invoice_balance(status, self.total, self.paid),
            due_date: self.due_date,
            created_at: self.created_at,
            issued_at: self.issued_at,
            voided_at: self.voided_at,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LineRow {
    pub invoice_id: Uuid,
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub amount: i64,
}

impl LineRow {
    pub fn into_api(self) -> InvoiceLine {
        InvoiceLine {
            description: self.description,
            quantity: self.quantity,
            unit_price: self.unit_price,
            amount: self.amount,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub account_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub method: String,
    pub reference: Option<String>,
    pub refunded: i64,
    pub received_at: DateTime<Utc>,
}

impl PaymentRow {
    pub fn into_api(self) -> Result<Payment, StoreError> {
        Ok(Payment {
            method: PaymentMethod::parse(&self.method)
                .ok_or_else(|| corrupt("payment method", &self.method))?,
            id: self.id,
            invoice_id: self.invoice_id,
            account_id: self.account_id,
            amount: self.amount,
            currency: self.currency,
            reference: self.reference,
            refunded: self.refunded,
            received_at: self.received_at,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EntryRow {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub kind: String,
    pub invoice_id: Uuid,
    pub number: i64,
    pub payment_id: Option<Uuid>,
    pub refund_id: Option<Uuid>,
    pub amount: i64,
    pub balance_after: i64,
}

impl EntryRow {
    pub fn into_api(self) -> Result<StatementEntry, StoreError> {
        Ok(StatementEntry {
            kind: LedgerEntryKind::parse(&self.kind)
                .ok_or_else(|| corrupt("ledger entry kind", &self.kind))?,
            seq: self.seq,
            occurred_at: self.occurred_at,
            invoice_id: self.invoice_id,
            invoice_number: invoice_number(self.number),
            payment_id: self.payment_id,
            refund_id: self.refund_id,
            amount: self.amount,
            balance: self.balance_after,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub action: String,
    pub resource: String,
    pub resource_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub patient_id: Option<String>,
    pub amount: Option<i64>,
    pub outcome: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

impl AuditRow {
    pub fn into_api(self) -> BillingAuditEntry {
        BillingAuditEntry {
            id: self.id,
            occurred_at: self.occurred_at,
            actor_id: self.actor_id,
            actor_role: self.actor_role,
            action: self.action,
            resource: self.resource,
            resource_id: self.resource_id,
            account_id: self.account_id,
            patient_id: self.patient_id,
            amount: self.amount,
            outcome: self.outcome,
            client_ip: self.client_ip,
            request_id: self.request_id,
        }
    }
}

/// Groups line rows (ordered by invoice, then position) under their invoices.
pub(super) fn group_lines(rows: Vec<LineRow>) -> std::collections::HashMap<Uuid, Vec<InvoiceLine>> {
    let mut by_invoice: std::collections::HashMap<Uuid, Vec<InvoiceLine>> =
        std::collections::HashMap::new();
    for row in rows {
        by_invoice
            .entry(row.invoice_id)
            .or_default()
            .push(row.into_api());
    }
    by_invoice
}
