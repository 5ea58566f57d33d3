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
