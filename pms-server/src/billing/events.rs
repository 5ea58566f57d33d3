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

/// A `patient` topic event as billing applies it.
#[derive(Debug, Clone)]
pub struct ConsumedPatientEvent {
    pub event_id: Uuid,
    pub account: NewAccount,
    pub change: PatientChange,
    pub actor: Option<Uuid>,
}

/// Applies `patient` topic events to the billing accounts.
pub struct PatientEvents {
    pub store: Arc<dyn BillingStore>,
}

impl PatientEvents {
    /// What `event` asks of billing; `None` for an event that can never be applied (undecodable,
    /// no patient id, a type billing ignores), which is skipped — and logged by id — instead of
    /// blocking the partition forever.
    fn read(event: &EventRecord) -> Option<ConsumedPatientEvent> {
        let message = match PatientEvent::decode(event.payload.as_slice()) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(event_id = %event.id, error = %e, "undecodable patient event");
                return None;
            }
        };
        let event_type = if event.event_type.is_empty() {
            message.event_type.as_str()
        } else {
            event.event_type.as_str()
        };
        let change = PatientChange::parse(event_type)?;
        let Ok(patient) = PatientRef::parse(&message.patient_id) else {
            tracing::warn!(event_id = %event.id, "patient event without a patient id");
            return None;
        };
        // Over-long contact details are not worth losing the account over.
        let contact = Contact::parse(&message.name, &message.email).unwrap_or_default();
        Some(ConsumedPatientEvent {
            event_id: event.id,
            account: NewAccount { patient, contact },
            change,
            actor: Uuid::parse_str(&message.actor_id).ok(),
        })
    }
}

#[async_trait::async_trait]
impl Handler for PatientEvents {
    /// A failure to apply the event (database down) is retried by the consumer.
    async fn handle(&self, event: &EventRecord) -> anyhow::Result<()> {
        let Some(e) = Self::read(event) else {
            return Ok(());
        };
        let applied = self
            .store
            .apply_patient_event(e.event_id, &e.account, e.change, e.actor)
            .await?;
        tracing::debug!(event_id = %event.id, change = ?e.change, applied, "patient event handled");
        Ok(())
    }

    /// The batch's events in one transaction (one commit per batch rather than per event).
    async fn handle_batch(&self, events: &[&EventRecord]) -> anyhow::Result<()> {
        let consumed: Vec<ConsumedPatientEvent> =
            events.iter().filter_map(|e| Self::read(e)).collect();
        if consumed.is_empty() {
            return Ok(());
        }
        let applied = self.store.apply_patient_events(&consumed).await?;
        tracing::debug!(events = events.len(), applied, "patient events handled");
        Ok(())
    }
}
