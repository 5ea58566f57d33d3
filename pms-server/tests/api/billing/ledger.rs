//! The ledger over REST: the invoice → payment flow, overpayment, idempotent replays, forbidden
//! transitions, refunds, statements, and concurrent payments — on both backends. Each scenario
//! takes an [`Api`] and [`Tokens`], so it also runs through the gateway.

use serde_json::{Value, json};

use super::{Api, Tokens, s, spawn_billing};
use crate::helpers::BACKENDS;

#[tokio::test]
async fn invoices_are_paid_down_to_paid_and_never_overpaid() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        pay_flow(&app.api, &app.tokens).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn payments_replay_with_the_same_idempotency_key() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        idempotent_payments(&app.api, &app.tokens).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn forbidden_transitions_are_refused() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        forbidden_transitions(&app.api, &app.tokens).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn refunds_and_the_statement_keep_the_balance() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        refunds_and_statement(&app.api, &app.tokens).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn concurrent_payments_on_one_invoice_never_double_spend() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        concurrent_payments(&app.api, &app.tokens).await;
        app.stop().await;
    }
}

/// Create → issue → pay part (PARTIALLY_PAID) → overpay (422) → pay the rest (PAID) → pay more
/// (409); the account balance follows.
pub async fn pay_flow(api: &Api, tokens: &Tokens) {
    let t = &tokens.billing;
    let account = api.new_account(t).await;
    let account_id = s(&account, "id");
    assert_eq!(account["status"], "ACTIVE");
    assert_eq!(account["balance"], 0);
    let found = api
        .get(
            &format!("/billing/accounts?patientId={}", s(&account, "patientId")),
            t,
        )
        .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body, json!([account]));

    let draft = api.new_invoice(t, account_id, &[7000, 3000]).await;
    assert_eq!(draft["status"], "DRAFT");
    assert_eq!(
        (draft["total"].as_i64(), draft["paid"].as_i64()),
        (Some(10_000), Some(0))
    );
    assert_eq!(draft["currency"], "USD");
    assert_eq!(
        draft["lines"][1],
        json!({"description": "Item 3000", "quantity": 1, "unitPrice": 3000, "amount": 3000})
    );
    assert!(s(&draft, "number").starts_with("INV-"), "{draft}");
    let invoice_id = s(&draft, "id");
    let issued = api
        .post(
            &format!("/billing/invoices/{invoice_id}/issue"),
            t,
            json!(null),
        )
        .await;
    assert_eq!(issued.status, 200, "{issued:?}");
    assert_eq!(issued.body["status"], "ISSUED");
    assert_eq!(issued.body["balance"], 10_000);

    let part = api.pay(t, invoice_id, 4000).await;
    assert_eq!(part.status, 201, "{part:?}");
    assert_eq!(part.body["amount"], 4000);
    assert_eq!(part.body["method"], "CARD");
    assert_eq!(part.body["reference"], "slip-1");
    assert_eq!(part.body["invoiceId"], invoice_id);
    let invoice = api.get(&format!("/billing/invoices/{invoice_id}"), t).await;
    assert_eq!(invoice.body["status"], "PARTIALLY_PAID");
    assert_eq!(
        (
            invoice.body["paid"].as_i64(),
            invoice.body["balance"].as_i64()
        ),
        (Some(4000), Some(6000))
    );

    let over = api.pay(t, invoice_id, 6001).await;
    assert_eq!(over.status, 422, "{over:?}");
    assert_eq!(over.body["status"], 422);
    assert!(s(&over.body, "detail").contains("overpayment"), "{over:?}");

    let rest = api.pay(t, invoice_id, 6000).await;
    assert_eq!(rest.status, 201, "{rest:?}");
    let paid = api.get(&format!("/billing/invoices/{invoice_id}"), t).await;
    assert_eq!(paid.body["status"], "PAID");
    assert_eq!(paid.body["balance"], 0);
    let more = api.pay(t, invoice_id, 1).await;
    assert_eq!(more.status, 409, "{more:?}");

    let payments = api
        .get(&format!("/billing/invoices/{invoice_id}/payments"), t)
        .await;
    assert_eq!(payments.status, 200);
    let amounts: Vec<i64> = payments
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(amounts, [4000, 6000]);
    let account = api.get(&format!("/billing/accounts/{account_id}"), t).await;
    assert_eq!(
        (
            account.body["balance"].as_i64(),
            account.body["currency"].as_str()
        ),
        (Some(0), Some("USD"))
    );
    let invoices = api
        .get(&format!("/billing/accounts/{account_id}/invoices"), t)
        .await;
    assert_eq!(invoices.body.as_array().map(Vec::len), Some(1));
}

/// Same key + same body → the same payment (201, `Idempotent-Replayed`), balance unchanged;
/// same key + different body → 422.
pub async fn idempotent_payments(api: &Api, tokens: &Tokens) {
    let t = &tokens.billing;
    let account = api.new_account(t).await;
    let account_id = s(&account, "id");
    let invoice = api.issued_invoice(t, account_id, 5000).await;
    let path = format!("/billing/invoices/{}/payments", s(&invoice, "id"));
    let key = format!("pay-{}", uuid::Uuid::new_v4());
    let body = json!({ "amount": 1500, "method": "CASH" });
    let first = api.post_keyed(&path, t, &key, body.clone()).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = api.post_keyed(&path, t, &key, body.clone()).await;
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.body, first.body, "same payment");
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let balance = api.get(&format!("/billing/accounts/{account_id}"), t).await;
    assert_eq!(balance.body["balance"], 3500, "paid once");
    let payments = api.get(&path, t).await;
    assert_eq!(payments.body.as_array().map(Vec::len), Some(1));

    let different = api
        .post_keyed(&path, t, &key, json!({ "amount": 1600, "method": "CASH" }))
        .await;
    assert_eq!(different.status, 422, "{different:?}");
    assert!(s(&different.body, "detail").contains("Idempotency-Key"));
    let bad_key = api.post_keyed(&path, t, "has space", body).await;
    assert_eq!(bad_key.status, 400, "{bad_key:?}");
    let balance = api.get(&format!("/billing/accounts/{account_id}"), t).await;
    assert_eq!(balance.body["balance"], 3500);
}

/// Pay a DRAFT, pay/issue a VOID, void a paid invoice, refund more than paid: all refused.
pub async fn forbidden_transitions(api: &Api, tokens: &Tokens) {
    let t = &tokens.billing;
    let account = api.new_account(t).await;
    let account_id = s(&account, "id");
    let draft = api.new_invoice(t, account_id, &[1000]).await;
    let draft_id = s(&draft, "id");
    assert_eq!(api.pay(t, draft_id, 100).await.status, 409, "pay DRAFT");

    let voided = api
        .post(
            &format!("/billing/invoices/{draft_id}/void"),
            t,
            json!(null),
        )
        .await;
    assert_eq!(voided.status, 200, "{voided:?}");
    assert_eq!(voided.body["status"], "VOID");
    assert_eq!(api.pay(t, draft_id, 100).await.status, 409, "pay VOID");
    let reissue = api
        .post(
            &format!("/billing/invoices/{draft_id}/issue"),
            t,
            json!(null),
        )
        .await;
    assert_eq!(reissue.status, 409, "issue VOID");

    let invoice = api.issued_invoice(t, account_id, 800).await;
    let invoice_id = s(&invoice, "id");
    let payment = api.pay(t, invoice_id, 800).await;
    assert_eq!(payment.status, 201);
    let void_paid = api
        .post(
            &format!("/billing/invoices/{invoice_id}/void"),
            t,
            json!(null),
        )
        .await;
    assert_eq!(void_paid.status, 409, "void PAID: {void_paid:?}");
    let refund = api
        .post(
            &format!("/billing/payments/{}/refund", s(&payment.body, "id")),
            t,
            json!({ "amount": 801 }),
        )
        .await;
    assert_eq!(refund.status, 422, "refund > paid: {refund:?}");

    let unknown = api.pay(t, &uuid::Uuid::new_v4().to_string(), 1).await;
    assert_eq!(unknown.status, 404);
    let not_uuid = api.get("/billing/invoices/not-a-uuid", t).await;
    assert_eq!(not_uuid.status, 400);
    let bad_lines = api
        .post(
            &format!("/billing/accounts/{account_id}/invoices"),
            t,
            json!({
                "currency": "US",
                "lines": [{ "description": "", "quantity": 0, "unitPrice": 5 }]
            }),
        )
        .await;
    assert_eq!(bad_lines.status, 400);
    let fields: Vec<&str> = bad_lines.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        ["currency", "lines[0].description", "lines[0].quantity"]
    );
    // Three letters are not enough: the code must be in ISO 4217.
    let made_up = api
        .post(
            &format!("/billing/accounts/{account_id}/invoices"),
            t,
            json!({
                "currency": "XYZ",
                "lines": [{ "description": "x", "quantity": 1, "unitPrice": 5 }]
            }),
        )
        .await;
    assert_eq!(made_up.status, 400, "{made_up:?}");
    assert_eq!(
        made_up.body["errors"][0]["field"], "currency",
        "{made_up:?}"
    );
    let unknown_field = api
        .post(
            &format!("/billing/invoices/{invoice_id}/payments"),
            t,
            json!({ "amount": 1, "method": "CASH", "tip": 5 }),
        )
        .await;
    assert_eq!(unknown_field.status, 400, "{unknown_field:?}");
    let bad_method = api
        .post(
            &format!("/billing/invoices/{invoice_id}/payments"),
            t,
            json!({ "amount": 1, "method": "BITCOIN" }),
        )
        .await;
    assert_eq!(bad_method.status, 400);
    let other_currency = api
        .post(
            &format!("/billing/accounts/{account_id}/invoices"),
            t,
            json!({
                "currency": "EUR",
                "lines": [{ "description": "x", "quantity": 1, "unitPrice": 5 }]
            }),
        )
        .await;
    assert_eq!(other_currency.status, 422, "{other_currency:?}");
}

/// A partial refund reopens a PAID invoice; the statement's running balance ends at the account
/// balance, which equals invoiced − paid + refunded.
pub async fn refunds_and_statement(api: &Api, tokens: &Tokens) {
    let t = &tokens.billing;
    let account = api.new_account(t).await;
    let account_id = s(&account, "id");
    let invoice = api.issued_invoice(t, account_id, 2000).await;
    let invoice_id = s(&invoice, "id");
    let payment = api.pay(t, invoice_id, 2000).await.body;
    let refund = api
        .post_keyed(
            &format!("/billing/payments/{}/refund", s(&payment, "id")),
            t,
            "refund-1",
            json!({ "amount": 500, "reason": "overcharged" }),
        )
        .await;
    assert_eq!(refund.status, 201, "{refund:?}");
    assert_eq!(refund.body["amount"], 500);
    assert_eq!(refund.body["reason"], "overcharged");
    let reopened = api
        .get(&format!("/billing/invoices/{invoice_id}"), t)
        .await
        .body;
    assert_eq!(
        (reopened["status"].as_str(), reopened["paid"].as_i64()),
        (Some("PARTIALLY_PAID"), Some(1500))
    );
    let payment_now = api
        .get(&format!("/billing/payments/{}", s(&payment, "id")), t)
        .await
        .body;
    assert_eq!(payment_now["refunded"], 500);

    let statement = api
        .get(&format!("/billing/accounts/{account_id}/statement"), t)
        .await;
    assert_eq!(statement.status, 200, "{statement:?}");
    let st = statement.body;
    assert_eq!(
        (
            st["invoiced"].as_i64(),
            st["paid"].as_i64(),
            st["refunded"].as_i64()
        ),
        (Some(2000), Some(2000), Some(500))
    );
    assert_eq!(st["balance"], 500);
    let entries = st["entries"].as_array().expect("entries");
    let summary: Vec<(String, i64, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().expect("kind").to_owned(),
                e["amount"].as_i64().expect("amount"),
                e["balance"].as_i64().expect("balance"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("INVOICE_ISSUED".to_owned(), 2000, 2000),
            ("PAYMENT".to_owned(), -2000, 0),
            ("REFUND".to_owned(), 500, 500),
        ]
    );
    assert!(
        entries
            .iter()
            .all(|e| e["invoiceNumber"] == invoice["number"])
    );
    let account = api
        .get(&format!("/billing/accounts/{account_id}"), t)
        .await
        .body;
    assert_eq!(account["balance"], 500);
}

/// 10 concurrent payments of 20 on an invoice of 100: exactly 5 succeed, the rest are refused,
/// and the invoice is paid exactly once over.
pub async fn concurrent_payments(api: &Api, tokens: &Tokens) {
    let t = &tokens.billing;
    let account = api.new_account(t).await;
    let account_id = s(&account, "id").to_owned();
    let invoice = api.issued_invoice(t, &account_id, 100).await;
    let invoice_id = s(&invoice, "id").to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (api, t, invoice_id) = (api.clone(), t.clone(), invoice_id.clone());
        tasks.spawn(async move { api.pay(&t, &invoice_id, 20).await.status });
    }
    let mut statuses = tasks.join_all().await;
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 201 | 409 | 422)),
        "{statuses:?}"
    );
    let invoice: Value = api
        .get(&format!("/billing/invoices/{invoice_id}"), t)
        .await
        .body;
    assert_eq!(
        (invoice["status"].as_str(), invoice["paid"].as_i64()),
        (Some("PAID"), Some(100))
    );
    let account = api
        .get(&format!("/billing/accounts/{account_id}"), t)
        .await
        .body;
    assert_eq!(account["balance"], 0);
    let statement = api
        .get(&format!("/billing/accounts/{account_id}/statement"), t)
        .await
        .body;
    assert_eq!(statement["entries"].as_array().map(Vec::len), Some(6));
    assert_eq!(statement["paid"], 100);
}
