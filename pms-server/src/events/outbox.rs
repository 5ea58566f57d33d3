//! The transactional outbox: each producing service has an `outbox` table in its own database
//! (see its migrations). [`enqueue`] writes an event inside the caller's transaction, so the event
//! exists if and only if the change committed; the [`super::relay`] publishes committed rows.

use chrono::{DateTime, Utc};
use sqlx::{Database, Executor, IntoArguments};
use uuid::Uuid;

use super::EventRecord;
use crate::store::{Backend, Db, Param, SqlBuilder, sqlite_write_pool};

/// Writes events into the outbox of the connection's database (inside the caller's transaction).
pub trait Enqueue {
    fn enqueue(
        &mut self,
        event: &EventRecord,
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;

    /// Writes `events` with one statement (none: nothing).
    fn enqueue_many(
        &mut self,
        events: &[EventRecord],
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    seq: i64,
    id: Uuid,
    topic: String,
    key: String,
    event_type: String,
    payload: Vec<u8>,
    occurred_at: DateTime<Utc>,
}

impl From<OutboxRow> for (i64, EventRecord) {
    fn from(r: OutboxRow) -> Self {
        (
            r.seq,
            EventRecord {
                id: r.id,
                topic: r.topic,
                key: r.key,
                event_type: r.event_type,
                payload: r.payload,
                occurred_at: r.occurred_at,
            },
        )
    }
}

const INSERT: &str = "INSERT INTO outbox (id, topic, key, event_type, payload, occurred_at) VALUES ($1, $2, $3, $4, $5, $6)";
const PENDING: &str = "SELECT seq, id, topic, key, event_type, payload, occurred_at FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1";
/// SQLite: writers are serialised (BEGIN IMMEDIATE), so seq order is commit order and "everything
/// up to the last published seq" is exactly what was read and sent.
const MARK_UP_TO: &str =
    "UPDATE outbox SET published_at = $1 WHERE seq <= $2 AND published_at IS NULL";
/// PostgreSQL: seqs are handed out at insert but transactions commit in any order — a lower seq may
/// commit after the relay read a higher one — so only the rows actually sent are marked.
const MARK_EACH: &str =
    "UPDATE outbox SET published_at = $1 WHERE seq = ANY($2) AND published_at IS NULL";
const BACKLOG: &str = "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL";
const PRUNE: &str = "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at <= $1";
const REPLAY: &str = "UPDATE outbox SET published_at = NULL WHERE published_at >= $1";
const ROWS: &str = "SELECT COUNT(*) FROM outbox";

impl<C> Enqueue for C
where
    C: sqlx::Connection,
    C::Database: Backend,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
    for<'q> <C::Database as Database>::Arguments<'q>: IntoArguments<'q, C::Database>,
    for<'q> Uuid: Param<'q, C::Database>,
    for<'q> String: Param<'q, C::Database>,
    for<'q> Vec<u8>: Param<'q, C::Database>,
    for<'q> DateTime<Utc>: Param<'q, C::Database>,
{
    async fn enqueue(&mut self, e: &EventRecord) -> Result<(), sqlx::Error> {
        sqlx::query(INSERT)
            .bind(e.id)
            .bind(&e.topic)
            .bind(&e.key)
            .bind(&e.event_type)
            .bind(&e.payload)
            .bind(e.occurred_at)
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn enqueue_many(&mut self, events: &[EventRecord]) -> Result<(), sqlx::Error> {
        match events {
            [] => Ok(()),
            [event] => self.enqueue(event).await,
            _ => {
                let mut sql = SqlBuilder::<C::Database>::new(
                    "INSERT INTO outbox (id, topic, key, event_type, payload, occurred_at) ",
                );
                sql.push_values(events, |row, e| {
                    row.push_bind(e.id)
                        .push_bind(e.topic.clone())
                        .push_bind(e.key.clone())
                        .push_bind(e.event_type.clone())
                        .push_bind(e.payload.clone())
                        .push_bind(e.occurred_at);
                });
                // Each row count is its own SQL text: not kept prepared.
                let (sql, args) = sql.into_parts()?;
                sqlx::query_with(&sql, args)
                    .persistent(false)
                    .execute(self)
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// The oldest unpublished events, in commit order.
pub async fn pending(db: &Db, limit: i64) -> Result<Vec<(i64, EventRecord)>, sqlx::Error> {
    let rows: Vec<OutboxRow> = match db {
        Db::Postgres(pool) => sqlx::query_as(PENDING).bind(limit).fetch_all(pool).await?,
        Db::Sqlite(pool) => sqlx::query_as(PENDING).bind(limit).fetch_all(pool).await?,
    };
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Marks the events with seqs `sent` (all published by the relay) as published.
pub async fn mark_published(db: &Db, sent: &[i64]) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    match db {
        Db::Postgres(pool) => {
            sqlx::query(MARK_EACH)
                .bind(now)
                .bind(sent)
                .execute(pool)
                .await?;
        }
        Db::Sqlite(pool) => {
            if let Some(last) = sent.iter().max() {
                sqlx::query(MARK_UP_TO)
                    .bind(now)
                    .bind(last)
                    .execute(&sqlite_write_pool(pool))
                    .await?;
            }
        }
    }
    Ok(())
}

/// How many events wait to be published (a metric and a test hook).
pub async fn backlog(db: &Db) -> Result<i64, sqlx::Error> {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(BACKLOG).fetch_one(pool).await,
        Db::Sqlite(pool) => sqlx::query_scalar(BACKLOG).fetch_one(pool).await,
    }
}

/// Deletes rows published at least `retention` ago; returns how many.
pub async fn prune(db: &Db, retention: std::time::Duration) -> Result<u64, sqlx::Error> {
    delete_older_than(db, PRUNE, retention).await
}

/// Runs `sql` — a DELETE whose one bind is a cutoff time — for rows older than `retention`;
/// returns how many went. Shared by the outbox and the embedded log.
pub(crate) async fn delete_older_than(
    db: &Db,
    sql: &'static str,
    retention: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let cutoff = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| Utc::now().checked_sub_signed(r))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    Ok(match db {
        Db::Postgres(pool) => sqlx::query(sql)
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected(),
        Db::Sqlite(pool) => sqlx::query(sql)
            .bind(cutoff)
            .execute(&sqlite_write_pool(pool))
            .await?
            .rows_affected(),
    })
}

/// Marks rows published since `since` unpublished again (the relay sends them once more);
/// returns how many.
pub async fn replay_since(db: &Db, since: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = match db {
        Db::Postgres(pool) => sqlx::query(REPLAY)
            .bind(since)
            .execute(pool)
            .await?
            .rows_affected(),
        Db::Sqlite(pool) => sqlx::query(REPLAY)
            .bind(since)
            .execute(&sqlite_write_pool(pool))
            .await?
            .rows_affected(),
    };
    Ok(done)
}

/// Every row, published or not (a test hook for retention).
pub async fn rows(db: &Db) -> Result<i64, sqlx::Error> {
    match db {
        Db::Postgres(pool) => sqlx::query_scalar(ROWS).fetch_one(pool).await,
        Db::Sqlite(pool) => sqlx::query_scalar(ROWS).fetch_one(pool).await,
    }
}
