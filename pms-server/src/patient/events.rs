//! The patient service's events: a `PatientEvent` on the `patient` topic (key: patient id) for
//! every create, update and delete, written to the outbox in the change's own transaction.

use chrono::{DateTime, Utc};
use pms_proto::patient_events::PatientEvent;
use pms_proto::rest::Patient;
use prost::Message;
use uuid::Uuid;

use crate::events::{EventRecord, TOPIC_PATIENT};

/// The event describing `patient` after a change of `change_type` (CREATED, UPDATED, DELETED).
pub fn patient_event(
    patient: &Patient,
    change_type: &str,
    actor: Option<Uuid>,
    at: DateTime<Utc>,
) -> EventRecord {
    let id = Uuid::now_v7();
    let event_type = format!("PATIENT_{change_type}");
    let message = PatientEvent {
        patient_id: patient.id.to_string(),
        name: patient.name.clone(),
        email: patient.email.clone(),
        event_type: event_type.clone(),
        event_id: id.to_string(),
        occurred_at: at.to_rfc3339(),
        version: patient.version,
        actor_id: actor.map(|a| a.to_string()).unwrap_or_default(),
        mrn: patient.mrn.clone(),
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
