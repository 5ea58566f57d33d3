//! The writer against real stores (SQLite in a temp dir, a fresh PostgreSQL database): rows of
//! concurrent requests share one commit, every request returns only once its row is stored, and a
//! bad row fails only its own request.

use std::sync::Arc;
use std::time::Duration;

use pms_proto::rest::Role;
use secrecy::SecretString;
use uuid::Uuid;

use super::AuditWriter;
use crate::audit::{AuditMeta, Outcome, RequestMeta};
use crate::error::StoreError;
use crate::events::relay::RelayWaker;
use crate::patient::store::{
    AuditQuery, AuditRecord, MIGRATIONS, PatientAction, PatientStore, for_db,
};
use crate::store::{Db, ServiceDb, connect};

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

fn read_row(patient: Uuid) -> AuditRecord {
    AuditRecord::now(
        PatientAction::Read,
        AuditMeta::new(Some((Uuid::new_v4(), Role::Viewer)), RequestMeta::default()),
        Outcome::Success,
    )
    .patient(Some(patient))
}

/// Blocks every audit insert until the returned sender fires: a transaction on another
/// connection holding the write lock (SQLite) or an exclusive table lock (PostgreSQL).
async fn block_audit_inserts(db: &Db) -> tokio::sync::oneshot::Sender<()> {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    match db.clone() {
        Db::Sqlite(pool) => {
            tokio::spawn(async move {
                let tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("lock");
                let _ = locked.send(());
                let _ = released.await;
                tx.rollback().await.expect("unlock");
            });
        }
        Db::Postgres(pool) => {
            tokio::spawn(async move {
                let mut tx = pool.begin().await.expect("begin");
                sqlx::query("LOCK TABLE patient_audit IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .expect("lock");
                let _ = locked.send(());
                let _ = released.await;
                tx.rollback().await.expect("unlock");
            });
        }
    }
    is_locked.await.expect("locked");
    release
}

/// Hands `row` to the writer as one request, returning once the writer holds it (queued or
/// taken into a batch); the receiver answers once it is stored.
async fn submit(
    writer: &AuditWriter,
    row: AuditRecord,
) -> tokio::sync::oneshot::Receiver<Result<(), StoreError>> {
    let (done, answer) = tokio::sync::oneshot::channel();
    let before = writer.writer.waiting();
    let batches = writer.batches();
    let request = writer.clone();
    tokio::spawn(async move {
        let _ = done.send(request.record(vec![row]).await);
    });
    while writer.writer.waiting() <= before && writer.batches() == batches {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    answer
}

/// Waits until the writer has taken every submitted request into a batch.
async fn until_taken(writer: &AuditWriter) {
    while writer.writer.waiting() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn stored(store: &dyn PatientStore, patient: Uuid) -> Vec<Uuid> {
    let page = store
        .list_audit(&AuditQuery {
            patient_id: Some(patient),
            before: None,
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .expect("audit page");
    page.items.iter().map(|e| e.id).collect()
}

async fn concurrent_reads_share_one_commit(f: &Fixture) {
    let writer = AuditWriter::spawn(Arc::clone(&f.store));
    let patient = Uuid::new_v4();
    let release = block_audit_inserts(&f.db).await;
    // The first request's batch waits for the lock; the next 40 queue behind it.
    let rows: Vec<AuditRecord> = (0..41).map(|_| read_row(patient)).collect();
    let mut answers = vec![submit(&writer, rows[0].clone()).await];
    until_taken(&writer).await;
    for row in &rows[1..] {
        answers.push(submit(&writer, row.clone()).await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for answer in &mut answers {
        assert!(
            answer.try_recv().is_err(),
            "no request is answered before its row is durable"
        );
    }
    assert!(stored(&*f.store, patient).await.is_empty());
    release.send(()).expect("release");
    for answer in answers {
        answer.await.expect("answered").expect("recorded");
    }
    assert_eq!(writer.batches(), 2, "41 requests, two commits");
    let mut ids = stored(&*f.store, patient).await;
    let mut expected: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected, "every row stored once");
}

async fn a_bad_row_fails_only_its_own_request(f: &Fixture) {
    let writer = AuditWriter::spawn(Arc::clone(&f.store));
    let patient = Uuid::new_v4();
    let existing = read_row(patient);
    writer.record(vec![existing.clone()]).await.expect("first");
    let release = block_audit_inserts(&f.db).await;
    let (first, good) = (read_row(patient), read_row(patient));
    // Same primary key as a stored row: the batch it joins fails as a whole.
    let duplicate = AuditRecord {
        id: existing.id,
        ..read_row(patient)
    };
    let first_done = submit(&writer, first.clone()).await;
    until_taken(&writer).await;
    let good_done = submit(&writer, good.clone()).await;
    let duplicate_done = submit(&writer, duplicate).await;
    release.send(()).expect("release");
    first_done.await.expect("answered").expect("first recorded");
    good_done.await.expect("answered").expect("good recorded");
    assert!(
        duplicate_done.await.expect("answered").is_err(),
        "duplicate refused"
    );
    assert_eq!(
        writer.batches(),
        3,
        "the good row's batch was retried per request"
    );
    let mut ids = stored(&*f.store, patient).await;
    let mut expected = vec![existing.id, first.id, good.id];
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
}

async fn no_rows_cost_no_commit(f: &Fixture) {
    let writer = AuditWriter::spawn(Arc::clone(&f.store));
    writer.record(Vec::new()).await.expect("nothing");
    assert_eq!(writer.batches(), 0);
}

macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $check() {
                super::$check(&super::fixture(false).await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $check() {
                super::$check(&super::fixture(true).await).await;
            })*
        }
    };
}

on_both_backends!(
    concurrent_reads_share_one_commit,
    a_bad_row_fails_only_its_own_request,
    no_rows_cost_no_commit,
);
