//! Billing's events in the all-in-one app, through the real embedded event log: a
//! `PATIENT_CREATED` event creates the patient's account (the path that makes the account
//! "appear later" when billing was down during patient creation), and the ledger's `billing`
//! events reach analytics' summary.

use std::time::Duration;

use pms_proto::patient_events::PatientEvent;
use pms_proto::rest::Role;
use pms_server::events::{EventRecord, Publisher, TOPIC_PATIENT, embedded::EmbeddedLog};
use prost::Message;
use serde_json::Value;
use uuid::Uuid;

use super::{Api, s};
use crate::helpers::{BACKENDS, TestApp, spawn_app_on};

/// Polls `probe` until it returns something (events are asynchronous), for at most 10 s.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(found) = probe().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn publish_patient_created(app: &TestApp, patient_id: Uuid) {
    let background = pms_server::supervise::Background::new(Default::default());
    let log = EmbeddedLog::open(&app.settings, &background)
        .await
        .expect("event log");
    let event_id = Uuid::now_v7();
    let payload = PatientEvent {
        patient_id: patient_id.to_string(),
        name: "Jane Roe".to_owned(),
        email: "jane.roe@example.com".to_owned(),
        event_type: "PATIENT_CREATED".to_owned(),
        event_id: event_id.to_string(),
        version: 1,
        ..PatientEvent::default()
    };
    let record = EventRecord {
        id: event_id,
        topic: TOPIC_PATIENT.to_owned(),
        key: patient_id.to_string(),
        event_type: "PATIENT_CREATED".to_owned(),
        payload: payload.encode_to_vec(),
        occurred_at: chrono::Utc::now(),
    };
    log.publish(&record).await.expect("publish");
}

#[tokio::test]
async fn a_patient_created_event_opens_the_account() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let token = app.user_with_role(Role::Viewer).await.2;
        let api = Api::new(app.url("/api"));
        let patient = Uuid::new_v4();
        publish_patient_created(&app, patient).await;
        let path = format!("/billing/accounts?patientId={patient}");
        let account = eventually("the account of the new patient", || async {
            let found = api.get(&path, &token).await.body;
            found.as_array().and_then(|a| a.first().cloned())
        })
        .await;
        assert_eq!(account["status"], "ACTIVE", "{backend:?}");
        assert_eq!(s(&account, "patientId"), patient.to_string());
        app.stop().await;
    }
}

#[tokio::test]
async fn ledger_events_reach_analytics() {
    let app = spawn_app_on(crate::helpers::Backend::Sqlite).await;
    let token = app.user_with_role(Role::Billing).await.2;
    let api = Api::new(app.url("/api"));
    let account = api.new_account(&token).await;
    let invoice = api.issued_invoice(&token, s(&account, "id"), 2500).await;
    assert_eq!(api.pay(&token, s(&invoice, "id"), 1000).await.status, 201);
    let totals = eventually("analytics to count the invoice and the payment", || async {
        let summary: Value = api.get("/analytics/summary", &token).await.body;
        summary["billing"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["currency"] == "USD").cloned())
            .filter(|usd| usd["collected"] == 1000)
    })
    .await;
    assert_eq!(totals["invoiced"], 2500);
    assert_eq!(totals["outstanding"], 1500);
    app.stop().await;
}
