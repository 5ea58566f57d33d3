//! The request metadata every audit row carries, decided at the edge: the request id is bounded
//! (replaced by a fresh one when a client's is too long or malformed, and the same value goes
//! back in the response and into the audit row), and the client address is the right-most
//! untrusted address of the `X-Forwarded-For` chain — believed from a trusted proxy in front of
//! the gateway, never from a local process that talks to an internal listener directly.

use pms_proto::rest::{AuditEntry, AuthAuditEntry, Patient};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{BACKENDS, Backend, TestApp, spawn_app_on, spawn_app_with};

async fn create_patient(app: &TestApp, token: &str) -> Patient {
    let response = app
        .client
        .post(app.url("/api/patients"))
        .bearer_auth(token)
        .json(&json!({
            "name": "Meta Subject",
            "email": format!("meta-{}@example.org", Uuid::new_v4().simple()),
            "address": "1 Edge Street",
            "dateOfBirth": "1970-01-01",
            "registeredDate": "2024-01-01",
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 201);
    response.json().await.expect("patient")
}

/// The patient audit rows of `patient`, newest first.
async fn patient_audit(app: &TestApp, token: &str, patient: Uuid) -> Vec<AuditEntry> {
    let response = app
        .client
        .get(app.url(&format!("/api/audit?patientId={patient}&limit=50")))
        .bearer_auth(token)
        .send()
        .await
        .expect("audit");
    assert_eq!(response.status(), 200);
    response.json().await.expect("entries")
}

fn request_id_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("x-request-id in the response")
        .to_str()
        .expect("ascii")
        .to_owned()
}

fn is_bounded(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

#[tokio::test]
async fn oversized_or_malformed_request_ids_are_replaced_at_the_edge() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        // A login is audited on every call; a 10 KB id used to be stored as is.
        let huge = "r".repeat(10_000);
        let response = app
            .client
            .post(app.url("/auth/login"))
            .header("x-request-id", &huge)
            .json(&json!({ "email": app.admin_email, "password": app.admin_password }))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 200, "{backend:?}");
        let fresh = request_id_of(&response);
        assert!(
            is_bounded(&fresh) && fresh != huge,
            "{backend:?}: {fresh:.40}"
        );
        let token = response
            .json::<pms_proto::rest::TokenResponse>()
            .await
            .expect("token")
            .token;
        let audit: Vec<AuthAuditEntry> = app
            .client
            .get(app.url("/auth/audit?limit=20"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("auth audit")
            .json()
            .await
            .expect("entries");
        let login = audit
            .iter()
            .find(|e| e.action == "auth.login" && e.request_id.as_deref() == Some(&fresh))
            .unwrap_or_else(|| panic!("{backend:?}: no login row with {fresh}: {audit:?}"));
        assert_eq!(login.outcome, "SUCCESS");
        assert!(
            audit
                .iter()
                .all(|e| e.request_id.as_deref().is_none_or(is_bounded))
        );

        // The same at the patient service, for an id with spaces; a good id is kept end to end.
        let patient = create_patient(&app, &token).await;
        let read = |id: &'static str| {
            app.client
                .get(app.url(&format!("/api/patients/{}", patient.id)))
                .bearer_auth(&token)
                .header("x-request-id", id)
                .send()
        };
        let spaced = read("not a valid id").await.expect("read");
        assert_eq!(spaced.status(), 200);
        let replaced = request_id_of(&spaced);
        assert!(is_bounded(&replaced) && replaced != "not a valid id");
        let kept = read("trace-7f3a_ok").await.expect("read");
        assert_eq!(request_id_of(&kept), "trace-7f3a_ok");
        let rows = patient_audit(&app, &token, patient.id).await;
        let ids: Vec<Option<&str>> = rows
            .iter()
            .filter(|e| e.action == "patient.read")
            .map(|e| e.request_id.as_deref())
            .collect();
        assert_eq!(
            ids,
            [Some("trace-7f3a_ok"), Some(replaced.as_str())],
            "{backend:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_proxied_client_address_reaches_the_audit_log_and_a_forged_one_does_not() {
    for backend in BACKENDS {
        // The test process connects from loopback: in the default `http.trusted_proxies`, so to
        // the gateway it is a trusted reverse proxy.
        let app = spawn_app_on(backend).await;
        let token = app.admin_token().await;
        let patient = create_patient(&app, &token).await;
        let via_gateway = |xff: &'static str| {
            app.client
                .get(app.url(&format!("/api/patients/{}", patient.id)))
                .bearer_auth(&token)
                .header("x-forwarded-for", xff)
                .send()
        };
        assert_eq!(
            via_gateway("198.51.100.23").await.expect("read").status(),
            200
        );
        // The proxy's client forged the left-most entry: the right-most untrusted one wins.
        assert_eq!(
            via_gateway("6.6.6.6, 198.51.100.24")
                .await
                .expect("read")
                .status(),
            200
        );
        // A local process that is not the gateway talks to the internal patient listener with a
        // forged header: it is recorded with its real address.
        let direct = app
            .client
            .get(format!(
                "http://{}/patients/{}",
                app.patient_addr, patient.id
            ))
            .bearer_auth(&token)
            .header("x-forwarded-for", "203.0.113.66")
            .send()
            .await
            .expect("direct read");
        assert_eq!(direct.status(), 200);
        let rows = patient_audit(&app, &token, patient.id).await;
        let addresses: Vec<Option<&str>> = rows
            .iter()
            .filter(|e| e.action == "patient.read")
            .map(|e| e.client_ip.as_deref())
            .collect();
        assert_eq!(
            addresses,
            [
                Some("127.0.0.1"),
                Some("198.51.100.24"),
                Some("198.51.100.23")
            ],
            "{backend:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_address() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.trusted_proxies = "192.0.2.0/24".parse().expect("a network");
    })
    .await;
    let token = app.admin_token().await;
    let patient = create_patient(&app, &token).await;
    let response = app
        .client
        .get(app.url(&format!("/api/patients/{}", patient.id)))
        .bearer_auth(&token)
        .header("x-forwarded-for", "198.51.100.23")
        .send()
        .await
        .expect("read");
    assert_eq!(response.status(), 200);
    let rows = patient_audit(&app, &token, patient.id).await;
    let read = rows
        .iter()
        .find(|e| e.action == "patient.read")
        .expect("read row");
    assert_eq!(read.client_ip.as_deref(), Some("127.0.0.1"));
    app.stop().await;
}
