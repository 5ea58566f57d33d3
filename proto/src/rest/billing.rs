//! Billing service bodies: accounts, invoices, payments, refunds, statements and the billing audit
//! log. Money is always an integer number of minor units (cents) plus an ISO-4217 currency code.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Lifecycle of a billing account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountStatus {
    /// Can be invoiced and can pay.
    Active,
    /// No new invoices; payments and refunds still accepted.
    Suspended,
    /// No new invoices and no payments; refunds still accepted. Requires a zero balance.
    Closed,
}

impl AccountStatus {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Suspended => "SUSPENDED",
            AccountStatus::Closed => "CLOSED",
        }
    }

    /// Parses the wire name (exact).
    pub fn parse(s: &str) -> Option<AccountStatus> {
        match s {
            "ACTIVE" => Some(AccountStatus::Active),
            "SUSPENDED" => Some(AccountStatus::Suspended),
            "CLOSED" => Some(AccountStatus::Closed),
            _ => None,
        }
    }
}

/// Lifecycle of an invoice: `DRAFT → ISSUED → PARTIALLY_PAID → PAID`, and `VOID` from `DRAFT`
/// or from an issued invoice with nothing (net) paid. Refunds move a paid invoice back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvoiceStatus {
    Draft,
    Issued,
    PartiallyPaid,
    Paid,
    Void,
}

impl InvoiceStatus {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "DRAFT",
            InvoiceStatus::Issued => "ISSUED",
            InvoiceStatus::PartiallyPaid => "PARTIALLY_PAID",
            InvoiceStatus::Paid => "PAID",
            InvoiceStatus::Void => "VOID",
        }
    }

    /// Parses the wire name (exact).
    pub fn parse(s: &str) -> Option<InvoiceStatus> {
        match s {
            "DRAFT" => Some(InvoiceStatus::Draft),
            "ISSUED" => Some(InvoiceStatus::Issued),
            "PARTIALLY_PAID" => Some(InvoiceStatus::PartiallyPaid),
            "PAID" => Some(InvoiceStatus::Paid),
            "VOID" => Some(InvoiceStatus::Void),
            _ => None,
        }
    }
}

/// How a payment was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    Cash,
    Card,
    Insurance,
    Transfer,
}

impl PaymentMethod {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "CASH",
            PaymentMethod::Card => "CARD",
            PaymentMethod::Insurance => "INSURANCE",
            PaymentMethod::Transfer => "TRANSFER",
        }
    }

    /// Parses the wire name (exact).
    pub fn parse(s: &str) -> Option<PaymentMethod> {
        match s {
            "CASH" => Some(PaymentMethod::Cash),
            "CARD" => Some(PaymentMethod::Card),
            "INSURANCE" => Some(PaymentMethod::Insurance),
            "TRANSFER" => Some(PaymentMethod::Transfer),
            _ => None,
        }
    }
}

/// A patient's billing account (`GET /api/billing/accounts/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BillingAccount {
    pub id: Uuid,
    /// The patient this account bills (one account per patient).
    pub patient_id: String,
    pub status: AccountStatus,
    /// ISO-4217 code, fixed by the account's first invoice; `null` before it.
    pub currency: Option<String>,
    /// What the patient owes, in minor units: issued − paid + refunded.
    pub balance: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/billing/accounts` (ADMIN, BILLING): the account of a patient, created if missing.
/// Accounts are normally created by the patient service over gRPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// A patient UUID or another reference of at most 100 printable characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^\s*[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?\s*$"
        )
    )]
    pub patient_id: String,
}

/// `PATCH /api/billing/accounts/{id}` (ADMIN, BILLING).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateAccountRequest {
    pub status: AccountStatus,
}

/// One line of `POST /api/billing/accounts/{id}/invoices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvoiceLineRequest {
    /// 1–200 characters, not blank.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub description: String,
    /// 1 to 10^12.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1_000_000_000_000_i64)
    )]
    #[serde(deserialize_with = "super::integral::i64")]
    pub quantity: i64,
    /// Minor units, 0 to 10^12; `quantity × unitPrice` at most 10^12.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_i64)
    )]
    #[serde(deserialize_with = "super::integral::i64")]
    pub unit_price: i64,
}

/// `POST /api/billing/accounts/{id}/invoices` (ADMIN, BILLING): a new DRAFT invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInvoiceRequest {
    /// ISO-4217 code (`USD`; case-insensitive); must match the account's currency once it has one.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z]{3}$"))]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    /// 1–100 lines; the total must be positive and at most 10^12 minor units.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub lines: Vec<InvoiceLineRequest>,
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
    /// `quantity × unitPrice`.
    pub amount: i64,
}

/// An invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    pub id: Uuid,
    /// Sequential human number (`INV-000042`), never reused (void invoices keep theirs).
    pub number: String,
    pub account_id: Uuid,
    pub status: InvoiceStatus,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    /// Sum of the line amounts.
    pub total: i64,
    /// Net amount paid: payments − refunds.
    pub paid: i64,
    /// Still due: `total − paid` once issued; 0 for DRAFT and VOID invoices.
    pub balance: i64,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub issued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub voided_at: Option<DateTime<Utc>>,
}

/// `POST /api/billing/invoices/{id}/payments` (ADMIN, BILLING).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePaymentRequest {
    /// Minor units, positive, at most the invoice's balance (and 10^12).
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1_000_000_000_000_i64)
    )]
    #[serde(deserialize_with = "super::integral::i64")]
    pub amount: i64,
    pub method: PaymentMethod,
    /// Card slip, transfer id, insurance claim number… (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub reference: Option<String>,
}

/// A payment received against an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub account_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub method: PaymentMethod,
    #[serde(default)]
    pub reference: Option<String>,
    /// How much of it has been refunded so far.
    pub refunded: i64,
    pub received_at: DateTime<Utc>,
}

/// `POST /api/billing/payments/{id}/refund` (ADMIN, BILLING).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundRequest {
    /// Minor units (1 to 10^12), at most what is not yet refunded; absent refunds all of that.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::integral::option_i64"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 1_000_000_000_000_i64)
    )]
    pub amount: Option<i64>,
    /// At most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub reason: Option<String>,
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub invoice_id: Uuid,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LedgerEntryKind {
    /// An invoice was issued: the balance grows by its total.
    InvoiceIssued,
    /// A payment was received: the balance shrinks.
    Payment,
    /// (Part of) a payment was refunded: the balance grows.
    Refund,
    /// An issued invoice was voided: the balance shrinks by its total.
    InvoiceVoided,
}

impl LedgerEntryKind {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerEntryKind::InvoiceIssued => "INVOICE_ISSUED",
            LedgerEntryKind::Payment => "PAYMENT",
            LedgerEntryKind::Refund => "REFUND",
            LedgerEntryKind::InvoiceVoided => "INVOICE_VOIDED",
        }
    }

    /// Parses the wire name (exact).
    pub fn parse(s: &str) -> Option<LedgerEntryKind> {
        match s {
            "INVOICE_ISSUED" => Some(LedgerEntryKind::InvoiceIssued),
            "PAYMENT" => Some(LedgerEntryKind::Payment),
            "REFUND" => Some(LedgerEntryKind::Refund),
            "INVOICE_VOIDED" => Some(LedgerEntryKind::InvoiceVoided),
            _ => None,
        }
    }
}

/// One line of an account statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StatementEntry {
    /// 1, 2, 3… per account, in the order the entries were booked.
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub kind: LedgerEntryKind,
    pub invoice_id: Uuid,
    pub invoice_number: String,
    #[serde(default)]
    pub payment_id: Option<Uuid>,
    #[serde(default)]
    pub refund_id: Option<Uuid>,
    /// Signed minor units: positive raises what the patient owes, negative lowers it.
    pub amount: i64,
    /// Running balance after this entry.
    pub balance: i64,
}

/// `GET /api/billing/accounts/{id}/statement`: every ledger entry with its running balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    pub account_id: Uuid,
    pub currency: Option<String>,
    /// Sum of issued invoice totals (void ones excluded).
    pub invoiced: i64,
    /// Sum of payments received.
    pub paid: i64,
    /// Sum of refunds.
    pub refunded: i64,
    /// `invoiced − paid + refunded`; equals the last entry's running balance.
    pub balance: i64,
    pub entries: Vec<StatementEntry>,
}

/// One billing audit record (`GET /api/billing/audit`, ADMIN). Never contains names or emails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BillingAuditEntry {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    /// e.g. `billing.payment.create`, `billing.invoice.issue`, `billing.account.read`.
    pub action: String,
    /// `account`, `invoice`, `payment` or `refund`.
    pub resource: String,
    pub resource_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    /// The patient the account belongs to.
    pub patient_id: Option<String>,
    /// Money moved by the action, in minor units, if any.
    pub amount: Option<i64>,
    /// SUCCESS, DENIED, NOT_FOUND, REJECTED or FAILED.
    pub outcome: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}
