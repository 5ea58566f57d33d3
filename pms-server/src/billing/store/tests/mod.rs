//! The billing store's conformance suite: every test is one generic function over
//! `Arc<dyn BillingStore>`, run against SQLite (a temporary file) and PostgreSQL (a fresh database
//! from `PMS_TEST_DATABASE_URL`; missing → the test panics, never skips). Shared fixtures and the
//! ledger-consistency check live here; the tests in [`ledger`] and [`safety`].

mod events;
mod ledger;
mod safety;

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
use crate::events::relay::RelayWaker;
use crate::store::{self, ServiceDb};

/// A connected store and whatever must outlive it.
struct Harness {
    store: Arc<dyn BillingStore>,
    db: Db,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = store::connect(ServiceDb::Billing, None, dir.path(), 5, &migrations())
        .await
        .expect("sqlite billing db");
    Harness {
        store: for_db(&db, RelayWaker::default()),
        db,
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
        store: for_db(&db, RelayWaker::default()),
        db,
        _dir: None,
    }
}

/// `name` as a test on each backend.
macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$module::$name(super::sqlite().await.store).await })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$module::$name(super::postgres().await.store).await })*
        }
    };
}

/// `name` as a test on each backend, given the database as well as the store.
macro_rules! conformance_with_db {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod with_db_on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let h = super::sqlite().await;
                super::$module::$name(h.store.clone(), h.db.clone()).await
            })*
        }
        mod with_db_on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let h = super::postgres().await;
                super::$module::$name(h.store.clone(), h.db.clone()).await
            })*
        }
    };
}

conformance_with_db!(
    events::writes_enqueue_billing_events,
    safety::a_batch_of_account_calls_answers_each_as_alone,
);

conformance!(
    events::patient_events_manage_accounts,
    events::a_batch_of_patient_events_is_applied_in_order_once_each,
    safety::accounts_are_one_per_patient,
    safety::concurrent_account_creation_makes_one_account,
    ledger::invoice_lifecycle_pays_down_to_paid,
    ledger::invoice_numbers_are_sequential,
    ledger::forbidden_transitions_are_refused,
    ledger::refunds_reopen_invoices_and_never_exceed_payments,
    ledger::currency_is_fixed_by_the_first_invoice,
    ledger::account_status_gates_invoicing_and_payment,
    safety::idempotency_keys_replay_or_refuse,
    safety::concurrent_payments_never_double_spend,
    safety::concurrent_same_key_payments_pay_once,
    safety::writes_are_audited,
);

/// PostgreSQL's one-statement batch of account calls while another transaction (billing's
/// consumer, for the same patient's event) commits that patient's account: the statement skips
/// the conflicting row and its snapshot does not hold it, so it is read back after the
/// statement — existing, not created — and the other call still reports its creation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_committed_while_a_batch_runs_is_read_back() {
    let h = postgres().await;
    let Db::Postgres(pool) = &h.db else {
        panic!("a PostgreSQL harness has a PostgreSQL pool")
    };
    let (p, q) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let theirs = Uuid::new_v4();
    let mut other = pool.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO accounts (id, patient_id, name, email, status, balance, created_at, \
         updated_at) VALUES ($1, $2, 'Pat', 'pat@example.com', 'ACTIVE', 0, now(), now())",
    )
    .bind(theirs)
    .bind(&p)
    .execute(&mut *other)
    .await
    .expect("insert");
    let new = |id: &str| NewAccount {
        patient: PatientRef::parse(id).expect("patient"),
        contact: Contact::parse("Pat", "pat@example.com").expect("contact"),
    };
    let calls = vec![(new(&p), meta()), (new(&q), meta())];
    let store = h.store.clone();
    let batch = tokio::spawn(async move { store.ensure_accounts(&calls).await });
    // Committed once the batch's statement waits on the uncommitted row.
    let started = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .expect("activity");
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the batch never waited on the other transaction's row"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    other.commit().await.expect("commit");
    let results = batch.await.expect("batch task");
    let (account, created) = results[0].as_ref().expect("p's account");
    assert_eq!(
        (account.id, *created),
        (theirs, false),
        "read back, existing"
    );
    let (account, created) = results[1].as_ref().expect("q's account");
    assert_eq!(account.patient_id, q);
    assert!(*created, "the batch created q's account and says so");
}

fn meta() -> AuditMeta {
    AuditMeta::new(
        Some((Uuid::new_v4(), Role::Billing)),
        crate::audit::RequestMeta {
            client_ip: Some("127.0.0.1".parse().expect("ip")),
            request_id: Some(crate::audit::RequestId::generate()),
        },
    )
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
