//! Conformance: `patient` events applied once each (create, update, close or suspend, reopen on a
//! restore), and the
//! `billing` events every ledger write enqueues in its own transaction (and refusals and replays
//! do not).

use std::sync::Arc;

use pms_proto::billing_events::BillingEvent;
use prost::Message;

use super::*;
use crate::billing::events::{ConsumedPatientEvent, PatientChange};
use crate::events::outbox;

fn patient(id: &str, name: &str) -> NewAccount {
    NewAccount {
        patient: PatientRef::parse(id).expect("patient"),
        contact: Contact::parse(name, "someone@example.com").expect("contact"),
    }
}

pub(super) async fn a_batch_of_patient_events_is_applied_in_order_once_each(
    store: Arc<dyn BillingStore>,
) {
    let (p, q) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let event = |who: &str, name: &str, change| ConsumedPatientEvent {
        event_id: Uuid::new_v4(),
        account: patient(who, name),
        change,
        actor: None,
    };
    let p_created = event(&p, "Jane", PatientChange::Created);
    // Applied alone first: its redelivery inside the batch does nothing.
    assert!(
        store
            .apply_patient_event(
                p_created.event_id,
                &p_created.account,
                p_created.change,
                None
            )
            .await
            .expect("alone")
    );
    let batch = vec![
        p_created.clone(),
        event(&q, "Quinn", PatientChange::Created),
        event(&q, "Quinn Roe", PatientChange::Updated),
        // In order: the deletion comes after q's creation in the same transaction.
        event(&q, "Quinn Roe", PatientChange::Deleted),
        event(&p, "Jane Roe", PatientChange::Updated),
    ];
    assert_eq!(store.apply_patient_events(&batch).await.expect("batch"), 4);
    let account_of = |who: &str| {
        let who = PatientRef::parse(who).expect("patient");
        let store = Arc::clone(&store);
        async move { store.account_by_patient(&who).await.expect("account") }
    };
    let (jane, quinn) = (account_of(&p).await, account_of(&q).await);
    assert_eq!(
        jane.status,
        AccountStatus::Active,
        "updated, still one account"
    );
    assert_eq!(quinn.status, AccountStatus::Closed, "deleted owing nothing");
    // The whole batch again (a redelivery after a crash before the offset commit): nothing new.
    assert_eq!(store.apply_patient_events(&batch).await.expect("again"), 0);
    assert_eq!(account_of(&q).await.status, AccountStatus::Closed);
}

pub(super) async fn patient_events_manage_accounts(store: Arc<dyn BillingStore>) {
    let store = store.as_ref();
    let p = Uuid::new_v4().to_string();
    let actor = Some(Uuid::new_v4());
    let created = Uuid::new_v4();
    let apply = |event: Uuid, who: &NewAccount, change| {
        let who = who.clone();
        async move { store.apply_patient_event(event, &who, change, actor).await }
    };
    assert!(
        apply(created, &patient(&p, "Jane"), PatientChange::Created)
            .await
            .expect("c")
    );
    let account = store
        .account_by_patient(&PatientRef::parse(&p).expect("p"))
        .await
        .expect("account created from the event");
    assert_eq!(account.status, AccountStatus::Active);
    assert!(
        !apply(created, &patient(&p, "Jane"), PatientChange::Created)
            .await
            .expect("dup"),
        "a redelivered event is not applied again"
    );
    // A second creation (e.g. gRPC got there first) finds the same account.
    assert!(
        apply(Uuid::new_v4(), &patient(&p, "Jane"), PatientChange::Created)
            .await
            .expect("c2")
    );
    let updated = apply(
        Uuid::new_v4(),
        &patient(&p, "Jane Roe"),
        PatientChange::Updated,
    );
    assert!(updated.await.expect("update"));
    let same = store.account(account.id).await.expect("account");
    assert_eq!((same.id, same.status), (account.id, AccountStatus::Active));

    // Deleting a patient who owes nothing closes the account.
    assert!(
        apply(Uuid::new_v4(), &patient(&p, "x"), PatientChange::Deleted)
            .await
            .expect("d")
    );
    assert_eq!(
        store.account(account.id).await.expect("a").status,
        AccountStatus::Closed
    );

    // One who still owes: suspended, and stays so.
    let q = Uuid::new_v4().to_string();
    apply(Uuid::new_v4(), &patient(&q, "Q"), PatientChange::Updated)
        .await
        .expect("upsert");
    let owing = store
        .account_by_patient(&PatientRef::parse(&q).expect("q"))
        .await
        .expect("created by an update");
    issued(store, owing.id, 700).await;
    for _ in 0..2 {
        apply(Uuid::new_v4(), &patient(&q, "Q"), PatientChange::Deleted)
            .await
            .expect("d");
        let now = store.account(owing.id).await.expect("a");
        assert_eq!((now.status, now.balance), (AccountStatus::Suspended, 700));
    }
    // Unknown patient deleted: nothing to do, nothing created.
    let r = Uuid::new_v4().to_string();
    apply(Uuid::new_v4(), &patient(&r, "R"), PatientChange::Deleted)
        .await
        .expect("d");
    assert!(matches!(
        store
            .account_by_patient(&PatientRef::parse(&r).expect("r"))
            .await,
        Err(BillingError::NotFound(_))
    ));
    let audit = store
        .audit_entries(Some(account.id), 100)
        .await
        .expect("audit");
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "billing.account.update",
            "billing.account.update",
            "billing.account.create"
        ]
    );
    assert!(audit.iter().all(|e| e.actor_id == actor));
    // A restore reopens a suspended account (balance kept) and a closed one alike.
    for (id, balance) in [(owing.id, 700), (account.id, 0)] {
        let who = if id == owing.id { &q } else { &p };
        assert!(
            apply(
                Uuid::new_v4(),
                &patient(who, "Back"),
                PatientChange::Restored
            )
            .await
            .expect("restore")
        );
        let now = store.account(id).await.expect("a");
        assert_eq!((now.status, now.balance), (AccountStatus::Active, balance));
    }
}

pub(super) async fn writes_enqueue_billing_events(store: Arc<dyn BillingStore>, db: Db) {
    let store = store.as_ref();
    let acct = account(store).await;
    let draft = store
        .create_invoice(acct.id, &new_invoice("USD", &[900]), &ctx())
        .await
        .expect("draft")
        .value;
    assert!(
        outbox::pending(&db, 100).await.expect("outbox").len() == 1,
        "drafts are silent"
    );
    store.issue_invoice(draft.id, &ctx()).await.expect("issue");
    let who = keyed(Uuid::new_v4(), "k", "h");
    let payment = store
        .record_payment(draft.id, &pay(400), &who)
        .await
        .expect("pay")
        .value;
    store
        .record_payment(draft.id, &pay(400), &who)
        .await
        .expect("replay");
    assert!(
        store
            .record_payment(draft.id, &pay(9999), &ctx())
            .await
            .is_err()
    );
    store
        .refund_payment(payment.id, &refund(Some(150)), &ctx())
        .await
        .expect("refund");
    let unissued = store
        .create_invoice(acct.id, &new_invoice("USD", &[10]), &ctx())
        .await
        .expect("draft 2")
        .value;
    store
        .void_invoice(unissued.id, &ctx())
        .await
        .expect("void draft");
    store
        .set_account_status(acct.id, AccountStatus::Suspended, &meta())
        .await
        .expect("suspend");

    let pending = outbox::pending(&db, 100).await.expect("outbox");
    let types: Vec<&str> = pending.iter().map(|(_, e)| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ACCOUNT_CREATED",
            "INVOICE_ISSUED",
            "PAYMENT_RECEIVED",
            "PAYMENT_REFUNDED",
            "ACCOUNT_UPDATED"
        ]
    );
    for (_, event) in &pending {
        assert_eq!(event.topic, "billing");
        assert_eq!(event.key, acct.id.to_string(), "keyed by account");
        let text = String::from_utf8_lossy(&event.payload);
        assert!(
            !text.contains("Jane") && !text.contains("example.com"),
            "no PHI"
        );
    }
    let received = BillingEvent::decode(pending[2].1.payload.as_slice()).expect("decode");
    assert_eq!(received.event_id, pending[2].1.id.to_string());
    assert_eq!(
        (
            received.amount,
            received.currency.as_str(),
            received.status.as_str()
        ),
        (400, "USD", "PARTIALLY_PAID")
    );
    assert_eq!(received.payment_id, payment.id.to_string());
    assert_eq!(received.patient_id, acct.patient_id);
    assert_eq!(
        received.actor_id,
        who.meta.actor_id.expect("actor").to_string()
    );
    let refunded = BillingEvent::decode(pending[3].1.payload.as_slice()).expect("decode");
    assert_eq!(
        (refunded.amount, refunded.status.as_str()),
        (150, "PARTIALLY_PAID")
    );
}
