//! Row types of the patient tables and their conversion to the API's types. Shared by both
//! backends: every column type decodes on PostgreSQL and on SQLite.

use chrono::{DateTime, NaiveDate, Utc};
use pms_proto::rest::{AuditEntry, Patient, PatientVersion, Sex};
use sqlx::FromRow;
use uuid::Uuid;

use super::PatientKey;
use crate::error::StoreError;

#[derive(FromRow)]
pub struct PatientRow {
    pub(super) id: Uuid,
    pub(super) seq: i64,
    pub(super) mrn: String,
    pub(super) name: String,
    pub(super) name_key: String,
    pub(super) email: String,
    pub(super) address: String,
    pub(super) date_of_birth: NaiveDate,
    pub(super) registered_date: NaiveDate,
    pub(super) phone: Option<String>,
    pub(super) sex: Option<String>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) version: i64,
}

impl PatientRow {
    pub(super) fn into_patient(self) -> Result<(Patient, PatientKey), StoreError> {
        let key = PatientKey {
            seq: self.seq,
            name_key: self.name_key,
        };
        let patient = Patient {
            id: self.id,
            mrn: self.mrn,
            name: self.name,
            email: self.email,
            address: self.address,
            date_of_birth: self.date_of_birth,
            registered_date: self.registered_date,
            phone: self.phone,
            sex: decode_sex(self.sex)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            billing_account_id: None,
        };
        Ok((patient, key))
    }
}

#[derive(FromRow)]
pub struct VersionRow {
    pub(super) patient_id: Uuid,
    pub(super) version: i64,
    pub(super) change_type: String,
    pub(super) changed_at: DateTime<Utc>,
    pub(super) changed_by: Option<Uuid>,
    pub(super) mrn: String,
    pub(super) name: String,
    pub(super) email: String,
    pub(super) address: String,
    pub(super) date_of_birth: NaiveDate,
    pub(super) registered_date: NaiveDate,
    pub(super) phone: Option<String>,
    pub(super) sex: Option<String>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

impl VersionRow {
    pub(super) fn into_version(self) -> Result<PatientVersion, StoreError> {
        Ok(PatientVersion {
            version: self.version,
            change_type: self.change_type,
            changed_at: self.changed_at,
            changed_by: self.changed_by,
            patient: Patient {
                id: self.patient_id,
                mrn: self.mrn,
                name: self.name,
                email: self.email,
                address: self.address,
                date_of_birth: self.date_of_birth,
                registered_date: self.registered_date,
                phone: self.phone,
                sex: decode_sex(self.sex)?,
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
                billing_account_id: None,
            },
        })
    }
}

#[derive(FromRow)]
pub struct AuditRow {
    pub(super) seq: i64,
    pub(super) id: Uuid,
    pub(super) occurred_at: DateTime<Utc>,
    pub(super) actor_id: Option<Uuid>,
    pub(super) actor_role: Option<String>,
    pub(super) action: String,
    pub(super) resource: String,
    pub(super) patient_id: Option<Uuid>,
    pub(super) outcome: String,
    pub(super) client_ip: Option<String>,
    pub(super) request_id: Option<String>,
}

impl AuditRow {
    pub(super) fn into_entry(self) -> AuditEntry {
        AuditEntry {
            id: self.id,
            occurred_at: self.occurred_at,
            actor_id: self.actor_id,
            actor_role: self.actor_role,
            action: self.action,
            resource: self.resource,
            patient_id: self.patient_id,
            outcome: self.outcome,
            client_ip: self.client_ip,
            request_id: self.request_id,
        }
    }
}

pub(super) fn decode_sex(sex: Option<String>) -> Result<Option<Sex>, StoreError> {
    sex.map(|s| {
        Sex::parse(&s).ok_or_else(|| {
            StoreError::Other(sqlx::Error::Decode(
                format!("unknown sex `{s}` in patients").into(),
            ))
        })
    })
    .transpose()
}
