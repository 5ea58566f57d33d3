//! The embedded event log: the transport of `pms-server` without Kafka. Events are appended
//! (idempotently, on the event id) to an `event_log` table in the events database — SQLite
//! `events.db` in the data dir, or schema `events` on PostgreSQL — and consumer groups keep their
//! committed position in `consumer_offsets`. Durable and replayable: a restart resumes every group
//! after its last committed event. Consumers in the same process are woken on append; others poll.
//! Events every registered group has consumed are deleted after `events.log_retention_secs`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{EventRecord, Handler, PublishError, Publisher, deliver, deliver_at_once};
use crate::config::Settings;
use crate::store::{self, BeginWrite, Db, Migrations, ServiceDb};
use crate::supervise::{self, Background};

static MIGRATIONS: Migrations = Migrations {
    postgres: &sqlx::migrate!("./migrations/postgres/events"),
    sqlite: &sqlx::migrate!("./migrations/sqlite/events"),
};

/// Consumers not woken in-process (appends by another process on a shared PostgreSQL) look for
/// new events this often.
const POLL: Duration = Duration::from_secs(2);
const BATCH: i64 = 200;
/// An event handled for longer than this (its handler failing and retrying) first commits the
/// group's progress before it.
const SLOW_EVENT: Duration = Duration::from_secs(1);

/// One log per location per process, so producers and consumers in one process share wake-ups.
static OPEN: LazyLock<Mutex<HashMap<String, Weak<EmbeddedLog>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// An open embedded log.
pub struct EmbeddedLog {
    db: Db,
    appended: watch::Sender<u64>,
}

#[derive(sqlx::FromRow)]
struct LogRow {
    seq: i64,
    id: Uuid,
    topic: String,
    key: String,
    event_type: String,
    payload: Vec<u8>,
    occurred_at: DateTime<Utc>,
}

/// Advisory lock key of appends to the PostgreSQL event log ("pms-elog").
const APPEND_LOCK: i64 = 0x706d_732d_656c_6f67;
const READ: &str = "SELECT seq, id, topic, key, event_type, payload, occurred_at FROM event_log WHERE seq > $1 ORDER BY seq LIMIT $2";
const OFFSET: &str = "SELECT last_seq FROM consumer_offsets WHERE group_id = $1";
const LAG: &str = "SELECT COUNT(*) FROM event_log WHERE seq > $1 AND topic = $2";
const REGISTER: &str = "INSERT INTO consumer_offsets (group_id, last_seq) VALUES ($1, 0) ON CONFLICT (group_id) DO NOTHING";
/// Past every registered group and old enough (no group registered: MIN is NULL, nothing goes).
const PRUNE: &str = "DELETE FROM event_log WHERE seq <= (SELECT MIN(last_seq) FROM consumer_offsets) AND appended_at <= $1";
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const COMMIT: &str = "INSERT INTO consumer_offsets (group_id, last_seq) VALUES ($1, $2) ON CONFLICT (group_id) DO UPDATE SET last_seq = excluded.last_seq";

impl EmbeddedLog {
    /// Opens (or joins, within this process) the log the settings point at; the first opener
    /// starts its supervised pruning (see [`EmbeddedLog::prune`]).
    pub async fn open(
        settings: &Settings,
        background: &Background,
    ) -> anyhow::Result<Arc<EmbeddedLog>> {
        let url = settings.database_url_for(ServiceDb::Events);
        let location = match url {
            Some(url) => url.expose_secret().to_owned(),
            None => settings
                .data_dir
                .join("events.db")
                .to_string_lossy()
                .into_owned(),
        };
        let mut open = OPEN.lock().await;
        if let Some(log) = open.get(&location).and_then(Weak::upgrade) {
            return Ok(log);
        }
        let db = store::connect(
            ServiceDb::Events,
            url,
            &settings.data_dir,
            settings.database.max_connections,
            &MIGRATIONS,
        )
        .await
        .context("while opening the embedded event log")?;
        let log = Arc::new(EmbeddedLog {
            db,
            appended: watch::Sender::new(0),
        });
        open.retain(|_, weak| weak.strong_count() > 0);
        open.insert(location, Arc::downgrade(&log));
        let retention = settings.events.log_retention;
        let weak = Arc::downgrade(&log);
        let shutdown = background.shutdown().clone();
        supervise::spawn(background, "embedded event log pruning", move || {
            prune_periodically(weak.clone(), retention, shutdown.clone())
        });
        Ok(log)
    }

    /// Events after `after_seq`, in log order, at most `limit`.
    pub async fn read_after(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, EventRecord)>, sqlx::Error> {
        let rows: Vec<LogRow> = match &self.db {
            Db::Postgres(pool) => {
                sqlx::query_as(READ)
                    .bind(after_seq)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Db::Sqlite(pool) => {
                sqlx::query_as(READ)
                    .bind(after_seq)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|r| {
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
            })
            .collect())
    }

    /// Reports `consumer_lag` of `group` at each metrics scrape: the events of each of `topics`
    /// after its committed position (partition 0: the log has one order).
    pub fn watch_lag(self: Arc<Self>, group: &str, topics: &[&str]) {
        let log = Arc::downgrade(&self);
        let owner = group.to_owned();
        let lag = move |topic: String| -> futures::future::BoxFuture<'static, Option<i64>> {
            let (log, group) = (log.clone(), owner.clone());
            Box::pin(async move {
                let log = log.upgrade()?;
                let after = log.committed(&group).await.ok()?;
                let count: Result<i64, sqlx::Error> = match &log.db {
                    Db::Postgres(pool) => {
                        sqlx::query_scalar(LAG)
                            .bind(after)
                            .bind(&topic)
                            .fetch_one(pool)
                            .await
                    }
                    Db::Sqlite(pool) => {
                        sqlx::query_scalar(LAG)
                            .bind(after)
                            .bind(&topic)
                            .fetch_one(pool)
                            .await
                    }
                };
                count.ok()
            })
        };
        crate::observe::watch_lag(
            group.to_owned(),
            topics.iter().map(|t| (*t).to_owned()).collect(),
            Arc::new(lag),
        );
    }

    /// The committed position of `group` (0 = nothing consumed yet).
    pub async fn committed(&self, group: &str) -> Result<i64, sqlx::Error> {
        let seq: Option<i64> = match &self.db {
            Db::Postgres(pool) => {
                sqlx::query_scalar(OFFSET)
                    .bind(group)
                    .fetch_optional(pool)
                    .await?
            }
            Db::Sqlite(pool) => {
                sqlx::query_scalar(OFFSET)
                    .bind(group)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(seq.unwrap_or(0))
    }

    async fn commit(&self, group: &str, seq: i64) -> Result<(), sqlx::Error> {
        match &self.db {
            Db::Postgres(pool) => sqlx::query(COMMIT)
                .bind(group)
                .bind(seq)
                .execute(pool)
                .await
                .map(|_| ())?,
            Db::Sqlite(pool) => sqlx::query(COMMIT)
                .bind(group)
                .bind(seq)
                .execute(&crate::store::sqlite_write_pool(pool))
                .await
                .map(|_| ())?,
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| format!("event log: {e}"))
    }

    /// Runs consumer group `group` over `topics`, supervised in `background`, until shutdown.
    pub fn spawn_consumer(
        self: Arc<Self>,
        group: &str,
        topics: &[&str],
        handler: Arc<dyn Handler>,
        background: &Background,
    ) -> tokio::task::JoinHandle<()> {
        let group = group.to_owned();
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        let shutdown = background.shutdown().clone();
        supervise::spawn(background, format!("event consumer {group}"), move || {
            self.clone().consume(
                group.clone(),
                topics.clone(),
                handler.clone(),
                shutdown.clone(),
            )
        })
    }

    async fn consume(
        self: Arc<Self>,
        group: String,
        topics: Vec<String>,
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        // Registered at once: the log is never pruned past a group that has not consumed yet.
        self.register(&group).await?;
        {
            let mut woken = self.appended.subscribe();
            let mut backoff = Duration::from_millis(100);
            'outer: loop {
                let result = async {
                    let mut last = self.committed(&group).await?;
                    loop {
                        let batch = self.read_after(last, BATCH).await?;
                        if batch.is_empty() {
                            return Ok::<bool, sqlx::Error>(true);
                        }
                        // One offset commit per batch: a crash mid-batch redelivers the
                        // batch's handled events, which the handlers' dedup makes harmless. An
                        // event still being retried after a second commits the progress before
                        // it, so a stuck event never holds back the log's pruning by more.
                        let mut committed = last;
                        let mine: Vec<&EventRecord> = batch
                            .iter()
                            .filter(|(_, e)| topics.contains(&e.topic))
                            .map(|(_, e)| e)
                            .collect();
                        if deliver_at_once(&group, handler.as_ref(), &mine).await {
                            if let Some((seq, _)) = batch.last() {
                                last = *seq;
                                self.commit(&group, last).await?;
                            }
                            continue;
                        }
                        for (seq, event) in batch {
                            if topics.contains(&event.topic) {
                                let delivery = deliver(&group, handler.as_ref(), &event, &shutdown);
                                tokio::pin!(delivery);
                                let delivered = tokio::select! {
                                    delivered = &mut delivery => delivered,
                                    _ = tokio::time::sleep(SLOW_EVENT) => {
                                        if last > committed {
                                            self.commit(&group, last).await?;
                                            committed = last;
                                        }
                                        delivery.await
                                    }
                                };
                                if !delivered {
                                    if last > committed {
                                        self.commit(&group, last).await?;
                                    }
                                    return Ok(false);
                                }
                            }
                            last = seq;
                        }
                        if last > committed {
                            self.commit(&group, last).await?;
                        }
                    }
                }
                .await;
                match result {
                    Ok(true) => backoff = Duration::from_millis(100),
                    Ok(false) => break 'outer,
                    Err(e) => {
                        tracing::warn!(group, error = %e, "embedded log consumer: storage error; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => break 'outer,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = woken.changed() => tokio::time::sleep(super::LINGER).await,
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
        Ok(())
    }

    async fn register(&self, group: &str) -> Result<(), sqlx::Error> {
        match &self.db {
            Db::Postgres(pool) => sqlx::query(REGISTER)
                .bind(group)
                .execute(pool)
                .await?
                .rows_affected(),
            Db::Sqlite(pool) => sqlx::query(REGISTER)
                .bind(group)
                .execute(&crate::store::sqlite_write_pool(pool))
                .await?
                .rows_affected(),
        };
        Ok(())
    }

    /// Deletes the events every registered consumer group has consumed that were appended at
    /// least `retention` ago (nothing while no group is registered); returns how many.
    pub async fn prune(&self, retention: Duration) -> Result<u64, sqlx::Error> {
        super::outbox::delete_older_than(&self.db, PRUNE, retention).await
    }

    /// Rows in the log (a test hook for retention).
    pub async fn rows(&self) -> Result<i64, sqlx::Error> {
        const COUNT: &str = "SELECT COUNT(*) FROM event_log";
        match &self.db {
            Db::Postgres(pool) => sqlx::query_scalar(COUNT).fetch_one(pool).await,
            Db::Sqlite(pool) => sqlx::query_scalar(COUNT).fetch_one(pool).await,
        }
    }
}

/// Prunes the log every minute while it is open.
async fn prune_periodically(
    log: Weak<EmbeddedLog>,
    retention: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
        // Closed (every user gone): nothing left to prune; wait for shutdown.
        let Some(log) = log.upgrade() else {
            shutdown.cancelled().await;
            return Ok(());
        };
        match log.prune(retention).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "embedded event log pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot prune the embedded event log"),
        }
    }
}

#[async_trait::async_trait]
impl Publisher for EmbeddedLog {
    async fn publish(&self, e: &EventRecord) -> Result<(), PublishError> {
        let (_, failure) = self.publish_batch(std::slice::from_ref(e)).await;
        failure.map_or(Ok(()), Err)
    }

    /// Appends the whole batch in one transaction (one commit per relay round, not per event).
    async fn publish_batch(&self, events: &[EventRecord]) -> (usize, Option<PublishError>) {
        let Some(first) = events.first() else {
            return (0, None);
        };
        let now = Utc::now();
        let result = match &self.db {
            // Appends are serialised by a transaction-scoped advisory lock taken before the seqs
            // are allocated, so seq order is commit order: a consumer that read up to seq N can
            // never later miss an N-1 that committed after it. (SQLite serialises writers anyway.)
            Db::Postgres(pool) => {
                async {
                    let mut tx = pool.begin().await?;
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(APPEND_LOCK)
                        .execute(&mut *tx)
                        .await?;
                    for chunk in events.chunks(ROWS_PER_APPEND) {
                        // Not kept prepared: one statement per batch size would crowd the cache.
                        append(chunk, now)
                            .build()
                            .persistent(false)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await
                }
                .await
            }
            Db::Sqlite(pool) => {
                async {
                    let mut tx = pool.begin_write().await?;
                    for chunk in events.chunks(ROWS_PER_APPEND) {
                        // Not kept prepared: one statement per batch size would crowd the cache.
                        append(chunk, now)
                            .build()
                            .persistent(false)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await
                }
                .await
            }
        };
        if let Err(err) = result {
            return (
                0,
                Some(PublishError {
                    id: first.id,
                    topic: first.topic.clone(),
                    reason: err.to_string(),
                }),
            );
        }
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        (events.len(), None)
    }
}

/// Events appended by one statement at most (7 parameters each, far below SQLite's limit).
const ROWS_PER_APPEND: usize = 100;

/// The append of `events` in one statement, in order (their seqs follow it); an event whose id
/// is already in the log is skipped.
fn append<'q, DB>(events: &'q [EventRecord], now: DateTime<Utc>) -> sqlx::QueryBuilder<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut sql = sqlx::QueryBuilder::new(
        "INSERT INTO event_log (id, topic, key, event_type, payload, occurred_at, appended_at) ",
    );
    sql.push_values(events, |mut row, e| {
        row.push_bind(e.id)
            .push_bind(&e.topic)
            .push_bind(&e.key)
            .push_bind(&e.event_type)
            .push_bind(&e.payload)
            .push_bind(e.occurred_at)
            .push_bind(now);
    });
    sql.push(" ON CONFLICT (id) DO NOTHING");
    sql
}
