//! Billing's events (DESIGN §8).
//!
//! - Produced, on the `billing` topic (key: account id): `BillingEvent`s for account creation and
//!   status changes, issued and voided invoices, payments and refunds. The store writes them to
//!   its outbox in the same transaction as the change ([`billing_event`]); the relay publishes.
//!   They carry ids, amounts and statuses — never names or emails.
//! - Consumed, from the `patient` topic in group `billing-service` ([`PatientEvents`]): a created
//!   patient gets its account even when the patient service could not reach billing over gRPC;
//!   an update refreshes the account's contact details; a deletion closes the account (or
//!   suspends it while it still owes); a restore refreshes the contact and reopens it (ACTIVE). Each event is applied once (deduplicated on its id in the
//!   same transaction as its effect).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pms_proto::billing_events::BillingEvent;
use pms_proto::patient_events::PatientEvent;
use prost::Message;
use uuid::Uuid;

use super::model::{Contact, NewAccount, PatientRef};
use super::store::BillingStore;
use crate::events::{EventRecord, Handler, TOPIC_BILLING};

/// Consumer group of billing's patient-event consumer.
pub const CONSUMER_GROUP: &str = "billing-service";

/// What a patient event asks of billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientChange {
    Created,
    Updated,
    Deleted,
    /// A deleted patient is live again: refresh the contact and reopen the account.
    Restored,
}

impl PatientChange {
    fn parse(event_type: &str) -> Option<PatientChange> {
        match event_type {
            "PATIENT_CREATED" => Some(PatientChange::Created),
            "PATIENT_UPDATED" => Some(PatientChange::Updated),
            "PATIENT_DELETED" => Some(PatientChange::Deleted),
            "PATIENT_RESTORED" => Some(PatientChange::Restored),
            _ => None,
        }
    }
}

/// The outbox record of `event`, stamped with a new event id and `at`.
pub fn billing_event(mut event: BillingEvent, at: DateTime<Utc>) -> EventRecord {
    let id = Uuid::now_v7();
    event.event_id = id.to_string();
    event.occurred_at = at.to_rfc3339();
    EventRecord {
        id,
        topic: TOPIC_BILLING.to_owned(),
        key: event.account_id.clone(),
        event_type: event.event_type.clone(),
        payload: event.encode_to_vec(),
        occurred_at: at,
    }
}

/// Applies `patient` topic events to the billing accounts.
pub struct PatientEvents {
    pub store: Arc<dyn BillingStore>,
}

#[async_trait::async_trait]
impl Handler for PatientEvents {
    async fn handle(&self, event: &EventRecord) -> anyhow::Result<()> {
        // An event that can never be applied is skipped (and logged by id) instead of blocking
        // the partition forever; a failure to apply it (database down) is retried.
        let message = match PatientEvent::decode(event.payload.as_slice()) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(event_id = %event.id, error = %e, "undecodable patient event");
                return Ok(());
            }
        };
        let event_type = if event.event_type.is_empty() {
            message.event_type.as_str()
        } else {
            event.event_type.as_str()
        };
        let Some(change) = PatientChange::parse(event_type) else {
            return Ok(());
        };
        let patient = match PatientRef::parse(&message.patient_id) {
            Ok(patient) => patient,
            Err(_) => {
                tracing::warn!(event_id = %event.id, "patient event without a patient id");
                return Ok(());
            }
        };
        // Over-long contact details are not worth losing the account over.
        let contact = Contact::parse(&message.name, &message.email).unwrap_or_default();
        let actor = Uuid::parse_str(&message.actor_id).ok();
        let new = NewAccount { patient, contact };
        let applied = self
            .store
            .apply_patient_event(event.id, &new, change, actor)
            .await?;
        tracing::debug!(event_id = %event.id, ?change, applied, "patient event handled");
        Ok(())
    }
}
