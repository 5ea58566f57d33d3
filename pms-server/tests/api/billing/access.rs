//! Who may do what (DESIGN §6): ADMIN and BILLING write, CLINICIAN and VIEWER read, only ADMIN
//! reads the audit log, no token is 401 — and every refusal is audited. Also the service's own
//! probes, metrics and OpenAPI document.

use serde_json::json;

use super::{Api, Tokens, s, spawn_billing};
use crate::helpers::BACKENDS;

#[tokio::test]
async fn roles_are_enforced_and_audited() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        roles(&app.api, &app.tokens).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn tokens_are_required_and_verified() {
    let app = spawn_billing(crate::helpers::Backend::Sqlite).await;
    let api = &app.api;
    let response = api
        .client
        .get(api.url("/billing/accounts"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let forged = api.get("/billing/accounts", "e30.e30.c2ln").await;
    assert_eq!(forged.status, 401, "{forged:?}");
    // A token signed by another issuer's key (unknown kid) is refused too.
    let other = super::Issuer::start(&pms_server::config::Settings::default()).await;
    let (_, foreign) = other.user(pms_proto::rest::Role::Admin);
    assert_eq!(api.get("/billing/accounts", &foreign).await.status, 401);
    app.stop().await;
}

#[tokio::test]
async fn probes_metrics_and_openapi_are_served() {
    let app = spawn_billing(crate::helpers::Backend::Postgres).await;
    let api = &app.api;
    for probe in ["/health/live", "/health/ready"] {
        let reply = api.client.get(api.url(probe)).send().await.expect("probe");
        assert_eq!(reply.status(), 200, "{probe}");
        let body: serde_json::Value = reply.json().await.expect("json");
        assert_eq!(body["status"], "UP");
    }
    let doc: serde_json::Value = api
        .client
        .get(api.url("/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(
        doc["paths"]["/billing/invoices/{id}/payments"]["post"].is_object(),
        "{doc}"
    );
    api.get("/billing/accounts", &app.tokens.viewer).await;
    let metrics = api
        .client
        .get(api.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("service=\"billing\""), "{metrics}");
    app.stop().await;
}

/// VIEWER and CLINICIAN read but cannot write (403, audited DENIED); BILLING writes and refunds;
/// only ADMIN reads the audit log.
pub async fn roles(api: &Api, tokens: &Tokens) {
    let account = api.new_account(&tokens.billing).await;
    let account_id = s(&account, "id");
    let invoice = api.issued_invoice(&tokens.billing, account_id, 1000).await;
    let invoice_id = s(&invoice, "id");

    for reader in [
        &tokens.viewer,
        &tokens.clinician,
        &tokens.admin,
        &tokens.billing,
    ] {
        for path in [
            format!("/billing/accounts/{account_id}"),
            format!("/billing/accounts/{account_id}/invoices"),
            format!("/billing/accounts/{account_id}/statement"),
            format!("/billing/invoices/{invoice_id}"),
            format!("/billing/invoices/{invoice_id}/payments"),
        ] {
            assert_eq!(api.get(&path, reader).await.status, 200, "{path}");
        }
    }
    for writer_only in [&tokens.viewer, &tokens.clinician] {
        let pay = api.pay(writer_only, invoice_id, 100).await;
        assert_eq!(pay.status, 403, "{pay:?}");
        assert_eq!(pay.body["status"], 403);
        let create = api
            .post(
                &format!("/billing/accounts/{account_id}/invoices"),
                writer_only,
                json!({
                    "currency": "USD",
                    "lines": [{ "description": "x", "quantity": 1, "unitPrice": 1 }]
                }),
            )
            .await;
        assert_eq!(create.status, 403);
        // The role check comes before validation: a bad body is still 403.
        let bad = api
            .post(
                &format!("/billing/invoices/{invoice_id}/payments"),
                writer_only,
                json!({}),
            )
            .await;
        assert_eq!(bad.status, 403);
        let suspend = api
            .patch(
                &format!("/billing/accounts/{account_id}"),
                writer_only,
                json!({ "status": "SUSPENDED" }),
            )
            .await;
        assert_eq!(suspend.status, 403);
        assert_eq!(api.get("/billing/audit", writer_only).await.status, 403);
    }
    let payment = api.pay(&tokens.admin, invoice_id, 300).await;
    assert_eq!(payment.status, 201, "ADMIN pays: {payment:?}");
    let refund_path = format!("/billing/payments/{}/refund", s(&payment.body, "id"));
    assert_eq!(
        api.post(&refund_path, &tokens.viewer, json!({}))
            .await
            .status,
        403
    );
    let refund = api.post(&refund_path, &tokens.billing, json!({})).await;
    assert_eq!(refund.status, 201, "BILLING refunds: {refund:?}");
    assert_eq!(refund.body["amount"], 300, "no amount: all that is left");
    assert_eq!(api.get("/billing/audit", &tokens.billing).await.status, 403);

    let audit = api
        .get(
            &format!("/billing/audit?accountId={account_id}&limit=1000"),
            &tokens.admin,
        )
        .await;
    assert_eq!(audit.status, 200, "{audit:?}");
    let rows = audit.body.as_array().expect("rows");
    let has = |action: &str, outcome: &str, role: &str| {
        rows.iter()
            .any(|r| r["action"] == action && r["outcome"] == outcome && r["actorRole"] == role)
    };
    assert!(
        has("billing.payment.create", "SUCCESS", "ADMIN"),
        "{rows:?}"
    );
    assert!(
        has("billing.refund.create", "SUCCESS", "BILLING"),
        "{rows:?}"
    );
    assert!(has("billing.account.read", "SUCCESS", "VIEWER"), "{rows:?}");
    assert!(
        has("billing.account.update", "DENIED", "CLINICIAN"),
        "{rows:?}"
    );
    assert!(
        has("billing.invoice.issue", "SUCCESS", "BILLING"),
        "{rows:?}"
    );
    let text = audit.body.to_string();
    assert!(!text.contains("slip-1"), "audit rows carry no free text");
    let patched = api
        .patch(
            &format!("/billing/accounts/{account_id}"),
            &tokens.billing,
            json!({ "status": "SUSPENDED" }),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["status"], "SUSPENDED");
    let close = api
        .patch(
            &format!("/billing/accounts/{account_id}"),
            &tokens.admin,
            json!({ "status": "CLOSED" }),
        )
        .await;
    assert_eq!(close.status, 409, "balance 1000 is open: {close:?}");
}

/// A listing of accounts reveals every listed account's patient: one audit row per account (in
/// one insert), each naming the account and, through it, the patient.
#[tokio::test]
async fn account_listings_are_audited_once_per_account() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        let (api, tokens) = (&app.api, &app.tokens);
        let first = api.new_account(&tokens.billing).await;
        let second = api.new_account(&tokens.billing).await;
        let listed = api
            .get("/billing/accounts?limit=1000", &tokens.viewer)
            .await;
        assert_eq!(listed.status, 200, "{listed:?}");
        assert_eq!(listed.body.as_array().expect("accounts").len(), 2);
        for account in [&first, &second] {
            let audit = api
                .get(
                    &format!("/billing/audit?accountId={}&limit=100", s(account, "id")),
                    &tokens.admin,
                )
                .await;
            let rows: Vec<&serde_json::Value> = audit
                .body
                .as_array()
                .expect("rows")
                .iter()
                .filter(|r| r["action"] == "billing.account.list")
                .collect();
            assert_eq!(rows.len(), 1, "{backend:?}: {rows:?}");
            assert_eq!(rows[0]["outcome"], "SUCCESS");
            assert_eq!(rows[0]["actorRole"], "VIEWER");
            assert_eq!(rows[0]["patientId"], account["patientId"]);
        }
        app.stop().await;
    }
}
