//! The columns each record shows in `table` and `csv` output. Money cells are major units with
//! the currency's exponent (`75.00` next to a `USD` column); JSON keeps the API's minor units.

use chrono::{DateTime, SecondsFormat, Utc};
use pms_proto::rest::{AuditEntry, Me, Patient, PatientVersion, User};

use crate::money;

/// A record with fixed columns (headers in camelCase, as in the JSON).
pub trait Tabular {
    /// Column names (every column: `-o wide`, CSV and detail views).
    const HEADERS: &'static [&'static str];
    /// The columns of the default table: what fits an 80-column terminal and tells records apart.
    const NARROW: &'static [&'static str] = Self::HEADERS;
    /// This record's cells, one per header.
    fn row(&self) -> Vec<String>;
}

/// RFC 3339, seconds, `Z`.
pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

impl Tabular for Patient {
    const NARROW: &'static [&'static str] = &["mrn", "name", "email", "dateOfBirth", "phone"];
    const HEADERS: &'static [&'static str] = &[
        "id",
        "mrn",
        "name",
        "email",
        "dateOfBirth",
        "registeredDate",
        "phone",
        "sex",
        "address",
        "version",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.mrn.clone(),
            self.name.clone(),
            self.email.clone(),
            self.date_of_birth.to_string(),
            self.registered_date.to_string(),
            opt(&self.phone),
            self.sex.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            self.address.clone(),
            self.version.to_string(),
        ]
    }
}

impl Tabular for PatientVersion {
    const NARROW: &'static [&'static str] = &[
        "version",
        "changeType",
        "changedAt",
        "changedBy",
        "name",
        "phone",
    ];
    /// Every field of the record, so two versions that differ anywhere (the phone too) differ
    /// in the table; `pms patients history` adds the `changed` column naming what changed.
    const HEADERS: &'static [&'static str] = &[
        "version",
        "changeType",
        "changedAt",
        "changedBy",
        "name",
        "email",
        "address",
        "dateOfBirth",
        "registeredDate",
        "phone",
        "sex",
    ];
    fn row(&self) -> Vec<String> {
        let p = &self.patient;
        vec![
            self.version.to_string(),
            self.change_type.clone(),
            time(&self.changed_at),
            opt(&self.changed_by),
            p.name.clone(),
            p.email.clone(),
            p.address.clone(),
            p.date_of_birth.to_string(),
            p.registered_date.to_string(),
            opt(&p.phone),
            p.sex.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        ]
    }
}

impl Tabular for User {
    const NARROW: &'static [&'static str] = &["email", "role", "disabled", "createdAt"];
    const HEADERS: &'static [&'static str] =
        &["id", "email", "role", "disabled", "createdAt", "updatedAt"];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.email.clone(),
            self.role.to_string(),
            self.disabled.to_string(),
            time(&self.created_at),
            time(&self.updated_at),
        ]
    }
}

impl Tabular for Me {
    const HEADERS: &'static [&'static str] = &["id", "email", "role", "tokenExpiresAt"];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.email.clone(),
            self.role.to_string(),
            time(&self.token_expires_at),
        ]
    }
}

impl Tabular for AuditEntry {
    const NARROW: &'static [&'static str] = &[
        "occurredAt",
        "action",
        "outcome",
        "actorId",
        "resource",
        "patientId",
    ];
    const HEADERS: &'static [&'static str] = &[
        "occurredAt",
        "action",
        "outcome",
        "actorId",
        "actorRole",
        "resource",
        "patientId",
        "clientIp",
        "requestId",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            time(&self.occurred_at),
            self.action.clone(),
            self.outcome.clone(),
            opt(&self.actor_id),
            opt(&self.actor_role),
            self.resource.clone(),
            opt(&self.patient_id),
            opt(&self.client_ip),
            opt(&self.request_id),
        ]
    }
}

impl Tabular for pms_proto::rest::BillingAccount {
    const NARROW: &'static [&'static str] = &["id", "patientId", "status", "currency", "balance"];
    const HEADERS: &'static [&'static str] = &[
        "id",
        "patientId",
        "status",
        "currency",
        "balance",
        "createdAt",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.patient_id.clone(),
            self.status.as_str().to_owned(),
            opt(&self.currency),
            money::decimal(self.balance, self.currency.as_deref().unwrap_or_default()),
            time(&self.created_at),
        ]
    }
}

impl Tabular for pms_proto::rest::Invoice {
    const NARROW: &'static [&'static str] = &[
        "number", "status", "currency", "total", "paid", "balance", "dueDate",
    ];
    const HEADERS: &'static [&'static str] = &[
        "id", "number", "status", "currency", "total", "paid", "balance", "dueDate", "issuedAt",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.number.clone(),
            self.status.as_str().to_owned(),
            self.currency.clone(),
            money::decimal(self.total, &self.currency),
            money::decimal(self.paid, &self.currency),
            money::decimal(self.balance, &self.currency),
            opt(&self.due_date),
            self.issued_at.as_ref().map(time).unwrap_or_default(),
        ]
    }
}

impl Tabular for pms_proto::rest::Payment {
    const NARROW: &'static [&'static str] = &[
        "id",
        "amount",
        "currency",
        "method",
        "refunded",
        "receivedAt",
    ];
    const HEADERS: &'static [&'static str] = &[
        "id",
        "invoiceId",
        "amount",
        "currency",
        "method",
        "reference",
        "refunded",
        "receivedAt",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.invoice_id.to_string(),
            money::decimal(self.amount, &self.currency),
            self.currency.clone(),
            self.method.as_str().to_owned(),
            opt(&self.reference),
            money::decimal(self.refunded, &self.currency),
            time(&self.received_at),
        ]
    }
}

impl Tabular for pms_proto::rest::Refund {
    const NARROW: &'static [&'static str] = &["id", "amount", "currency", "reason", "createdAt"];
    const HEADERS: &'static [&'static str] = &[
        "id",
        "paymentId",
        "invoiceId",
        "amount",
        "currency",
        "reason",
        "createdAt",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.payment_id.to_string(),
            self.invoice_id.to_string(),
            money::decimal(self.amount, &self.currency),
            self.currency.clone(),
            opt(&self.reason),
            time(&self.created_at),
        ]
    }
}

impl Tabular for pms_proto::rest::StatementEntry {
    const HEADERS: &'static [&'static str] = &[
        "seq",
        "occurredAt",
        "kind",
        "invoiceNumber",
        "amount",
        "balance",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.seq.to_string(),
            time(&self.occurred_at),
            self.kind.as_str().to_owned(),
            self.invoice_number.clone(),
            self.amount.to_string(),
            self.balance.to_string(),
        ]
    }
}

impl Tabular for pms_proto::rest::BillingAuditEntry {
    const NARROW: &'static [&'static str] = &[
        "occurredAt",
        "action",
        "outcome",
        "actorRole",
        "resource",
        "amount",
    ];
    const HEADERS: &'static [&'static str] = &[
        "occurredAt",
        "action",
        "outcome",
        "actorId",
        "actorRole",
        "resource",
        "resourceId",
        "accountId",
        "patientId",
        "amount",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            time(&self.occurred_at),
            self.action.clone(),
            self.outcome.clone(),
            opt(&self.actor_id),
            opt(&self.actor_role),
            self.resource.clone(),
            opt(&self.resource_id),
            opt(&self.account_id),
            opt(&self.patient_id),
            opt(&self.amount),
        ]
    }
}

impl Tabular for pms_proto::rest::RegistrationBucket {
    const HEADERS: &'static [&'static str] = &["start", "count"];
    fn row(&self) -> Vec<String> {
        vec![self.start.to_string(), self.count.to_string()]
    }
}

impl Tabular for pms_proto::rest::StoredEvent {
    const NARROW: &'static [&'static str] = &["seq", "occurredAt", "type", "key"];
    const HEADERS: &'static [&'static str] = &[
        "seq",
        "occurredAt",
        "type",
        "topic",
        "key",
        "eventId",
        "data",
    ];
    fn row(&self) -> Vec<String> {
        vec![
            self.seq.to_string(),
            time(&self.occurred_at),
            self.event_type.clone(),
            self.topic.clone(),
            self.key.clone(),
            self.event_id.to_string(),
            self.data.to_string(),
        ]
    }
}
