//! Patient service bodies and the audit log.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A patient as returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    pub id: Uuid,
    /// Server-generated medical record number, unique and never reused.
    pub mrn: String,
    pub name: String,
    pub email: String,
    pub address: String,
    pub date_of_birth: NaiveDate,
    pub registered_date: NaiveDate,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub sex: Option<Sex>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version; also the `ETag`.
    pub version: i64,
    /// The billing account, when billing answered during creation (create response only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_account_id: Option<String>,
}

/// Administrative sex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "FEMALE",
            Sex::Male => "MALE",
            Sex::Other => "OTHER",
            Sex::Unknown => "UNKNOWN",
        }
    }

    /// Parses the wire name (case-insensitive).
    pub fn parse(s: &str) -> Option<Sex> {
        match s.to_ascii_uppercase().as_str() {
            "FEMALE" => Some(Sex::Female),
            "MALE" => Some(Sex::Male),
            "OTHER" => Some(Sex::Other),
            "UNKNOWN" => Some(Sex::Unknown),
            _ => None,
        }
    }
}

/// Body of `POST /api/patients` and `PUT /api/patients/{id}` — the reference system's request
/// body plus optional `phone` and `sex`. Fields are loosely typed on purpose: the server validates
/// every field and answers 400 with one error per bad field, instead of failing on the first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatientRequest {
    /// Required, at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Required, a valid email; unique (case-insensitive) among patients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Required, `YYYY-MM-DD`, not in the future, not before 1900-01-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// `YYYY-MM-DD`; required on create, optional on update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_date: Option<String>,
    /// Optional phone number: digits, spaces and `+-()`, 5–30 characters. On update, absent keeps
    /// the stored value and an empty string clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Optional: FEMALE, MALE, OTHER or UNKNOWN. On update, absent keeps the stored value and an
    /// empty string clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
}

/// One version of a patient record (`GET /api/patients/{id}/history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PatientVersion {
    pub version: i64,
    /// CREATED, UPDATED or DELETED.
    pub change_type: String,
    pub changed_at: DateTime<Utc>,
    /// User id of whoever made the change.
    pub changed_by: Option<Uuid>,
    /// The record as it was after this change.
    pub patient: Patient,
}

/// One audit record (`GET /api/audit`, ADMIN). Never contains field values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    /// e.g. `patient.list`, `patient.read`, `patient.create`, `patient.update`, `patient.delete`,
    /// `patient.history`, `audit.read`, `auth.login`.
    pub action: String,
    /// e.g. `patient`, `patients`, `user`.
    pub resource: String,
    pub patient_id: Option<Uuid>,
    /// SUCCESS, DENIED, NOT_FOUND, REJECTED (invalid input), CONFLICT (duplicate or stale
    /// version) or FAILED (server error).
    pub outcome: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// `DELETE /api/patients/{id}` with `Prefer: return=representation` (without it: 204, no body):
/// the patient as deleted and what becomes of its billing account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PatientDeletion {
    pub patient: Patient,
    /// The billing account as billing reported it at the delete; null when billing did not
    /// answer (the account is closed or suspended all the same, from the PATIENT_DELETED event).
    pub billing: Option<DeletedAccount>,
}

/// A deleted patient's billing account: billing closes it when nothing is owed, and suspends it
/// otherwise (no new invoices; the balance is kept and stays collectible).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeletedAccount {
    pub account_id: Uuid,
    /// What the patient still owes, in minor units of `currency`.
    pub balance: i64,
    /// ISO-4217 code; null before the account's first invoice.
    pub currency: Option<String>,
    /// The status billing gives the account: CLOSED or SUSPENDED.
    pub status: super::AccountStatus,
    /// The same in one sentence, for people.
    pub note: String,
}

impl DeletedAccount {
    /// What deleting the patient does to an account of `status` that owes `balance`.
    pub fn after_delete(
        account_id: Uuid,
        status: super::AccountStatus,
        balance: i64,
        currency: Option<String>,
    ) -> DeletedAccount {
        use super::AccountStatus::{Closed, Suspended};
        let (status, note) = match (status, balance) {
            (Closed, _) => (Closed, "the billing account was already closed".to_owned()),
            (_, 0) => (
                Closed,
                "nothing is owed: the billing account is closed".to_owned(),
            ),
            (_, _) => (
                Suspended,
                "the patient still owes money: the billing account is suspended, not closed \
                 (no new invoices), and the balance is kept and stays collectible"
                    .to_owned(),
            ),
        };
        DeletedAccount {
            account_id,
            balance,
            currency,
            status,
            note,
        }
    }
}
