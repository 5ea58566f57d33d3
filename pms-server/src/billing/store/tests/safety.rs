//! Conformance: one account per patient (also under concurrency), Idempotency-Key replays,
//! concurrent payments on one invoice and same-key races, and the audit trail of writes.

use std::sync::Arc;

use pms_proto::billing_events::BillingEvent;
use prost::Message;

use super::*;

pub(super) async fn accounts_are_one_per_patient(store: Arc<dyn BillingStore>) {
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

pub(super) async fn concurrent_account_creation_makes_one_account(store: Arc<dyn BillingStore>) {
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

pub(super) async fn idempotency_keys_replay_or_refuse(store: Arc<dyn BillingStore>) {
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

pub(super) async fn concurrent_payments_never_double_spend(store: Arc<dyn BillingStore>) {
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

pub(super) async fn concurrent_same_key_payments_pay_once(store: Arc<dyn BillingStore>) {
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

pub(super) async fn writes_are_audited(store: Arc<dyn BillingStore>) {
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
        action: BillingAction::RefundCreate,
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
    assert_eq!(pay_row.request_id.as_deref(), who.meta.request_id());
    assert_eq!(
        pay_row.patient_id.as_deref(),
        Some(acct.patient_id.as_str())
    );
    let all = store.audit_entries(None, 2).await.expect("all");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].action, "billing.refund.create");
}

/// `CreateBillingAccount` calls group-committed ([`BillingStore::ensure_accounts`]): each answered
/// as alone — the first call of a new patient creates, the others see that account — with one
/// audit row and one ACCOUNT_CREATED event per created account.
pub(super) async fn a_batch_of_account_calls_answers_each_as_alone(
    store: Arc<dyn BillingStore>,
    db: Db,
) {
    let new = |id: &str| NewAccount {
        patient: PatientRef::parse(id).expect("patient"),
        contact: Contact::parse("Pat", "pat@example.com").expect("contact"),
    };
    let (existing, _) = store
        .ensure_account(&new("existing-1"), &meta())
        .await
        .expect("existing");
    let before = crate::events::outbox::pending(&db, 100)
        .await
        .expect("outbox")
        .len();
    let (p, q) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let calls = vec![
        (new(&p), meta()),
        (new("existing-1"), meta()),
        (new(&p.to_uppercase()), meta()),
        (new(&q), meta()),
    ];
    let results: Vec<(BillingAccount, bool)> = store
        .ensure_accounts(&calls)
        .await
        .into_iter()
        .map(|r| r.expect("ensured"))
        .collect();
    let created: Vec<bool> = results.iter().map(|(_, created)| *created).collect();
    assert_eq!(created, [true, false, false, true]);
    assert_eq!(
        results[1].0, existing,
        "an existing account comes back as it is"
    );
    assert_eq!(results[2].0, results[0].0, "one account per patient");
    assert_eq!(results[0].0.patient_id, p);
    assert_eq!(results[3].0.patient_id, q);
    assert_ne!(results[0].0.id, results[3].0.id);
    for (account, _) in &results {
        assert_eq!(account.status, AccountStatus::Active);
        assert_eq!(&store.account(account.id).await.expect("stored"), account);
    }
    let pending = crate::events::outbox::pending(&db, 100)
        .await
        .expect("outbox");
    let announced: Vec<String> = pending[before..]
        .iter()
        .map(|(_, e)| {
            let event = BillingEvent::decode(e.payload.as_slice()).expect("protobuf");
            assert_eq!(event.event_type, "ACCOUNT_CREATED");
            event.account_id
        })
        .collect();
    assert_eq!(
        announced,
        [results[0].0.id.to_string(), results[3].0.id.to_string()]
    );
    for (i, (account, _)) in results.iter().enumerate() {
        let audited: Vec<(String, Option<Uuid>)> = store
            .audit_entries(Some(account.id), 10)
            .await
            .expect("audit")
            .iter()
            .map(|e| (e.action.clone(), e.actor_id))
            .collect();
        if i == 0 || i == 3 {
            assert_eq!(
                audited,
                [("billing.account.create".to_owned(), calls[i].1.actor_id)]
            );
        }
    }
}
