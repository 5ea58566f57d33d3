//! The billing store's conformance suite: every test is one generic function over
//! `Arc<dyn BillingStore>`, run against SQLite (a temporary file) and PostgreSQL (a fresh database
//! from `PMS_TEST_DATABASE_URL`; missing → the test panics, never skips).

use std::sync::Arc;

use pms_proto::rest::{
    AccountStatus, CreateInvoiceRequest, CreatePaymentRequest, InvoiceLineRequest, InvoiceStatus,
    LedgerEntryKind, PaymentMethod, RefundRequest, Role,
};
use secrecy::SecretString;
use uuid::Uuid;

use super::*;
use crate::billing::ledger::Refusal;
use crate::billing::model::{Contact, NewAccount, NewInvoice, NewPayment, NewRefund, PatientRef};
use crate::store::{self, ServiceDb};

/// A connected store and whatever must outlive it.
struct Harness {
    store: Arc<dyn BillingStore>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = store::connect(ServiceDb::Billing, None, dir.path(), 5, &migrations())
        .await
        .expect("sqlite billing db");
    Harness {
        store: for_db(&db),
        _dir: Some(dir),
    }
}

async fn postgres() -> Harness {
    let url = SecretString::from(store::testing::fresh_postgres_url().await);
    let dir = std::env::temp_dir();
    let db = store::connect(ServiceDb::Billing, Some(&url), &dir, 12, &migrations())
        .await
        .expect("postgres billing db");
    Harness {
        store: for_db(&db),
        _dir: None,
    }
}

/// `name` as a test on each backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(super::sqlite().await.store).await })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(super::postgres().await.store).await })*
        }
    };
}

conformance!(
    accounts_are_one_per_patient,
    concurrent_account_creation_makes_one_account,
    invoice_lifecycle_pays_down_to_paid,
    invoice_numbers_are_sequential,
    forbidden_transitions_are_refused,
    refunds_reopen_invoices_and_never_exceed_payments,
    currency_is_fixed_by_the_first_invoice,
    account_status_gates_invoicing_and_payment,
    idempotency_keys_replay_or_refuse,
    concurrent_payments_never_double_spend,
    concurrent_same_key_payments_pay_once,
    writes_are_audited,
);

fn meta() -> AuditMeta {
    AuditMeta {
        actor_id: Some(Uuid::new_v4()),
        actor_role: Some(Role::Billing),
        client_ip: Some("127.0.0.1".to_owned()),
        request_id: Some(Uuid::new_v4().to_string()),
    }
}

fn ctx() -> WriteContext {
    WriteContext {
        meta: meta(),
        idempotency: None,
    }
}

fn keyed(actor_id: Uuid, key: &str, hash: &str) -> WriteContext {
    WriteContext {
        meta: AuditMeta {
            actor_id: Some(actor_id),
            ..meta()
        },
        idempotency: Some(IdempotencyClaim {
            actor_id,
            key: key.to_owned(),
            request_hash: hash.to_owned(),
        }),
    }
}

async fn account(store: &dyn BillingStore) -> BillingAccount {
    let new = NewAccount {
        patient: PatientRef::parse(&Uuid::new_v4().to_string()).expect("patient"),
        contact: Contact::parse("Jane Roe", "jane@example.com").expect("contact"),
    };
    store
        .ensure_account(&new, &meta())
        .await
        .expect("account")
        .0
}

fn new_invoice(currency: &str, prices: &[i64]) -> NewInvoice {
    let lines = prices
        .iter()
        .map(|p| InvoiceLineRequest {
            description: format!("item {p}"),
            quantity: 1,
            unit_price: *p,
        })
        .collect();
    NewInvoice::parse(&CreateInvoiceRequest {
        currency: currency.to_owned(),
        due_date: None,
        lines,
    })
    .expect("valid invoice")
}

/// An ISSUED invoice of `total` on `account`.
async fn issued(store: &dyn BillingStore, account: Uuid, total: i64) -> Invoice {
    let draft = store
        .create_invoice(account, &new_invoice("USD", &[total]), &ctx())
        .await
        .expect("invoice")
        .value;
    store
        .issue_invoice(draft.id, &ctx())
        .await
        .expect("issue")
        .value
}

fn pay(amount: i64) -> NewPayment {
    NewPayment::parse(&CreatePaymentRequest {
        amount,
        method: PaymentMethod::Card,
        reference: Some("slip".to_owned()),
    })
    .expect("valid payment")
}

fn refund(amount: Option<i64>) -> NewRefund {
    NewRefund::parse(&RefundRequest {
        amount,
        reason: Some("returned".to_owned()),
    })
    .expect("valid refund")
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, BillingError>) -> bool {
    matches!(r, Err(BillingError::Refused(Refusal::Conflict(_))))
}

fn is_unprocessable<T: std::fmt::Debug>(r: Result<T, BillingError>) -> bool {
    matches!(r, Err(BillingError::Refused(Refusal::Unprocessable(_))))
}

/// balance = issued − paid + refunded, computed three independent ways.
async fn assert_ledger_consistent(store: &dyn BillingStore, account_id: Uuid) {
    let account = store.account(account_id).await.expect("account");
    let statement = store.statement(account_id).await.expect("statement");
    let invoices = store.invoices(account_id, 1000).await.expect("invoices");
    let (mut issued_total, mut paid, mut refunded) = (0, 0, 0);
    for invoice in &invoices {
        if !matches!(invoice.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
            issued_total += invoice.total;
        }
        let payments = store.payments(invoice.id).await.expect("payments");
        let net: i64 = payments.iter().map(|p| p.amount - p.refunded).sum();
        assert_eq!(net, invoice.paid, "invoice {} paid", invoice.number);
        assert!((0..=invoice.total).contains(&invoice.paid));
        paid += payments.iter().map(|p| p.amount).sum::<i64>();
        refunded += payments.iter().map(|p| p.refunded).sum::<i64>();
    }
    assert_eq!(account.balance, issued_total - paid + refunded);
    assert_eq!(statement.balance, account.balance);
    assert_eq!(
        (statement.invoiced, statement.paid, statement.refunded),
        (issued_total, paid, refunded)
    );
    let mut running = 0;
    for (i, entry) in statement.entries.iter().enumerate() {
        running += entry.amount;
        assert_eq!(entry.seq, i as i64 + 1);
        assert_eq!(
            entry.balance, running,
            "running balance at entry {}",
            entry.seq
        );
    }
    assert_eq!(running, account.balance);
}

async fn accounts_are_one_per_patient(store: Arc<dyn BillingStore>) {
    let patient = Uuid::new_v4();
    let new = |id: String| NewAccount {
        patient: PatientRef::parse(&id).expect("patient"),
        contact: Contact::default(),
    };
    let (first, created) = store
        .ensure_account(&new(patient.to_string()), &meta())
        .await
        .expect("create");
    assert!(created);
    assert_eq!(first.status, AccountStatus::Active);
    assert_eq!((first.balance, first.currency.clone()), (0, None));
    assert_eq!(first.patient_id, patient.to_string());
    // Same patient, differently spelled UUID: the same account, not created again.
    let upper = patient.to_string().to_uppercase();
    let (again, created) = store
        .ensure_account(&new(upper), &meta())
        .await
        .expect("again");
    assert!(!created);
    assert_eq!(again, first);
    let by_patient = store
        .account_by_patient(&PatientRef::parse(&patient.to_string()).expect("p"))
        .await
        .expect("by patient");
    assert_eq!(by_patient, first);
    assert_eq!(store.account(first.id).await.expect("by id"), first);
    assert!(matches!(
        store.account(Uuid::new_v4()).await,
        Err(BillingError::NotFound("account"))
    ));
    // Free-form reference ids are accepted as they are.
    let (other, created) = store
        .ensure_account(&new("42".to_owned()), &meta())
        .await
        .expect("42");
    assert!(created);
    assert_ne!(other.id, first.id);
}

async fn concurrent_account_creation_makes_one_account(store: Arc<dyn BillingStore>) {
    let patient = PatientRef::parse(&Uuid::new_v4().to_string()).expect("patient");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, patient) = (store.clone(), patient.clone());
        tasks.spawn(async move {
            let new = NewAccount {
                patient,
                contact: Contact::default(),
            };
            store.ensure_account(&new, &meta()).await.expect("ensure")
        });
    }
    let results = tasks.join_all().await;
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    let id = results[0].0.id;
    assert!(results.iter().all(|(a, _)| a.id == id));
}

async fn invoice_lifecycle_pays_down_to_paid(store: Arc<dyn BillingStore>) {
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

async fn invoice_numbers_are_sequential(store: Arc<dyn BillingStore>) {
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

async fn forbidden_transitions_are_refused(store: Arc<dyn BillingStore>) {
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

async fn refunds_reopen_invoices_and_never_exceed_payments(store: Arc<dyn BillingStore>) {
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

async fn currency_is_fixed_by_the_first_invoice(store: Arc<dyn BillingStore>) {
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

async fn account_status_gates_invoicing_and_payment(store: Arc<dyn BillingStore>) {
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

async fn idempotency_keys_replay_or_refuse(store: Arc<dyn BillingStore>) {
    let store = store.as_ref();
    let acct = account(store).await;
    let invoice = issued(store, acct.id, 1000).await;
    let actor = Uuid::new_v4();
    let first = store
        .record_payment(invoice.id, &pay(300), &keyed(actor, "k-1", "h-a"))
        .await
        .expect("first");
    assert!(!first.replayed);
    let again = store
        .record_payment(invoice.id, &pay(300), &keyed(actor, "k-1", "h-a"))
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    assert_eq!(store.payments(invoice.id).await.expect("p").len(), 1);
    assert_eq!(store.account(acct.id).await.expect("a").balance, 700);
    assert!(matches!(
        store
            .record_payment(invoice.id, &pay(301), &keyed(actor, "k-1", "h-b"))
            .await,
        Err(BillingError::IdempotencyMismatch)
    ));
    // Keys are per caller: another user's "k-1" is a different key.
    let other = store
        .record_payment(invoice.id, &pay(300), &keyed(Uuid::new_v4(), "k-1", "h-a"))
        .await
        .expect("other caller");
    assert!(!other.replayed);
    assert_ne!(other.value.id, first.value.id);
    // A refused request stores nothing: the key stays usable.
    assert!(is_unprocessable(
        store
            .record_payment(invoice.id, &pay(5000), &keyed(actor, "k-2", "h-c"))
            .await
    ));
    let later = store
        .record_payment(invoice.id, &pay(400), &keyed(actor, "k-2", "h-d"))
        .await
        .expect("key unused by the refusal");
    assert!(!later.replayed);
    // Invoice creation replays too.
    let make = || keyed(actor, "k-inv", "h-inv");
    let inv1 = store
        .create_invoice(acct.id, &new_invoice("USD", &[5]), &make())
        .await
        .expect("i");
    let inv2 = store
        .create_invoice(acct.id, &new_invoice("USD", &[5]), &make())
        .await
        .expect("i");
    assert!(inv2.replayed);
    assert_eq!(inv1.value, inv2.value);
    assert_ledger_consistent(store, acct.id).await;
}

async fn concurrent_payments_never_double_spend(store: Arc<dyn BillingStore>) {
    let acct = account(store.as_ref()).await;
    let invoice = issued(store.as_ref(), acct.id, 100).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks.spawn(async move { store.record_payment(invoice.id, &pay(20), &ctx()).await });
    }
    let results = tasks.join_all().await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(BillingError::Refused(_))))
        .count();
    assert_eq!((ok, refused), (5, 5), "{results:?}");
    let paid = store.invoice(invoice.id).await.expect("invoice");
    assert_eq!(
        (paid.status, paid.paid, paid.balance),
        (InvoiceStatus::Paid, 100, 0)
    );
    assert_eq!(store.payments(invoice.id).await.expect("p").len(), 5);
    assert_eq!(store.account(acct.id).await.expect("a").balance, 0);
    assert_ledger_consistent(store.as_ref(), acct.id).await;
}

async fn concurrent_same_key_payments_pay_once(store: Arc<dyn BillingStore>) {
    let acct = account(store.as_ref()).await;
    let invoice = issued(store.as_ref(), acct.id, 1000).await;
    let actor = Uuid::new_v4();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let ctx = keyed(actor, "same-key", "same-hash");
            store
                .record_payment(invoice.id, &pay(100), &ctx)
                .await
                .expect("pay or replay")
        });
    }
    let results = tasks.join_all().await;
    assert_eq!(results.iter().filter(|w| !w.replayed).count(), 1);
    assert!(results.iter().all(|w| w.value == results[0].value));
    assert_eq!(store.payments(invoice.id).await.expect("p").len(), 1);
    assert_eq!(store.account(acct.id).await.expect("a").balance, 900);
}

async fn writes_are_audited(store: Arc<dyn BillingStore>) {
    let store = store.as_ref();
    let acct = account(store).await;
    let invoice = issued(store, acct.id, 250).await;
    let who = ctx();
    let payment = store
        .record_payment(invoice.id, &pay(250), &who)
        .await
        .expect("pay")
        .value;
    let denied = AuditRecord {
        action: "billing.refund.create",
        resource: "payment",
        resource_id: Some(payment.id),
        account_id: Some(acct.id),
        amount: None,
        outcome: Outcome::Denied,
    };
    store.record_audit(&denied, &meta()).await.expect("audit");
    let entries = store
        .audit_entries(Some(acct.id), 100)
        .await
        .expect("entries");
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("billing.refund.create", "DENIED"),
            ("billing.payment.create", "SUCCESS"),
            ("billing.invoice.issue", "SUCCESS"),
            ("billing.invoice.create", "SUCCESS"),
            ("billing.account.create", "SUCCESS"),
        ]
    );
    let pay_row = &entries[1];
    assert_eq!(pay_row.resource_id, Some(payment.id));
    assert_eq!(pay_row.amount, Some(250));
    assert_eq!(pay_row.actor_id, who.meta.actor_id);
    assert_eq!(pay_row.actor_role.as_deref(), Some("BILLING"));
    assert_eq!(pay_row.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(pay_row.request_id, who.meta.request_id);
    let all = store.audit_entries(None, 2).await.expect("all");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].action, "billing.refund.create");
}
