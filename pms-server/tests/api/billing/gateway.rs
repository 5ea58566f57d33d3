//! End to end through the gateway of the all-in-one app, with real users from the auth service:
//! the same REST scenarios as against the service itself, at `{gateway}/api/billing/…`.

use pms_proto::rest::Role;

use super::{Api, Tokens, access, ledger};
use crate::helpers::{BACKENDS, TestApp, spawn_app_on};

async fn tokens(app: &TestApp) -> Tokens {
    Tokens {
        admin: app.admin_token().await,
        billing: app.user_with_role(Role::Billing).await.2,
        clinician: app.user_with_role(Role::Clinician).await.2,
        viewer: app.user_with_role(Role::Viewer).await.2,
    }
}

#[tokio::test]
async fn the_ledger_works_through_the_gateway() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let tokens = tokens(&app).await;
        let api = Api::new(app.url("/api"));
        ledger::pay_flow(&api, &tokens).await;
        ledger::idempotent_payments(&api, &tokens).await;
        ledger::concurrent_payments(&api, &tokens).await;
        access::roles(&api, &tokens).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn the_gateway_publishes_the_billing_openapi_document() {
    let app = spawn_app_on(crate::helpers::Backend::Sqlite).await;
    let doc: serde_json::Value = app
        .client
        .get(app.url("/api-docs/billing"))
        .send()
        .await
        .expect("docs")
        .json()
        .await
        .expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths
            .keys()
            .any(|p| p.ends_with("/billing/invoices/{id}/payments")),
        "{doc}"
    );
    app.stop().await;
}
