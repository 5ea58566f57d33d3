//! Analytics service bodies: summary, registrations, stored events.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `GET /api/analytics/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsSummary {
    pub patients: PatientStats,
    pub accounts: AccountStats,
    /// Money per currency, in minor units.
    pub billing: Vec<CurrencyTotals>,
    /// Events stored so far (all topics).
    pub events_total: i64,
    pub generated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PatientStats {
    /// Patients ever registered.
    pub total: i64,
    /// Registered and not deleted.
    pub active: i64,
    /// Registered since midnight UTC.
    pub new_today: i64,
    /// Registered in the last 7 days.
    #[serde(rename = "new7d")]
    pub new_7d: i64,
    /// Registered in the last 30 days.
    #[serde(rename = "new30d")]
    pub new_30d: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AccountStats {
    pub total: i64,
    pub active: i64,
    pub closed: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CurrencyTotals {
    /// ISO 4217.
    pub currency: String,
    /// Issued invoices (voided ones excluded).
    pub invoiced: i64,
    /// Payments received.
    pub collected: i64,
    /// Refunds paid out.
    pub refunded: i64,
    /// invoiced − collected + refunded.
    pub outstanding: i64,
}

/// One bucket of `GET /api/analytics/registrations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RegistrationBucket {
    /// First day of the bucket.
    pub start: NaiveDate,
    pub count: i64,
}

/// Every event type analytics stores and streams (`patient` topic, then `billing`): what
/// `GET /api/analytics/events?type=` and the stream's `type` filter can match.
pub const EVENT_TYPES: [&str; 11] = [
    "PATIENT_CREATED",
    "PATIENT_UPDATED",
    "PATIENT_DELETED",
    "PATIENT_RESTORED",
    "ACCOUNT_CREATED",
    "ACCOUNT_UPDATED",
    "ACCOUNT_CLOSED",
    "INVOICE_ISSUED",
    "INVOICE_VOIDED",
    "PAYMENT_RECEIVED",
    "PAYMENT_REFUNDED",
];

/// An event as analytics stored it (`GET /api/analytics/events`, and the `data:` of each
/// Server-Sent Event on `/api/analytics/events/stream`, whose `id:` is `seq`). Never holds
/// patient names, emails or addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    /// Position in analytics' store: strictly increasing; the SSE id and the `after` cursor.
    pub seq: i64,
    pub event_id: Uuid,
    /// `patient` or `billing`.
    pub topic: String,
    /// e.g. `PATIENT_CREATED`, `PAYMENT_RECEIVED`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Partition key: patient id or account id.
    pub key: String,
    pub occurred_at: DateTime<Utc>,
    /// Identifiers and amounts of the event (no personal data).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}
