//! [`StoreError`]'s classification of real database errors, on both backends.

use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, IntoArguments};

use super::StoreError;
use crate::store::Backend;

const SCHEMA: &str = "CREATE TABLE parent (id INTEGER PRIMARY KEY, k TEXT NOT NULL, \
                      CONSTRAINT parent_k_key UNIQUE (k)); \
                      CREATE TABLE child (id INTEGER PRIMARY KEY, \
                      parent_id INTEGER NOT NULL CONSTRAINT child_parent_fkey REFERENCES parent (id))";

/// What each kind of failing statement converts to on `conn`.
async fn classify<B: Backend>(conn: &mut B::Connection) -> Vec<StoreError>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
{
    let mut errors = Vec::new();
    for sql in [
        "INSERT INTO parent (id, k) VALUES (2, 'a')",
        "INSERT INTO child (id, parent_id) VALUES (1, 99)",
        "SELECT nonsense FROM parent",
        // No row where one was expected.
        "SELECT id FROM parent WHERE id = 42",
    ] {
        match sqlx::query(sql).fetch_one(&mut *conn).await {
            Ok(_) => panic!("{sql} succeeded"),
            Err(e) => errors.push(StoreError::from(e)),
        }
    }
    errors
}

#[tokio::test]
async fn sqlite_errors_are_classified_by_kind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("errors.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let mut conn = options.connect().await.expect("open");
    conn.execute(SCHEMA).await.expect("schema");
    conn.execute("INSERT INTO parent (id, k) VALUES (1, 'a')")
        .await
        .expect("row");
    let errors = classify::<sqlx::Sqlite>(&mut conn).await;
    assert!(
        matches!(&errors[0], StoreError::Conflict(c) if c.contains("parent.k")),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(&errors[1], StoreError::ForeignKey(_)),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(&errors[2], StoreError::Other(_)),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(&errors[3], StoreError::NotFound),
        "{:?}",
        errors[3]
    );

    // Another connection holds the write lock and this one does not wait: SQLITE_BUSY.
    let mut holder = options.connect().await.expect("open");
    holder.execute("BEGIN IMMEDIATE").await.expect("lock");
    let mut impatient = options
        .clone()
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .expect("open");
    let busy = match impatient
        .execute("INSERT INTO parent (id, k) VALUES (3, 'c')")
        .await
    {
        Ok(_) => panic!("wrote beside a write lock"),
        Err(e) => StoreError::from(e),
    };
    assert!(matches!(busy, StoreError::Contention(_)), "{busy:?}");
    holder.execute("ROLLBACK").await.expect("unlock");
}

#[tokio::test]
async fn postgres_errors_are_classified_by_kind_and_code() {
    let url = crate::store::testing::fresh_postgres_url().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    conn.execute(SCHEMA).await.expect("schema");
    conn.execute("INSERT INTO parent (id, k) VALUES (1, 'a')")
        .await
        .expect("row");
    let errors = classify::<sqlx::Postgres>(&mut conn).await;
    assert!(
        matches!(&errors[0], StoreError::Conflict(c) if c == "parent_k_key"),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(&errors[1], StoreError::ForeignKey(c) if c == "child_parent_fkey"),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(&errors[2], StoreError::Other(_)),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(&errors[3], StoreError::NotFound),
        "{:?}",
        errors[3]
    );

    // serialization_failure and deadlock_detected, as the server reports them.
    for code in ["40001", "40P01"] {
        let sql =
            format!("DO $$ BEGIN RAISE EXCEPTION 'concurrent' USING ERRCODE = '{code}'; END $$");
        let err = match conn.execute(sql.as_str()).await {
            Ok(_) => panic!("{code} not raised"),
            Err(e) => StoreError::from(e),
        };
        assert!(matches!(err, StoreError::Contention(_)), "{code}: {err:?}");
    }
}
