//! The patient service's events: a `PatientEvent` on the `patient` topic (key: patient id) for
//! every create, update, delete and restore, written to the outbox in the change's own
//! transaction.
//!
//! Personal data only where a consumer needs it: PATIENT_CREATED keeps the reference fields
//! (name, email, MRN: wire compatibility, billing opens the account with them), PATIENT_UPDATED
//! and PATIENT_RESTORED carry name and email (billing refreshes the account's contact and reopens
//! it on a restore), PATIENT_DELETED carries ids only.

use chrono::{DateTime, Utc};
use pms_proto::patient_events::PatientEvent;
use pms_proto::rest::Patient;
use prost::Message;
use uuid::Uuid;

use crate::events::{EventRecord, TOPIC_PATIENT};

/// The event describing `patient` after a change of `change_type` (CREATED, UPDATED, DELETED,
/// RESTORED).
pub fn patient_event(
    patient: &Patient,
    change_type: &str,
    actor: Option<Uuid>,
    at: DateTime<Utc>,
) -> EventRecord {
    let id = Uuid::now_v7();
    let event_type = format!("PATIENT_{change_type}");
    let deleted = change_type == "DELETED";
    let personal = |value: &String| {
        if deleted {
            String::new()
        } else {
            value.clone()
        }
    };
    let message = PatientEvent {
        patient_id: patient.id.to_string(),
        name: personal(&patient.name),
        email: personal(&patient.email),
        event_type: event_type.clone(),
        event_id: id.to_string(),
        occurred_at: at.to_rfc3339(),
        version: patient.version,
        actor_id: actor.map(|a| a.to_string()).unwrap_or_default(),
        mrn: personal(&patient.mrn),
    };
    EventRecord {
        id,
        topic: TOPIC_PATIENT.to_owned(),
        key: patient.id.to_string(),
        event_type,
        payload: message.encode_to_vec(),
        occurred_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient() -> Patient {
        serde_json::from_value(serde_json::json!({
            "id": Uuid::new_v4(),
            "mrn": "MRN-000123",
            "name": "Jane Private",
            "email": "jane@private.example",
            "address": "1 Secret Lane",
            "dateOfBirth": "1980-01-01",
            "registeredDate": "2024-01-01",
            "version": 3,
            "createdAt": Utc::now(),
            "updatedAt": Utc::now(),
        }))
        .expect("a patient")
    }

    #[test]
    fn deletions_carry_ids_only_and_creations_keep_the_reference_fields() {
        let p = patient();
        let decode = |e: &EventRecord| PatientEvent::decode(e.payload.as_slice()).expect("decodes");
        let created = decode(&patient_event(&p, "CREATED", None, Utc::now()));
        assert_eq!(
            (
                created.name.as_str(),
                created.email.as_str(),
                created.mrn.as_str()
            ),
            ("Jane Private", "jane@private.example", "MRN-000123")
        );
        let updated = decode(&patient_event(&p, "UPDATED", None, Utc::now()));
        assert_eq!(
            updated.email, "jane@private.example",
            "billing refreshes the contact"
        );
        let record = patient_event(&p, "DELETED", None, Utc::now());
        let deleted = decode(&record);
        assert_eq!(deleted.patient_id, p.id.to_string());
        assert_eq!(deleted.event_type, "PATIENT_DELETED");
        assert_eq!(deleted.version, 3);
        for text in ["Jane", "jane@", "MRN-", "Secret"] {
            assert!(
                !record
                    .payload
                    .windows(text.len())
                    .any(|w| w == text.as_bytes()),
                "{text} in a deletion event"
            );
        }
    }
}
