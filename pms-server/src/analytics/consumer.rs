//! The analytics consumer (group `analytics-service`): decodes each event of every topic into
//! identifiers, amounts and aggregate changes — never names, emails or addresses — stores it
//! once, and wakes this replica's live feed ([`super::live`]) after the commit.

use std::sync::Arc;

use pms_proto::billing_events::BillingEvent;
use pms_proto::patient_events::PatientEvent;
use prost::Message;
use serde_json::json;
use tokio::sync::Notify;

use super::store::{AnalyticsStore, Delta, NewEvent, counter};
use crate::events::{EventRecord, Handler, TOPIC_BILLING, TOPIC_PATIENT};

pub(crate) struct AnalyticsConsumer {
    pub store: Arc<dyn AnalyticsStore>,
    /// Wakes the live feed, which reads the store (and so also sees other replicas' events).
    pub stored: Arc<Notify>,
}

#[async_trait::async_trait]
impl Handler for AnalyticsConsumer {
    async fn handle(&self, event: &EventRecord) -> anyhow::Result<()> {
        let new = describe(event);
        if let Some(stored) = self.store.record(&new).await? {
            metrics::counter!("analytics_events_stored_total", "topic" => stored.topic.clone())
                .increment(1);
            self.stored.notify_one();
        }
        Ok(())
    }

    /// One transaction for the whole batch (events and summed aggregate changes), one wake of
    /// the live feed.
    async fn handle_batch(&self, events: &[&EventRecord]) -> anyhow::Result<()> {
        let new: Vec<NewEvent> = events.iter().map(|e| describe(e)).collect();
        let stored = self.store.record_batch(&new).await?;
        for event in &stored {
            metrics::counter!("analytics_events_stored_total", "topic" => event.topic.clone())
                .increment(1);
        }
        if !stored.is_empty() {
            self.stored.notify_one();
        }
        Ok(())
    }
}

/// What analytics keeps of an event. Undecodable payloads are stored with empty data (and no
/// aggregate change) rather than blocking the consumer forever.
pub(crate) fn describe(event: &EventRecord) -> NewEvent {
    let mut new = NewEvent {
        event_id: event.id,
        topic: event.topic.clone(),
        event_type: event.event_type.clone(),
        key: event.key.clone(),
        occurred_at: event.occurred_at,
        data: json!({}),
        delta: Delta::default(),
    };
    match event.topic.as_str() {
        TOPIC_PATIENT => match PatientEvent::decode(event.payload.as_slice()) {
            Ok(p) => {
                if new.event_type.is_empty() {
                    new.event_type = p.event_type.clone();
                }
                new.data = json!({ "patientId": p.patient_id, "version": p.version, "actorId": non_empty(&p.actor_id) });
                new.delta.counters = match new.event_type.as_str() {
                    "PATIENT_CREATED" => vec![(counter::PATIENTS_CREATED, 1)],
                    "PATIENT_DELETED" => vec![(counter::PATIENTS_DELETED, 1)],
                    // A restored patient counts as active again.
                    "PATIENT_RESTORED" => vec![(counter::PATIENTS_DELETED, -1)],
                    _ => Vec::new(),
                };
            }
            Err(e) => {
                tracing::warn!(event_id = %event.id, error = %e, "undecodable patient event stored without data")
            }
        },
        TOPIC_BILLING => match BillingEvent::decode(event.payload.as_slice()) {
            Ok(b) => {
                if new.event_type.is_empty() {
                    new.event_type = b.event_type.clone();
                }
                new.data = json!({
                    "accountId": non_empty(&b.account_id),
                    "patientId": non_empty(&b.patient_id),
                    "invoiceId": non_empty(&b.invoice_id),
                    "paymentId": non_empty(&b.payment_id),
                    "amount": b.amount,
                    "currency": non_empty(&b.currency),
                    "status": non_empty(&b.status),
                });
                let money = |invoiced: i64, collected: i64, refunded: i64| {
                    Some((b.currency.clone(), invoiced, collected, refunded))
                };
                match new.event_type.as_str() {
                    "ACCOUNT_CREATED" => new.delta.counters = vec![(counter::ACCOUNTS_CREATED, 1)],
                    "ACCOUNT_CLOSED" => new.delta.counters = vec![(counter::ACCOUNTS_CLOSED, 1)],
                    "INVOICE_ISSUED" => new.delta.money = money(b.amount, 0, 0),
                    "INVOICE_VOIDED" => new.delta.money = money(-b.amount, 0, 0),
                    "PAYMENT_RECEIVED" => new.delta.money = money(0, b.amount, 0),
                    "PAYMENT_REFUNDED" => new.delta.money = money(0, 0, b.amount),
                    _ => {}
                }
            }
            Err(e) => {
                tracing::warn!(event_id = %event.id, error = %e, "undecodable billing event stored without data")
            }
        },
        _ => {}
    }
    new
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    fn record(topic: &str, event_type: &str, payload: Vec<u8>) -> EventRecord {
        EventRecord {
            id: Uuid::new_v4(),
            topic: topic.into(),
            key: "k".into(),
            event_type: event_type.into(),
            payload,
            occurred_at: Utc::now(),
        }
    }

    #[test]
    fn patient_events_keep_ids_and_drop_personal_data() {
        let payload = PatientEvent {
            patient_id: "p1".into(),
            name: "Jane Doe".into(),
            email: "jane@example.com".into(),
            event_type: "PATIENT_CREATED".into(),
            version: 1,
            ..Default::default()
        }
        .encode_to_vec();
        let new = describe(&record(TOPIC_PATIENT, "", payload));
        assert_eq!(
            new.event_type, "PATIENT_CREATED",
            "type taken from the payload when no header"
        );
        assert_eq!(new.data["patientId"], "p1");
        let text = new.data.to_string();
        assert!(!text.contains("Jane") && !text.contains("jane@"), "{text}");
        assert_eq!(new.delta.counters, vec![(counter::PATIENTS_CREATED, 1)]);
    }

    #[test]
    fn a_restore_undoes_a_delete_in_the_counts() {
        let counters = |event_type: &str| {
            let payload = PatientEvent {
                patient_id: "p1".into(),
                event_type: event_type.into(),
                ..Default::default()
            }
            .encode_to_vec();
            describe(&record(TOPIC_PATIENT, event_type, payload))
                .delta
                .counters
        };
        assert_eq!(
            counters("PATIENT_DELETED"),
            vec![(counter::PATIENTS_DELETED, 1)]
        );
        assert_eq!(
            counters("PATIENT_RESTORED"),
            vec![(counter::PATIENTS_DELETED, -1)]
        );
    }

    #[test]
    fn billing_events_move_money() {
        let event = |t: &str, amount| {
            describe(&record(
                TOPIC_BILLING,
                t,
                BillingEvent {
                    event_type: t.into(),
                    amount,
                    currency: "EUR".into(),
                    ..Default::default()
                }
                .encode_to_vec(),
            ))
        };
        assert_eq!(
            event("INVOICE_ISSUED", 500).delta.money,
            Some(("EUR".into(), 500, 0, 0))
        );
        assert_eq!(
            event("INVOICE_VOIDED", 500).delta.money,
            Some(("EUR".into(), -500, 0, 0))
        );
        assert_eq!(
            event("PAYMENT_RECEIVED", 200).delta.money,
            Some(("EUR".into(), 0, 200, 0))
        );
        assert_eq!(
            event("PAYMENT_REFUNDED", 50).delta.money,
            Some(("EUR".into(), 0, 0, 50))
        );
        assert_eq!(
            event("ACCOUNT_CREATED", 0).delta.counters,
            vec![(counter::ACCOUNTS_CREATED, 1)]
        );
    }

    #[test]
    fn garbage_payloads_are_stored_without_effects() {
        let new = describe(&record(
            TOPIC_PATIENT,
            "PATIENT_CREATED",
            vec![0xff, 0xff, 0xff],
        ));
        assert_eq!(new.delta, Delta::default());
        assert_eq!(new.data, json!({}));
    }
}
