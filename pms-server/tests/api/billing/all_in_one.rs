//! Billing inside the all-in-one app (`Topology::All`): its REST and gRPC listeners are up on
//! loopback, answer, and stop gracefully with the rest; with billing stopped, the shared client
//! fails fast (what keeps patient creation under 2 s).

use std::time::{Duration, Instant};

use pms_proto::billing::BillingRequest;
use pms_proto::billing::billing_service_client::BillingServiceClient;
use pms_server::clients::{BillingClient, BillingClientError, CallContext};
use uuid::Uuid;

use crate::helpers::{BACKENDS, spawn_app_on};

#[tokio::test]
async fn billing_runs_inside_the_all_in_one_app() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        assert!(app.billing_addr.ip().is_loopback());
        assert!(app.billing_grpc_addr.ip().is_loopback());
        for probe in ["/health/live", "/health/ready"] {
            let reply = app
                .client
                .get(format!("http://{}{probe}", app.billing_addr))
                .send()
                .await
                .expect("probe");
            assert_eq!(reply.status(), 200, "{backend:?} {probe}");
        }
        let mut grpc = BillingServiceClient::connect(format!("http://{}", app.billing_grpc_addr))
            .await
            .expect("connect");
        let request = BillingRequest {
            patient_id: Uuid::new_v4().to_string(),
            name: String::new(),
            email: String::new(),
        };
        let first = grpc
            .create_billing_account(request.clone())
            .await
            .expect("create")
            .into_inner();
        let again = grpc
            .create_billing_account(request)
            .await
            .expect("again")
            .into_inner();
        assert_eq!((first.status.as_str(), &again), ("ACTIVE", &first));
        app.stop().await;
    }
}

#[tokio::test]
async fn with_billing_stopped_the_client_fails_fast() {
    let app = spawn_app_on(crate::helpers::Backend::Sqlite).await;
    let url = format!("http://{}", app.billing_grpc_addr);
    let client = BillingClient::new(&url).expect("client");
    client
        .create_billing_account(Uuid::new_v4(), "", "", &CallContext::default())
        .await
        .expect("billing is up");
    app.stop().await;
    let started = Instant::now();
    let err = client
        .create_billing_account(Uuid::new_v4(), "", "", &CallContext::default())
        .await
        .expect_err("billing is down");
    let elapsed = started.elapsed();
    println!("billing stopped: {err} after {elapsed:?}");
    assert!(
        matches!(err, BillingClientError::Unavailable { .. }),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

/// A port no one listens on right now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn the_embedded_default_serves_grpc_on_loopback_9001() {
    let defaults = pms_server::config::Settings::default();
    assert_eq!(defaults.billing.grpc_port, 9001);
    assert!(defaults.billing.grpc_enabled);
    assert!(defaults.billing.bind.is_loopback());
}

/// The reference system's `BillingService/CreateBillingAccount`, with a real tonic client and no
/// token (as its clients send none), against the all-in-one app on its configured gRPC port; the
/// patient service's own billing calls reach the same service in process.
#[tokio::test]
async fn all_in_one_serves_the_reference_grpc_call_on_the_configured_port() {
    let port = free_port();
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.billing.grpc_port = port
    })
    .await;
    assert_eq!(
        app.billing_grpc_addr,
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    );
    let mut grpc = BillingServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect");
    // A reference-style id (its request file sends "12345"-like ids, not UUIDs).
    let patient = (Uuid::new_v4().as_u128() % 10_000_000_000).to_string();
    let reply = grpc
        .create_billing_account(BillingRequest {
            patient_id: patient.clone(),
            name: "Jane Roe".to_owned(),
            email: "jane.roe@example.com".to_owned(),
        })
        .await
        .expect("CreateBillingAccount")
        .into_inner();
    assert_eq!(reply.status, "ACTIVE");
    assert!(Uuid::parse_str(&reply.account_id).is_ok(), "{reply:?}");
    // The account exists for REST clients too.
    let admin = app.admin_token().await;
    let found: serde_json::Value = app
        .client
        .get(app.url(&format!("/api/billing/accounts?patientId={patient}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("accounts")
        .json()
        .await
        .expect("json");
    assert_eq!(found[0]["id"], reply.account_id.as_str(), "{found}");
    // A patient created through the gateway gets its account from the same service.
    let created = app
        .client
        .post(app.url("/api/patients"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({
            "name": "Grpc Port", "email": format!("grpc-{}@example.com", Uuid::new_v4().simple()),
            "address": "1 Main St", "dateOfBirth": "1980-01-01", "registeredDate": "2024-01-01"
        }))
        .send()
        .await
        .expect("create patient");
    assert_eq!(created.status(), 201);
    let body: serde_json::Value = created.json().await.expect("json");
    assert!(
        body["billingAccountId"].is_string(),
        "billing answered the patient service: {body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn grpc_enabled_false_keeps_grpc_internal() {
    let port = free_port();
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.billing.grpc_port = port;
        s.billing.grpc_enabled = false;
    })
    .await;
    assert!(app.billing_grpc_addr.ip().is_loopback());
    assert_ne!(app.billing_grpc_addr.port(), port);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on the configured gRPC port"
    );
    app.stop().await;
}
