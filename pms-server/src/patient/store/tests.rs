//! The [`PatientStore`] conformance suite: one set of generic checks, run against SQLite (a temp
//! dir) and PostgreSQL (a fresh database from `PMS_TEST_DATABASE_URL`, which must be set).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::NaiveDate;
use pms_proto::rest::{PatientRequest, Role, Sex};
use secrecy::SecretString;
use uuid::Uuid;

use super::*;
use crate::audit::{RequestId, RequestMeta};
use crate::patient::model::{Change, NewPatient, PatientChanges};
use crate::store::{ServiceDb, connect};

struct Fixture {
    store: Arc<dyn PatientStore>,
    db: Db,
    _dir: tempfile::TempDir,
}

async fn fixture(postgres: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = if postgres {
        Some(SecretString::from(
            crate::store::testing::fresh_postgres_url().await,
        ))
    } else {
        None
    };
    let db = connect(ServiceDb::Patient, url.as_ref(), dir.path(), 5, &MIGRATIONS)
        .await
        .expect("connect and migrate");
    Fixture {
        store: for_db(db.clone(), RelayWaker::default()),
        db,
        _dir: dir,
    }
}

/// Runs each named check on both backends.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $check() {
                let f = super::fixture(false).await;
                super::$check(&f).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $check() {
                let f = super::fixture(true).await;
                super::$check(&f).await;
            })*
        }
    };
}

conformance!(
    create_and_get_round_trip,
    list_pages_cover_every_patient_once_in_every_order,
    search_matches_prefixes_literally,
    duplicate_email_conflicts_case_insensitively,
    email_is_reusable_after_soft_delete,
    update_is_compare_and_set,
    update_keeps_clears_and_sets_optional_fields,
    delete_is_soft_and_only_once,
    history_records_every_version,
    audit_rows_are_listed_newest_first_and_paged,
    a_listing_is_audited_once_per_returned_patient,
    the_cursor_key_is_created_once,
    concurrent_creates_get_distinct_mrns,
    concurrent_updates_all_apply_in_turn,
    history_and_audit_are_append_only,
    every_committed_change_has_exactly_one_outbox_event,
    restore_undoes_a_delete_once,
    restore_refuses_an_email_taken_meanwhile,
    audit_filters_combine,
    a_batch_of_creates_answers_each_as_alone,
    a_read_and_its_audit_row_are_one_statement,
);

mod batch;
use batch::{a_batch_of_creates_answers_each_as_alone, a_read_and_its_audit_row_are_one_statement};
mod restore;
use restore::{
    audit_filters_combine, restore_refuses_an_email_taken_meanwhile, restore_undoes_a_delete_once,
};

fn today() -> NaiveDate {
    crate::patient::model::latest_today()
}

fn request(name: &str, email: &str) -> PatientRequest {
    PatientRequest {
        name: Some(name.to_owned()),
        email: Some(email.to_owned()),
        address: Some("1 Main Street".to_owned()),
        date_of_birth: Some("1980-04-01".to_owned()),
        registered_date: Some("2024-01-02".to_owned()),
        phone: None,
        sex: None,
    }
}

fn new_patient(name: &str, email: &str) -> NewPatient {
    NewPatient::parse(&request(name, email), today()).expect("valid patient")
}

fn changes(name: &str, email: &str) -> PatientChanges {
    let mut req = request(name, email);
    req.registered_date = None;
    PatientChanges::parse(&req, today()).expect("valid changes")
}

fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.org", Uuid::new_v4().simple())
}

fn audit(action: PatientAction) -> AuditRecord {
    AuditRecord::now(
        action,
        AuditMeta::new(
            Some((Uuid::new_v4(), Role::Clinician)),
            RequestMeta::default(),
        ),
        Outcome::Success,
    )
}

async fn create(store: &dyn PatientStore, name: &str) -> Patient {
    store
        .create(
            &new_patient(name, &unique_email("p")),
            audit(PatientAction::Create),
        )
        .await
        .expect("create")
}

fn mrn_number(p: &Patient) -> i64 {
    p.mrn
        .strip_prefix("MRN-")
        .and_then(|n| n.parse().ok())
        .expect("MRN-<number>")
}

async fn create_and_get_round_trip(f: &Fixture) {
    let mut req = request("  Grace  Hopper ", "Grace.Hopper@Navy.example");
    req.phone = Some("+1 (555) 010-0199".into());
    req.sex = Some("FEMALE".into());
    let new = NewPatient::parse(&req, today()).expect("valid");
    let created = f
        .store
        .create(&new, audit(PatientAction::Create))
        .await
        .expect("create");
    assert_eq!(created.name, "Grace  Hopper");
    assert_eq!(created.email, "Grace.Hopper@Navy.example");
    assert_eq!(created.address, "1 Main Street");
    assert_eq!(
        created.date_of_birth,
        NaiveDate::from_ymd_opt(1980, 4, 1).expect("date")
    );
    assert_eq!(
        created.registered_date,
        NaiveDate::from_ymd_opt(2024, 1, 2).expect("date")
    );
    assert_eq!(created.phone.as_deref(), Some("+1 (555) 010-0199"));
    assert_eq!(created.sex, Some(Sex::Female));
    assert_eq!(created.version, 1);
    assert_eq!(created.mrn, "MRN-000001");
    assert_eq!(created.created_at, created.updated_at);

    let fetched = f.store.get(created.id).await.expect("get");
    assert_eq!(fetched.as_ref(), Some(&created));
    assert_eq!(
        f.store.get(Uuid::new_v4()).await.expect("get unknown"),
        None
    );
}

async fn list_pages_cover_every_patient_once_in_every_order(f: &Fixture) {
    // Duplicate names (in different cases) make the name order rely on its tie-breaker.
    let names = ["bob", "Alice", "carol", "alice", "Bob"];
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(create(&*f.store, names[i % names.len()]).await);
    }
    let by_seq = |a: &Patient, b: &Patient| mrn_number(a).cmp(&mrn_number(b));
    let by_name = |a: &Patient, b: &Patient| {
        (a.name.to_lowercase(), mrn_number(a)).cmp(&(b.name.to_lowercase(), mrn_number(b)))
    };
    for sort in [
        SortOrder::CreatedAsc,
        SortOrder::CreatedDesc,
        SortOrder::NameAsc,
        SortOrder::NameDesc,
    ] {
        let mut expected = created.clone();
        match sort {
            SortOrder::CreatedAsc => expected.sort_by(by_seq),
            SortOrder::CreatedDesc => expected.sort_by(|a, b| by_seq(b, a)),
            SortOrder::NameAsc => expected.sort_by(by_name),
            SortOrder::NameDesc => expected.sort_by(|a, b| by_name(b, a)),
        }
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after = None;
        loop {
            let query = ListQuery {
                search: None,
                sort,
                after: after.take(),
                limit: 10,
                deleted: false,
            };
            let page = f.store.list(&query).await.expect("list");
            sizes.push(page.items.len());
            seen.extend(page.items.into_iter().map(|p| p.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(sizes, [10, 10, 5], "{sort:?}");
        let expected: Vec<Uuid> = expected.iter().map(|p| p.id).collect();
        assert_eq!(seen, expected, "{sort:?}");
    }

    // A page exactly as large as what is left announces no next page.
    let query = ListQuery {
        search: None,
        sort: SortOrder::CreatedAsc,
        after: None,
        limit: 25,
        deleted: false,
    };
    let page = f.store.list(&query).await.expect("list");
    assert_eq!((page.items.len(), page.next), (25, None));
}

async fn search(f: &Fixture, q: &str) -> HashSet<String> {
    let query = ListQuery {
        search: Some(q.to_owned()),
        sort: SortOrder::NameAsc,
        after: None,
        limit: 100,
        deleted: false,
    };
    let page = f.store.list(&query).await.expect("search");
    page.items.into_iter().map(|p| p.name).collect()
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn search_matches_prefixes_literally(f: &Fixture) {
    for name in [
        "Ada Lovelace",
        "Lovelace Byron",
        "a_b",
        "axb",
        "100% Real",
        "1000 Fake",
    ] {
        create(&*f.store, name).await;
    }
    let special = f
        .store
        .create(
            &new_patient("Zed", "Zed.Mail@Example.org"),
            audit(PatientAction::Create),
        )
        .await
        .expect("create");
    let gone = create(&*f.store, "Lovelace Deleted").await;
    f.store
        .delete(gone.id, None, audit(PatientAction::Delete))
        .await
        .expect("delete");

    assert_eq!(search(f, "ada").await, set(&["Ada Lovelace"]));
    // Any word of the name, case-insensitively; deleted patients never match.
    assert_eq!(
        search(f, "LOVE").await,
        set(&["Ada Lovelace", "Lovelace Byron"])
    );
    assert_eq!(search(f, "byr").await, set(&["Lovelace Byron"]));
    // A prefix, not a substring.
    assert_eq!(search(f, "velace").await, set(&[]));
    // Wildcards are literal.
    assert_eq!(search(f, "a_").await, set(&["a_b"]));
    assert_eq!(search(f, "100%").await, set(&["100% Real"]));
    assert_eq!(search(f, "%").await, set(&[]));
    assert_eq!(search(f, "\\").await, set(&[]));
    // Email and MRN prefixes, case-insensitively.
    assert_eq!(search(f, "zed.mail@EX").await, set(&["Zed"]));
    assert_eq!(search(f, &special.mrn.to_lowercase()).await, set(&["Zed"]));
    // A blank search lists everyone alive.
    assert_eq!(search(f, "  ").await.len(), 7);
}

async fn duplicate_email_conflicts_case_insensitively(f: &Fixture) {
    let email = unique_email("dup");
    let first = f
        .store
        .create(&new_patient("One", &email), audit(PatientAction::Create))
        .await
        .expect("first");
    let err = f
        .store
        .create(
            &new_patient("Two", &email.to_uppercase()),
            audit(PatientAction::Create),
        )
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, StoreError::Conflict(c) if c.contains(EMAIL_UNIQUE)),
        "{err:?}"
    );

    // Nothing of the refused create was kept: neither a row nor an audit row nor an MRN.
    let other = create(&*f.store, "Three").await;
    assert_eq!(mrn_number(&other), mrn_number(&first) + 1);
    let audit = f
        .store
        .list_audit(&AuditQuery {
            patient_id: None,
            before: None,
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    assert_eq!(audit.items.len(), 2);

    // Updating another patient to the taken email conflicts too.
    let err = f
        .store
        .update(
            other.id,
            None,
            &changes("Three", &email.to_uppercase()),
            audit_rec(),
        )
        .await
        .expect_err("duplicate on update");
    assert!(
        matches!(&err, StoreError::Conflict(c) if c.contains(EMAIL_UNIQUE)),
        "{err:?}"
    );
    // Changing the case of one's own email is fine.
    let own = f
        .store
        .update(
            first.id,
            Some(1),
            &changes("One", &email.to_uppercase()),
            audit_rec(),
        )
        .await
        .expect("own email");
    assert!(matches!(own, WriteOutcome::Done(p) if p.email == email.to_uppercase()));
}

fn audit_rec() -> AuditRecord {
    audit(PatientAction::Update)
}

async fn email_is_reusable_after_soft_delete(f: &Fixture) {
    let email = unique_email("reuse");
    let first = f
        .store
        .create(&new_patient("First", &email), audit(PatientAction::Create))
        .await
        .expect("create");
    f.store
        .delete(first.id, None, audit(PatientAction::Delete))
        .await
        .expect("delete");
    let second = f
        .store
        .create(&new_patient("Second", &email), audit(PatientAction::Create))
        .await
        .expect("email free again");
    assert_ne!(second.id, first.id);
    assert_ne!(second.mrn, first.mrn);
}

async fn update_is_compare_and_set(f: &Fixture) {
    let p = create(&*f.store, "Before").await;
    let v2 = match f
        .store
        .update(p.id, Some(1), &changes("After", &p.email), audit_rec())
        .await
        .expect("update")
    {
        WriteOutcome::Done(v2) => v2,
        other => panic!("expected Done, got {other:?}"),
    };
    assert_eq!((v2.version, v2.name.as_str()), (2, "After"));
    assert_eq!(
        (v2.id, &v2.mrn, v2.created_at),
        (p.id, &p.mrn, p.created_at)
    );
    assert!(v2.updated_at >= p.updated_at);
    assert_eq!(f.store.get(p.id).await.expect("get"), Some(v2.clone()));

    // A writer still holding version 1 is refused and changes nothing.
    let stale = f
        .store
        .update(p.id, Some(1), &changes("Lost", &p.email), audit_rec())
        .await
        .expect("stale update");
    assert_eq!(stale, WriteOutcome::Stale { current: 2 });
    assert_eq!(f.store.get(p.id).await.expect("get"), Some(v2));

    // Without a precondition the update applies to whatever version is current.
    let v3 = f
        .store
        .update(p.id, None, &changes("Third", &p.email), audit_rec())
        .await
        .expect("update");
    assert!(
        matches!(v3, WriteOutcome::Done(ref p) if p.version == 3),
        "{v3:?}"
    );

    let unknown = f
        .store
        .update(
            Uuid::new_v4(),
            None,
            &changes("X", &unique_email("x")),
            audit_rec(),
        )
        .await
        .expect("unknown");
    assert_eq!(unknown, WriteOutcome::NotFound);
}

async fn update_keeps_clears_and_sets_optional_fields(f: &Fixture) {
    let mut req = request("Opt", &unique_email("opt"));
    req.phone = Some("555 1234".into());
    req.sex = Some("MALE".into());
    let p = f
        .store
        .create(
            &NewPatient::parse(&req, today()).expect("valid"),
            audit(PatientAction::Create),
        )
        .await
        .expect("create");

    let mut keep = changes("Opt", &p.email);
    keep.address = crate::patient::model::Address::parse("2 Side Road").expect("address");
    let WriteOutcome::Done(kept) = f
        .store
        .update(p.id, None, &keep, audit_rec())
        .await
        .expect("u")
    else {
        panic!("update refused")
    };
    assert_eq!(kept.address, "2 Side Road");
    assert_eq!(kept.registered_date, p.registered_date);
    assert_eq!(
        (kept.phone.as_deref(), kept.sex),
        (Some("555 1234"), Some(Sex::Male))
    );

    let mut clear = changes("Opt", &p.email);
    clear.phone = Change::Clear;
    clear.sex = Change::Set(Sex::Unknown);
    clear.registered_date =
        Some(crate::patient::model::RegisteredDate::parse("2020-02-29", today()).expect("date"));
    let WriteOutcome::Done(cleared) = f
        .store
        .update(p.id, None, &clear, audit_rec())
        .await
        .expect("u")
    else {
        panic!("update refused")
    };
    assert_eq!((cleared.phone, cleared.sex), (None, Some(Sex::Unknown)));
    assert_eq!(
        cleared.registered_date,
        NaiveDate::from_ymd_opt(2020, 2, 29).expect("date")
    );
}

async fn delete_is_soft_and_only_once(f: &Fixture) {
    let p = create(&*f.store, "Doomed").await;
    let stale = f
        .store
        .delete(p.id, Some(7), audit(PatientAction::Delete))
        .await
        .expect("stale delete");
    assert_eq!(stale, WriteOutcome::Stale { current: 1 });
    assert!(f.store.get(p.id).await.expect("get").is_some());

    let deleted = f
        .store
        .delete(p.id, Some(1), audit(PatientAction::Delete))
        .await
        .expect("delete");
    assert!(
        matches!(deleted, WriteOutcome::Done(ref d) if d.version == 2),
        "{deleted:?}"
    );
    assert_eq!(f.store.get(p.id).await.expect("get"), None);
    let again = f
        .store
        .delete(p.id, None, audit(PatientAction::Delete))
        .await
        .expect("second delete");
    assert_eq!(again, WriteOutcome::NotFound);
    let update = f
        .store
        .update(p.id, None, &changes("Zombie", &p.email), audit_rec())
        .await
        .expect("update deleted");
    assert_eq!(update, WriteOutcome::NotFound);
}

async fn history_records_every_version(f: &Fixture) {
    let actor = Uuid::new_v4();
    let by = |action| {
        AuditRecord::now(
            action,
            AuditMeta::new(Some((actor, Role::Admin)), RequestMeta::default()),
            Outcome::Success,
        )
    };
    let p = f
        .store
        .create(
            &new_patient("V One", &unique_email("h")),
            by(PatientAction::Create),
        )
        .await
        .expect("create");
    f.store
        .update(
            p.id,
            Some(1),
            &changes("V Two", &p.email),
            by(PatientAction::Update),
        )
        .await
        .expect("update");
    f.store
        .delete(p.id, Some(2), by(PatientAction::Delete))
        .await
        .expect("delete");

    let history = f.store.history(p.id).await.expect("history");
    let summary: Vec<(i64, &str, &str)> = history
        .iter()
        .map(|v| (v.version, v.change_type.as_str(), v.patient.name.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "CREATED", "V One"),
            (2, "UPDATED", "V Two"),
            (3, "DELETED", "V Two")
        ]
    );
    assert!(history.iter().all(|v| v.changed_by == Some(actor)));
    assert!(
        history
            .iter()
            .all(|v| v.patient.id == p.id && v.patient.mrn == p.mrn)
    );
    assert!(history.iter().all(|v| v.patient.version == v.version));
    assert_eq!(history[0].patient, p);
    assert!(
        history
            .windows(2)
            .all(|w| w[0].changed_at <= w[1].changed_at)
    );
    assert!(
        f.store
            .history(Uuid::new_v4())
            .await
            .expect("none")
            .is_empty()
    );
}

async fn audit_rows_are_listed_newest_first_and_paged(f: &Fixture) {
    let p = create(&*f.store, "Audited").await;
    let other = Uuid::new_v4();
    let mut written = Vec::new();
    for i in 0..5 {
        let mut record = audit(PatientAction::Read);
        record.meta.request = RequestMeta {
            client_ip: Some("203.0.113.9".parse().expect("ip")),
            request_id: RequestId::parse(&format!("req-{i}")),
        };
        let record = AuditRecord {
            ..record
                .patient(Some(if i % 2 == 0 { p.id } else { other }))
                .outcome(if i == 4 {
                    Outcome::Denied
                } else {
                    Outcome::Success
                })
        };
        f.store.record_audit(record.clone()).await.expect("audit");
        written.push(record);
    }

    let all = f
        .store
        .list_audit(&AuditQuery {
            patient_id: Some(p.id),
            before: None,
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .expect("audit page 1");
    let ids: Vec<Uuid> = all.items.iter().map(|e| e.id).collect();
    assert_eq!(ids, [written[4].id, written[2].id]);
    let newest = &all.items[0];
    assert_eq!(newest.action, "patient.read");
    assert_eq!(newest.resource, "patient");
    assert_eq!(newest.outcome, "DENIED");
    assert_eq!(newest.actor_role.as_deref(), Some("CLINICIAN"));
    assert_eq!(newest.actor_id, written[4].meta.actor_id);
    assert_eq!(newest.occurred_at, written[4].occurred_at);
    assert_eq!(newest.client_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(newest.request_id.as_deref(), Some("req-4"));

    let rest = f
        .store
        .list_audit(&AuditQuery {
            patient_id: Some(p.id),
            before: all.next,
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .expect("audit page 2");
    let ids: Vec<Uuid> = rest.items.iter().map(|e| e.id).collect();
    let actions: Vec<&str> = rest.items.iter().map(|e| e.action.as_str()).collect();
    // The oldest row is the create's, written by the store in the create's transaction.
    assert_eq!(ids[0], written[0].id);
    assert_eq!(actions, ["patient.read", "patient.create"]);
    assert_eq!(rest.next, None);
}

async fn concurrent_creates_get_distinct_mrns(f: &Fixture) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                store
                    .create(
                        &new_patient(&format!("Racer {i}"), &unique_email("race")),
                        audit(PatientAction::Create),
                    )
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        let patient = task.await.expect("task").expect("every create succeeds");
        numbers.push(mrn_number(&patient));
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<i64>>());
}

/// Unconditional updates read, then write: on SQLite that needs `BEGIN IMMEDIATE` (a deferred
/// transaction cannot upgrade its read lock under contention), on PostgreSQL the row lock (else
/// the compare-and-set of a concurrent writer misses). Every one must apply, none lost.
async fn concurrent_updates_all_apply_in_turn(f: &Fixture) {
    let p = create(&*f.store, "Contended").await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&f.store);
            let changes = changes(&format!("Writer {i}"), &p.email);
            tokio::spawn(async move { store.update(p.id, None, &changes, audit_rec()).await })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        match task.await.expect("task").expect("every update succeeds") {
            WriteOutcome::Done(patient) => versions.push(patient.version),
            other => panic!("update refused: {other:?}"),
        }
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=21).collect::<Vec<i64>>());
    let history = f.store.history(p.id).await.expect("history");
    assert_eq!(history.len(), 21);
    let last = f.store.get(p.id).await.expect("get").expect("live");
    assert_eq!(last.version, 21);
    assert_eq!(Some(&last.name), history.last().map(|v| &v.patient.name));
}

async fn history_and_audit_are_append_only(f: &Fixture) {
    create(&*f.store, "Immutable").await;
    for sql in [
        "UPDATE patient_audit SET outcome = 'SUCCESS'",
        "DELETE FROM patient_audit",
        "UPDATE patient_versions SET name = 'forged'",
        "DELETE FROM patient_versions",
    ] {
        let result = match &f.db {
            Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        };
        let err = result.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

async fn every_committed_change_has_exactly_one_outbox_event(f: &Fixture) {
    use pms_proto::patient_events::PatientEvent;
    use prost::Message;

    let email = unique_email("events");
    let p = f
        .store
        .create(
            &new_patient("Ada Events", &email),
            audit(PatientAction::Create),
        )
        .await
        .expect("create");
    // Refused writes leave no event behind.
    f.store
        .create(
            &new_patient("Dup", &email.to_uppercase()),
            audit(PatientAction::Create),
        )
        .await
        .expect_err("duplicate");
    let stale = f
        .store
        .update(
            p.id,
            Some(7),
            &changes("Stale", &email),
            audit(PatientAction::Update),
        )
        .await
        .expect("stale update");
    assert_eq!(stale, WriteOutcome::Stale { current: 1 });
    f.store
        .update(
            p.id,
            Some(1),
            &changes("Ada Renamed", &email),
            audit(PatientAction::Update),
        )
        .await
        .expect("update");
    f.store
        .delete(p.id, Some(2), audit(PatientAction::Delete))
        .await
        .expect("delete");

    let pending = crate::events::outbox::pending(&f.db, 100)
        .await
        .expect("outbox");
    let types: Vec<&str> = pending.iter().map(|(_, e)| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["PATIENT_CREATED", "PATIENT_UPDATED", "PATIENT_DELETED"]
    );
    for (n, (_, event)) in pending.iter().enumerate() {
        assert_eq!(event.topic, "patient");
        assert_eq!(event.key, p.id.to_string(), "keyed by patient id");
        let message = PatientEvent::decode(event.payload.as_slice()).expect("protobuf");
        assert_eq!(message.patient_id, p.id.to_string());
        assert_eq!(message.event_type, event.event_type);
        assert_eq!(message.event_id, event.id.to_string());
        assert_eq!(message.version, n as i64 + 1);
        if event.event_type == "PATIENT_DELETED" {
            // Deletions carry ids only (no personal data kept in event tables).
            assert_eq!((message.email.as_str(), message.mrn.as_str()), ("", ""));
        } else {
            assert_eq!(message.email, email.to_lowercase());
            assert_eq!(message.mrn, p.mrn);
        }
    }
    let created = PatientEvent::decode(pending[0].1.payload.as_slice()).expect("protobuf");
    assert_eq!(created.name, "Ada Events");
}

async fn a_listing_is_audited_once_per_returned_patient(f: &Fixture) {
    let patients = [
        create(&*f.store, "Listed One").await.id,
        create(&*f.store, "Listed Two").await.id,
        create(&*f.store, "Listed Three").await.id,
    ];
    let read = audit(PatientAction::Search);
    let rows = read.per_patient(patients);
    assert_eq!(rows.len(), 3);
    f.store.record_audits(&rows).await.expect("batched audit");
    for (patient, row) in patients.iter().zip(&rows) {
        let page = f
            .store
            .list_audit(&AuditQuery {
                patient_id: Some(*patient),
                before: None,
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        let newest = &page.items[0];
        assert_eq!(
            (newest.id, newest.action.as_str(), newest.outcome.as_str()),
            (row.id, "patient.search", "SUCCESS")
        );
        assert_eq!(newest.actor_id, read.meta.actor_id);
    }
    // A listing that returned nobody is still recorded, once, without a patient.
    let empty = read.per_patient([]);
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].patient_id, None);
    f.store.record_audits(&empty).await.expect("empty listing");
    f.store.record_audits(&[]).await.expect("nothing to write");
}

async fn the_cursor_key_is_created_once(f: &Fixture) {
    let first = f.store.cursor_key(&[1; 32]).await.expect("key");
    assert_eq!(first, vec![1; 32]);
    let again = f.store.cursor_key(&[2; 32]).await.expect("key");
    assert_eq!(again, first, "a later replica gets the stored key");
}
