//! The SQLite writer: one queue of write transactions per database file; PostgreSQL's first
//! statistics of a fresh schema.

use std::sync::{Arc, Mutex};

use super::*;

async fn sqlite(dir: &tempfile::TempDir, name: &str) -> SqlitePool {
    let pool = connect_sqlite(&dir.path().join(name), 4)
        .await
        .expect("open SQLite");
    sqlx::query("CREATE TABLE IF NOT EXISTS t (n INTEGER NOT NULL)")
        .execute(&pool)
        .await
        .expect("create table");
    pool
}

/// The writer of `pool`'s file: (connections open, connections idle).
fn writer_state(pool: &SqlitePool) -> (u32, usize) {
    let writer = sqlite_writer(pool).expect("a writer for the file");
    (writer.size(), writer.num_idle())
}

#[tokio::test]
async fn write_transactions_run_on_the_files_single_writer_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = sqlite(&dir, "one.db").await;
    // A second pool on the same file (another store of this process) shares the writer.
    let same_file = sqlite(&dir, "one.db").await;
    let other_file = sqlite(&dir, "two.db").await;

    let mut tx = pool.begin_write().await.expect("begin");
    sqlx::query("INSERT INTO t (n) VALUES (1)")
        .execute(&mut *tx)
        .await
        .expect("insert");
    assert_eq!(writer_state(&pool), (1, 0), "the writer is busy with tx");
    assert_eq!(writer_state(&same_file), (1, 0), "one writer per file");
    // Reads go on beside the open write transaction (WAL), on the read pool.
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&same_file)
        .await
        .expect("read");
    assert_eq!(seen, 0, "the uncommitted row is not visible");
    // Another file's writer is free.
    let other = other_file.begin_write().await.expect("other file");
    other.commit().await.expect("commit other");
    tx.commit().await.expect("commit");
    // The connection goes back to the writer (in a spawned task) for the next transaction.
    pool.begin_write()
        .await
        .expect("begin again")
        .commit()
        .await
        .expect("commit again");
    assert_eq!(writer_state(&pool).0, 1, "never a second write connection");
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&same_file)
        .await
        .expect("read");
    assert_eq!(seen, 1);
}

/// Writers queue in arrival order instead of polling SQLite's lock (whose busy handler would let
/// any of them in, in whatever order its sleeps end).
#[tokio::test]
async fn waiting_writers_are_served_in_arrival_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = sqlite(&dir, "queue.db").await;
    let first = pool.begin_write().await.expect("begin");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..8i64 {
        let (pool, order) = (pool.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let mut tx = pool.begin_write().await.expect("begin in turn");
            order.lock().expect("order").push(i);
            sqlx::query("INSERT INTO t (n) VALUES ($1)")
                .bind(i)
                .execute(&mut *tx)
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
        }));
        // The test runtime has one thread: this lets task `i` run until it waits in the queue.
        tokio::task::yield_now().await;
    }
    assert!(
        order.lock().expect("order").is_empty(),
        "all wait for the first"
    );
    first.commit().await.expect("commit first");
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(*order.lock().expect("order"), (0..8).collect::<Vec<i64>>());
    let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY rowid")
        .fetch_all(&pool)
        .await
        .expect("rows");
    assert_eq!(rows, (0..8).collect::<Vec<i64>>());
}

#[tokio::test]
async fn a_closed_database_falls_back_to_the_sqlite_lock_and_reopening_gets_a_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = sqlite(&dir, "closed.db").await;
    let other = sqlite(&dir, "closed.db").await;
    Db::Sqlite(pool.clone()).close().await;
    assert!(sqlite_writer(&other).is_none(), "the writer closed with it");
    // The other pool on the file still writes, serialised by SQLite's own lock.
    let mut tx = other.begin_write().await.expect("begin without a writer");
    sqlx::query("INSERT INTO t (n) VALUES (7)")
        .execute(&mut *tx)
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    let reopened = sqlite(&dir, "closed.db").await;
    assert_eq!(
        writer_state(&reopened),
        (0, 0),
        "a fresh writer, connecting lazily"
    );
    reopened
        .begin_write()
        .await
        .expect("begin")
        .commit()
        .await
        .expect("commit");
    assert_eq!(
        writer_state(&other).0,
        1,
        "shared again: the reopened one's connection"
    );
}

/// A fresh schema's table is analyzed seconds after its first rows (by this process: a manual
/// `last_analyze`, not autovacuum's, which could take a minute), so its queries are planned on
/// statistics instead of default guesses — and again once it has grown past its estimate.
#[tokio::test]
async fn a_fresh_table_gets_statistics_within_seconds_and_again_as_it_grows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = SecretString::from(testing::fresh_postgres_url().await);
    let db = connect(
        ServiceDb::Patient,
        Some(&url),
        dir.path(),
        4,
        &crate::patient::MIGRATIONS,
    )
    .await
    .expect("connect");
    let Db::Postgres(pool) = &db else {
        panic!("a PostgreSQL URL gives a PostgreSQL pool")
    };
    // Autovacuum off for it: with many test databases it may analyze first (its
    // `last_autoanalyze`), and the task must be the one that does.
    sqlx::query(
        "CREATE TABLE fresh (n BIGINT PRIMARY KEY, gone TIMESTAMPTZ) \
         WITH (autovacuum_enabled = false)",
    )
    .execute(pool)
    .await
    .expect("create");
    sqlx::query("INSERT INTO fresh SELECT n, NULL FROM generate_series(1, 500) AS n")
        .execute(pool)
        .await
        .expect("insert");
    let took = analyzed_with(pool, 500.0).await;
    println!("analyzed {took:?} after the insert");
    // Grown threefold: analyzed again, so cached plans follow the table.
    sqlx::query("INSERT INTO fresh SELECT n, NULL FROM generate_series(501, 1500) AS n")
        .execute(pool)
        .await
        .expect("insert more");
    let took = analyzed_with(pool, 1500.0).await;
    println!("analyzed again {took:?} after the second insert");
    db.close().await;
}

/// Waits (45 s at most) until table `fresh` was analyzed by a manual ANALYZE (not autovacuum's)
/// whose statistics count `rows` rows; returns how long that took.
async fn analyzed_with(pool: &sqlx::PgPool, rows: f32) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let (manual, live): (bool, f32) = sqlx::query_as(
            "SELECT s.last_analyze IS NOT NULL, c.reltuples \
             FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
             WHERE s.schemaname = current_schema() AND s.relname = 'fresh'",
        )
        .fetch_one(pool)
        .await
        .expect("statistics");
        if manual && live == rows {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "not analyzed with {rows} rows after {:?} (analyzed: {manual}, reltuples {live})",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
