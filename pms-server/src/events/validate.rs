//! What a consumer accepts. An event of an unknown type, with a malformed payload or malformed
//! ids is a *poison message*: it can never be applied, so it is logged (by id and position, never
//! its content), counted in `events_poison_total`, and committed past — it never stops the
//! partition.

use pms_proto::billing_events::BillingEvent;
use pms_proto::patient_events::PatientEvent;
use prost::Message;
use uuid::Uuid;

use super::{EventRecord, TOPIC_BILLING, TOPIC_PATIENT};

/// Event types of the `patient` topic.
pub const PATIENT_TYPES: [&str; 4] = [
    "PATIENT_CREATED",
    "PATIENT_UPDATED",
    "PATIENT_DELETED",
    "PATIENT_RESTORED",
];
/// Event types of the `billing` topic.
pub const BILLING_TYPES: [&str; 7] = [
    "ACCOUNT_CREATED",
    "ACCOUNT_UPDATED",
    "ACCOUNT_CLOSED",
    "INVOICE_ISSUED",
    "INVOICE_VOIDED",
    "PAYMENT_RECEIVED",
    "PAYMENT_REFUNDED",
];
/// Longest accepted key (ids are 36 characters).
const MAX_KEY: usize = 64;

/// `Ok` if consumers can apply `event`, else why not.
pub fn check(event: &EventRecord) -> Result<(), String> {
    if event.key.len() > MAX_KEY {
        return Err(format!("key longer than {MAX_KEY} bytes"));
    }
    match event.topic.as_str() {
        TOPIC_PATIENT => {
            let message = PatientEvent::decode(event.payload.as_slice())
                .map_err(|e| format!("not a PatientEvent: {e}"))?;
            let event_type = type_of(event, &message.event_type);
            if !PATIENT_TYPES.contains(&event_type) {
                return Err(format!("unknown patient event type {event_type:?}"));
            }
            uuid("patient_id", &message.patient_id)?;
            optional_uuid("actor_id", &message.actor_id)?;
            if event.key != message.patient_id {
                return Err("key is not the patient id".to_owned());
            }
            Ok(())
        }
        TOPIC_BILLING => {
            let message = BillingEvent::decode(event.payload.as_slice())
                .map_err(|e| format!("not a BillingEvent: {e}"))?;
            let event_type = type_of(event, &message.event_type);
            if !BILLING_TYPES.contains(&event_type) {
                return Err(format!("unknown billing event type {event_type:?}"));
            }
            uuid("account_id", &message.account_id)?;
            for (field, value) in [
                ("patient_id", &message.patient_id),
                ("invoice_id", &message.invoice_id),
                ("payment_id", &message.payment_id),
                ("actor_id", &message.actor_id),
            ] {
                optional_uuid(field, value)?;
            }
            Ok(())
        }
        other => Err(format!("unknown topic {other:?}")),
    }
}

/// The header's type, else the payload's (messages from other producers carry no headers).
fn type_of<'a>(event: &'a EventRecord, payload_type: &'a str) -> &'a str {
    if event.event_type.is_empty() {
        payload_type
    } else {
        &event.event_type
    }
}

fn uuid(field: &str, value: &str) -> Result<(), String> {
    Uuid::parse_str(value)
        .map(|_| ())
        .map_err(|_| format!("`{field}` is not a UUID"))
}

fn optional_uuid(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        Ok(())
    } else {
        uuid(field, value)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    /// The CLI and the analytics API document one list of event types (pms-proto); it must be
    /// exactly the types the topics carry, in the same order.
    #[test]
    fn the_public_list_of_event_types_is_the_topics_types() {
        let topics: Vec<&str> = super::PATIENT_TYPES
            .iter()
            .chain(super::BILLING_TYPES.iter())
            .copied()
            .collect();
        assert_eq!(topics, pms_proto::rest::EVENT_TYPES.to_vec());
    }

    use super::*;

    fn patient(event_type: &str, patient_id: &str, key: &str) -> EventRecord {
        EventRecord {
            id: Uuid::new_v4(),
            topic: TOPIC_PATIENT.into(),
            key: key.into(),
            event_type: event_type.into(),
            payload: PatientEvent {
                patient_id: patient_id.into(),
                event_type: event_type.into(),
                ..Default::default()
            }
            .encode_to_vec(),
            occurred_at: Utc::now(),
        }
    }

    #[test]
    fn well_formed_events_pass() {
        let id = Uuid::new_v4().to_string();
        assert_eq!(check(&patient("PATIENT_CREATED", &id, &id)), Ok(()));
        let account = Uuid::new_v4().to_string();
        let billing = EventRecord {
            topic: TOPIC_BILLING.into(),
            key: account.clone(),
            event_type: String::new(),
            payload: BillingEvent {
                event_type: "PAYMENT_RECEIVED".into(),
                account_id: account,
                ..Default::default()
            }
            .encode_to_vec(),
            ..patient("PATIENT_CREATED", &id, &id)
        };
        assert_eq!(check(&billing), Ok(()), "type taken from the payload");
    }

    #[test]
    fn poison_is_named() {
        let id = Uuid::new_v4().to_string();
        let cases = [
            (
                patient("PATIENT_EXPLODED", &id, &id),
                "unknown patient event type",
            ),
            (
                patient("PATIENT_CREATED", "not-a-uuid", "not-a-uuid"),
                "patient_id",
            ),
            (patient("PATIENT_CREATED", &id, "other"), "key"),
            (
                EventRecord {
                    payload: vec![0xff, 0xff, 0xff],
                    ..patient("PATIENT_CREATED", &id, &id)
                },
                "not a PatientEvent",
            ),
            (
                EventRecord {
                    topic: "elsewhere".into(),
                    ..patient("PATIENT_CREATED", &id, &id)
                },
                "unknown topic",
            ),
        ];
        for (event, expected) in cases {
            let err = check(&event).expect_err(expected);
            assert!(err.contains(expected), "{err}");
        }
    }
}
