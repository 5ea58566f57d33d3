//! Conformance: the invoice lifecycle, invoice numbers, forbidden transitions, refunds, the
//! account currency and account status rules.

use std::sync::Arc;

use super::*;

pub(super) async fn invoice_lifecycle_pays_down_to_paid(store: Arc<dyn BillingStore>) {
    let store = store.as_ref();
    let acct = account(store).await;
    let draft = store
        .create_invoice(acct.id, &new_invoice("USD", &[6000, 4000]), &ctx())
        .await
        .expect("create")
        .value;
    assert_eq!(draft.status, InvoiceStatus::Draft);
    assert_eq!((draft.total, draft.paid, draft.balance), (10_000, 0, 0));
    assert_eq!(draft.lines.len(), 2);
    assert_eq!(draft.lines[0].amount, 6000);
    assert!(draft.number.starts_with("INV-"));
    assert_eq!(
        store.account(acct.id).await.expect("a").balance,
        0,
        "drafts are not owed"
    );

    let issued = store
        .issue_invoice(draft.id, &ctx())
        .await
        .expect("issue")
        .value;
    assert_eq!(issued.status, InvoiceStatus::Issued);
    assert!(issued.issued_at.is_some());
    assert_eq!(issued.balance, 10_000);
    assert_eq!(store.account(acct.id).await.expect("a").balance, 10_000);

    let first = store
        .record_payment(draft.id, &pay(2500), &ctx())
        .await
        .expect("pay")
        .value;
    assert_eq!(
        (first.amount, first.refunded, first.currency.as_str()),
        (2500, 0, "USD")
    );
    assert_eq!(first.reference.as_deref(), Some("slip"));
    let partly = store.invoice(draft.id).await.expect("invoice");
    assert_eq!(partly.status, InvoiceStatus::PartiallyPaid);
    assert_eq!((partly.paid, partly.balance), (2500, 7500));

    assert!(is_unprocessable(
        store.record_payment(draft.id, &pay(7501), &ctx()).await
    ));
    store
        .record_payment(draft.id, &pay(7500), &ctx())
        .await
        .expect("pay rest");
    let paid = store.invoice(draft.id).await.expect("invoice");
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!((paid.paid, paid.balance), (10_000, 0));
    assert!(is_conflict(
        store.record_payment(draft.id, &pay(1), &ctx()).await
    ));

    let payments = store.payments(draft.id).await.expect("payments");
    assert_eq!(
        payments.iter().map(|p| p.amount).collect::<Vec<_>>(),
        [2500, 7500]
    );
    assert_eq!(store.payment(first.id).await.expect("payment"), first);
    assert_ledger_consistent(store, acct.id).await;
    let kinds: Vec<_> = store
        .statement(acct.id)
        .await
        .expect("statement")
        .entries
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            LedgerEntryKind::InvoiceIssued,
            LedgerEntryKind::Payment,
            LedgerEntryKind::Payment
        ]
    );
}

pub(super) async fn invoice_numbers_are_sequential(store: Arc<dyn BillingStore>) {
    let store = store.as_ref();
    let (a, b) = (account(store).await, account(store).await);
    let mut numbers = Vec::new();
    for acct in [&a, &b, &a] {
        let invoice = store
            .create_invoice(acct.id, &new_invoice("USD", &[100]), &ctx())
            .await
            .expect("create")
            .value;
        let n: i64 = invoice
            .number
            .trim_start_matches("INV-")
            .parse()
            .expect("number");
        numbers.push(n);
    }
    assert_eq!(numbers, [numbers[0], numbers[0] + 1, numbers[0] + 2]);
    let listed = store.invoices(a.id, 100).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed[0].number > listed[1].number, "newest first");
    assert!(listed.iter().all(|i| i.lines.len() == 1));
    assert!(matches!(
        store.invoices(Uuid::new_v4(), 10).await,
        Err(BillingError::NotFound("account"))
    ));
}

pub(super) async fn forbidden_transitions_are_refused(store: Arc<dyn BillingStore>) {
    let store = store.as_ref();
    let acct = account(store).await;
    let draft = store
        .create_invoice(acct.id, &new_invoice("USD", &[1000]), &ctx())
        .await
        .expect("create")
        .value;
    assert!(
        is_conflict(store.record_payment(draft.id, &pay(100), &ctx()).await),
        "pay DRAFT"
    );
    store.issue_invoice(draft.id, &ctx()).await.expect("issue");
    assert!(
        is_conflict(store.issue_invoice(draft.id, &ctx()).await),
        "issue twice"
    );
    store
        .record_payment(draft.id, &pay(1000), &ctx())
        .await
        .expect("pay");
    assert!(
        is_conflict(store.void_invoice(draft.id, &ctx()).await),
        "void PAID"
    );

    let unpaid = issued(store, acct.id, 300).await;
    let void = store
        .void_invoice(unpaid.id, &ctx())
        .await
        .expect("void")
        .value;
    assert_eq!((void.status, void.balance), (InvoiceStatus::Void, 0));
    assert!(void.voided_at.is_some());
    assert!(
        is_conflict(store.void_invoice(unpaid.id, &ctx()).await),
        "void twice"
    );
    assert!(
        is_conflict(store.record_payment(unpaid.id, &pay(10), &ctx()).await),
        "pay VOID"
    );
    assert!(
        is_conflict(store.issue_invoice(unpaid.id, &ctx()).await),
        "issue VOID"
    );

    let draft2 = store
        .create_invoice(acct.id, &new_invoice("USD", &[50]), &ctx())
        .await
        .expect("create")
        .value;
    let voided_draft = store
        .void_invoice(draft2.id, &ctx())
        .await
        .expect("void draft");
    assert_eq!(voided_draft.value.status, InvoiceStatus::Void);
    assert!(matches!(
        store.record_payment(Uuid::new_v4(), &pay(1), &ctx()).await,
        Err(BillingError::NotFound("invoice"))
    ));
    assert_eq!(store.account(acct.id).await.expect("a").balance, 0);
    assert_ledger_consistent(store, acct.id).await;
}

pub(super) async fn refunds_reopen_invoices_and_never_exceed_payments(
    store: Arc<dyn BillingStore>,
) {
    let store = store.as_ref();
    let acct = account(store).await;
    let invoice = issued(store, acct.id, 1000).await;
    let p1 = store
        .record_payment(invoice.id, &pay(600), &ctx())
        .await
        .expect("p1")
        .value;
    store
        .record_payment(invoice.id, &pay(400), &ctx())
        .await
        .expect("p2");
    assert!(is_unprocessable(
        store
            .refund_payment(p1.id, &refund(Some(601)), &ctx())
            .await
    ));
    let r = store
        .refund_payment(p1.id, &refund(Some(200)), &ctx())
        .await
        .expect("r")
        .value;
    assert_eq!(
        (r.amount, r.invoice_id, r.currency.as_str()),
        (200, invoice.id, "USD")
    );
    assert_eq!(r.reason.as_deref(), Some("returned"));
    let reopened = store.invoice(invoice.id).await.expect("invoice");
    assert_eq!(
        (reopened.status, reopened.paid),
        (InvoiceStatus::PartiallyPaid, 800)
    );
    assert_eq!(store.account(acct.id).await.expect("a").balance, 200);
    // No amount: refunds whatever is left of the payment.
    let rest = store
        .refund_payment(p1.id, &refund(None), &ctx())
        .await
        .expect("rest")
        .value;
    assert_eq!(rest.amount, 400);
    assert!(is_conflict(
        store.refund_payment(p1.id, &refund(None), &ctx()).await
    ));
    assert_eq!(store.payment(p1.id).await.expect("p1").refunded, 600);
    assert!(
        is_conflict(store.void_invoice(invoice.id, &ctx()).await),
        "still partly paid"
    );
    let p2 = store.payments(invoice.id).await.expect("payments")[1].clone();
    store
        .refund_payment(p2.id, &refund(None), &ctx())
        .await
        .expect("refund p2");
    assert_eq!(
        store.invoice(invoice.id).await.expect("i").status,
        InvoiceStatus::Issued
    );
    // Refunds first, then void: allowed.
    store
        .void_invoice(invoice.id, &ctx())
        .await
        .expect("void after refunds");
    assert!(matches!(
        store
            .refund_payment(Uuid::new_v4(), &refund(None), &ctx())
            .await,
        Err(BillingError::NotFound("payment"))
    ));
    assert_eq!(store.account(acct.id).await.expect("a").balance, 0);
    assert_ledger_consistent(store, acct.id).await;
}

pub(super) async fn currency_is_fixed_by_the_first_invoice(store: Arc<dyn BillingStore>) {
    let store = store.as_ref();
    let acct = account(store).await;
    store
        .create_invoice(acct.id, &new_invoice("eur", &[100]), &ctx())
        .await
        .expect("first");
    assert_eq!(
        store.account(acct.id).await.expect("a").currency.as_deref(),
        Some("EUR")
    );
    assert!(is_unprocessable(
        store
            .create_invoice(acct.id, &new_invoice("USD", &[100]), &ctx())
            .await
    ));
    assert!(matches!(
        store
            .create_invoice(Uuid::new_v4(), &new_invoice("EUR", &[1]), &ctx())
            .await,
        Err(BillingError::NotFound("account"))
    ));
}

pub(super) async fn account_status_gates_invoicing_and_payment(store: Arc<dyn BillingStore>) {
    let store = store.as_ref();
    let acct = account(store).await;
    let invoice = issued(store, acct.id, 500).await;
    let suspended = store
        .set_account_status(acct.id, AccountStatus::Suspended, &meta())
        .await
        .expect("suspend");
    assert_eq!(suspended.status, AccountStatus::Suspended);
    assert!(is_conflict(
        store
            .create_invoice(acct.id, &new_invoice("USD", &[1]), &ctx())
            .await
    ));
    assert!(is_conflict(
        store
            .set_account_status(acct.id, AccountStatus::Closed, &meta())
            .await
    ));
    // Suspended accounts still pay what they owe.
    store
        .record_payment(invoice.id, &pay(500), &ctx())
        .await
        .expect("pay");
    let closed = store
        .set_account_status(acct.id, AccountStatus::Closed, &meta())
        .await
        .expect("close settled account");
    assert_eq!(closed.status, AccountStatus::Closed);
    let p = store.payments(invoice.id).await.expect("payments")[0].clone();
    store
        .refund_payment(p.id, &refund(Some(100)), &ctx())
        .await
        .expect("refund on closed");
    assert!(is_conflict(
        store.record_payment(invoice.id, &pay(100), &ctx()).await
    ));
    let reopened = store
        .set_account_status(acct.id, AccountStatus::Active, &meta())
        .await
        .expect("reopen");
    assert_eq!(
        (reopened.status, reopened.balance),
        (AccountStatus::Active, 100)
    );
    assert!(matches!(
        store
            .set_account_status(Uuid::new_v4(), AccountStatus::Active, &meta())
            .await,
        Err(BillingError::NotFound("account"))
    ));
}
