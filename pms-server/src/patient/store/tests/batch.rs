//! Creates of many requests in one transaction ([`PatientStore::create_many`], the group commit
//! of `POST /patients`): each answered as it would have been alone. And a read with its audit row
//! in one statement ([`PatientStore::get_audited`], PostgreSQL only).

use super::*;

fn conflict_on_email(result: &Result<Patient, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(c)) if c.contains(EMAIL_UNIQUE))
}

pub(super) async fn a_batch_of_creates_answers_each_as_alone(f: &Fixture) {
    let taken = unique_email("taken");
    let existing = f
        .store
        .create(
            &new_patient("Existing", &taken),
            audit(PatientAction::Create),
        )
        .await
        .expect("create");
    let twice = unique_email("twice");
    let batch = vec![
        (
            new_patient("First", &unique_email("a")),
            audit(PatientAction::Create),
        ),
        (
            new_patient("Taken", &taken.to_uppercase()),
            audit(PatientAction::Create),
        ),
        (new_patient("Second", &twice), audit(PatientAction::Create)),
        (new_patient("Twice", &twice), audit(PatientAction::Create)),
        (
            new_patient("Third", &unique_email("c")),
            audit(PatientAction::Create),
        ),
    ];
    let results = f.store.create_many(&batch).await;
    assert_eq!(results.len(), batch.len(), "one result per create");
    assert!(
        conflict_on_email(&results[1]),
        "a live patient has it: {:?}",
        results[1]
    );
    assert!(
        conflict_on_email(&results[3]),
        "taken earlier in the batch: {:?}",
        results[3]
    );
    let created: Vec<&Patient> = [0, 2, 4]
        .iter()
        .map(|&i| results[i].as_ref().expect("created"))
        .collect();
    let names: Vec<&str> = created.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["First", "Second", "Third"]);
    // Numbers follow the requests' order; none is spent on a refusal.
    let first = mrn_number(&existing) + 1;
    let numbers: Vec<i64> = created.iter().map(|p| mrn_number(p)).collect();
    assert_eq!(numbers, [first, first + 1, first + 2]);
    for (patient, (new, audit)) in created.iter().zip([&batch[0], &batch[2], &batch[4]]) {
        assert_eq!(patient.email, new.email.as_str());
        assert_eq!(patient.version, 1);
        let stored = f.store.get(patient.id).await.expect("get").expect("live");
        assert_eq!(
            &&stored, patient,
            "what the create answered is what is stored"
        );
        let history = f.store.history(patient.id).await.expect("history");
        let changes: Vec<&str> = history.iter().map(|v| v.change_type.as_str()).collect();
        assert_eq!(changes, ["CREATED"]);
        assert_eq!(history[0].changed_by, audit.meta.actor_id);
        let trail = f
            .store
            .list_audit(&AuditQuery {
                patient_id: Some(patient.id),
                before: None,
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        let trail: Vec<(Uuid, &str)> = trail
            .items
            .iter()
            .map(|e| (e.id, e.action.as_str()))
            .collect();
        assert_eq!(trail, [(audit.id, "patient.create")]);
    }
    // One PATIENT_CREATED event per created patient, in the same transaction.
    let pending = crate::events::outbox::pending(&f.db, 100)
        .await
        .expect("outbox");
    let events: Vec<(&str, String)> = pending
        .iter()
        .map(|(_, e)| (e.event_type.as_str(), e.key.clone()))
        .collect();
    let expected: Vec<(&str, String)> = std::iter::once(existing.id)
        .chain(created.iter().map(|p| p.id))
        .map(|id| ("PATIENT_CREATED", id.to_string()))
        .collect();
    assert_eq!(events, expected);
    // A batch where every email is taken creates nothing and spends nothing.
    let refused = f
        .store
        .create_many(&[
            (new_patient("Again", &twice), audit(PatientAction::Create)),
            (new_patient("Again 2", &taken), audit(PatientAction::Create)),
        ])
        .await;
    assert!(refused.iter().all(conflict_on_email), "{refused:?}");
    let after = create(&*f.store, "After").await;
    assert_eq!(mrn_number(&after), first + 3);
}

pub(super) async fn a_read_and_its_audit_row_are_one_statement(f: &Fixture) {
    let p = create(&*f.store, "Read Once").await;
    let read = audit(PatientAction::Read).patient(Some(p.id));
    let missing_id = Uuid::new_v4();
    let missing = audit(PatientAction::Read).patient(Some(missing_id));
    let found = f.store.get_audited(p.id, &read).await;
    let absent = f.store.get_audited(missing_id, &missing).await;
    if matches!(f.db, Db::Sqlite(_)) {
        // No data-modifying WITH: the caller reads and records separately.
        assert!(found.is_none() && absent.is_none());
        return;
    }
    assert_eq!(
        found.expect("PostgreSQL can").expect("read"),
        Some(p.clone())
    );
    assert_eq!(absent.expect("PostgreSQL can").expect("read"), None);
    for (patient, row, outcome) in [
        (p.id, &read, "SUCCESS"),
        (missing_id, &missing, "NOT_FOUND"),
    ] {
        let trail = f
            .store
            .list_audit(&AuditQuery {
                patient_id: Some(patient),
                before: None,
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        let newest = &trail.items[0];
        assert_eq!(
            (newest.id, newest.action.as_str(), newest.outcome.as_str()),
            (row.id, "patient.read", outcome)
        );
        assert_eq!(newest.actor_id, row.meta.actor_id);
    }
}
