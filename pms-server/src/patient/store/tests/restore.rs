//! Conformance checks of the deleted-patient listing, restore, and the audit filters (both
//! backends).

use super::*;

/// One page of deleted patients whose name starts with `q`.
async fn deleted_named(f: &Fixture, q: &str) -> Vec<Uuid> {
    let query = ListQuery {
        search: Some(q.to_owned()),
        sort: SortOrder::CreatedAsc,
        after: None,
        limit: 100,
        deleted: true,
    };
    let page = f.store.list(&query).await.expect("list deleted");
    page.items.into_iter().map(|p| p.id).collect()
}

pub(super) async fn restore_undoes_a_delete_once(f: &Fixture) {
    let tag = format!("Restorable{}", Uuid::new_v4().simple());
    let p = create(f.store.as_ref(), &tag).await;
    let kept = create(f.store.as_ref(), &format!("{tag} Kept")).await;
    // A live patient cannot be restored: only deleted ones are.
    let live = f
        .store
        .restore(p.id, None, audit(PatientAction::Restore))
        .await
        .expect("restore live");
    assert_eq!(live, WriteOutcome::NotFound);
    f.store
        .delete(p.id, None, audit(PatientAction::Delete))
        .await
        .expect("delete");
    assert_eq!(deleted_named(f, &tag).await, [p.id], "only the deleted one");
    let stale = f
        .store
        .restore(p.id, Some(1), audit(PatientAction::Restore))
        .await
        .expect("stale restore");
    assert_eq!(stale, WriteOutcome::Stale { current: 2 });
    let restored = match f
        .store
        .restore(p.id, Some(2), audit(PatientAction::Restore))
        .await
        .expect("restore")
    {
        WriteOutcome::Done(patient) => patient,
        other => panic!("expected a restore, got {other:?}"),
    };
    assert_eq!(
        (restored.id, restored.mrn.as_str(), restored.version),
        (p.id, p.mrn.as_str(), 3)
    );
    assert_eq!(f.store.get(p.id).await.expect("get"), Some(restored));
    assert!(deleted_named(f, &tag).await.is_empty());
    let history = f.store.history(p.id).await.expect("history");
    let changes: Vec<&str> = history.iter().map(|v| v.change_type.as_str()).collect();
    assert_eq!(changes, ["CREATED", "DELETED", "RESTORED"]);
    let again = f
        .store
        .restore(p.id, None, audit(PatientAction::Restore))
        .await
        .expect("second restore");
    assert_eq!(again, WriteOutcome::NotFound);
    assert!(f.store.get(kept.id).await.expect("get").is_some());
}

pub(super) async fn restore_refuses_an_email_taken_meanwhile(f: &Fixture) {
    let email = unique_email("taken");
    let first = f
        .store
        .create(&new_patient("First", &email), audit(PatientAction::Create))
        .await
        .expect("create");
    f.store
        .delete(first.id, None, audit(PatientAction::Delete))
        .await
        .expect("delete");
    f.store
        .create(&new_patient("Second", &email), audit(PatientAction::Create))
        .await
        .expect("email free again");
    match f
        .store
        .restore(first.id, None, audit(PatientAction::Restore))
        .await
    {
        Err(StoreError::Conflict(name)) => assert!(name.contains(EMAIL_UNIQUE), "{name}"),
        other => panic!("expected a conflict on the email, got {other:?}"),
    }
    assert_eq!(f.store.get(first.id).await.expect("get"), None);
}

pub(super) async fn audit_filters_combine(f: &Fixture) {
    let p = create(f.store.as_ref(), "Filtered").await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let base: chrono::DateTime<chrono::Utc> = "2030-06-01T12:00:00Z".parse().expect("time");
    let mut written = Vec::new();
    for (i, (actor, action)) in [
        (alice, PatientAction::Read),
        (bob, PatientAction::Read),
        (alice, PatientAction::History),
        (alice, PatientAction::Read),
    ]
    .into_iter()
    .enumerate()
    {
        let mut record = audit(action).patient(Some(p.id));
        record.meta.actor_id = Some(actor);
        // Minutes apart, with fractions of a second: SQLite compares the stored text.
        record.occurred_at = base
            + chrono::Duration::minutes(i as i64)
            + chrono::Duration::microseconds(i as i64 * 250_000);
        f.store.record_audit(record.clone()).await.expect("audit");
        written.push(record.id);
    }
    let ids = |query: AuditQuery| async move {
        let page = f.store.list_audit(&query).await.expect("list");
        page.items.into_iter().map(|e| e.id).collect::<Vec<Uuid>>()
    };
    let query = AuditQuery {
        patient_id: Some(p.id),
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(
        ids(AuditQuery {
            actor_id: Some(alice),
            ..query.clone()
        })
        .await,
        [written[3], written[2], written[0]]
    );
    assert_eq!(
        ids(AuditQuery {
            actor_id: Some(alice),
            action: Some("patient.read"),
            ..query.clone()
        })
        .await,
        [written[3], written[0]]
    );
    // `since` inclusive, `until` exclusive, to the microsecond.
    assert_eq!(
        ids(AuditQuery {
            since: Some(
                base + chrono::Duration::minutes(1) + chrono::Duration::microseconds(250_000)
            ),
            until: Some(
                base + chrono::Duration::minutes(3) + chrono::Duration::microseconds(750_000)
            ),
            ..query.clone()
        })
        .await,
        [written[2], written[1]]
    );
    assert!(
        ids(AuditQuery {
            since: Some(base + chrono::Duration::hours(1)),
            until: Some(base),
            ..query
        })
        .await
        .is_empty()
    );
}
