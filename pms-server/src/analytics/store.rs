//! Analytics storage: every event once (`events`, unique on the event id — the consumer's
//! dedup), and the aggregates it maintains (`counters`, `money_totals`), updated in the same
//! transaction as the event row. PostgreSQL and SQLite share the SQL.
//!
//! `seq` order is commit order, so a reader tailing by seq (the live feed, `?after=` paging) never
//! skips an event that commits late: on PostgreSQL, where replicas write concurrently and a
//! sequence hands out numbers before commit, each event's transaction first takes
//! [`SERIALISE_PG`]; SQLite serialises writers anyway (`BEGIN IMMEDIATE`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pms_proto::rest::{CurrencyTotals, StoredEvent};
use sqlx::{Database, Executor, IntoArguments, Pool, Postgres, Sqlite};
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{Backend, Fetched, Param, SqlBuilder};

/// An event about to be stored, with the aggregate changes it implies.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub topic: String,
    pub event_type: String,
    pub key: String,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
    pub delta: Delta,
}

/// Aggregate changes of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// `(counter name, increment)`.
    pub counters: Vec<(&'static str, i64)>,
    /// `(currency, invoiced, collected, refunded)` increments.
    pub money: Option<(String, i64, i64, i64)>,
}

/// Counter names.
pub mod counter {
    pub const PATIENTS_CREATED: &str = "patients_created";
    pub const PATIENTS_DELETED: &str = "patients_deleted";
    pub const ACCOUNTS_CREATED: &str = "accounts_created";
    pub const ACCOUNTS_CLOSED: &str = "accounts_closed";
}

#[async_trait::async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Stores `event` and applies its delta, once: `Some(stored)` the first time, `None` when the
    /// event id was already stored (redelivery).
    async fn record(&self, event: &NewEvent) -> Result<Option<StoredEvent>, StoreError> {
        let mut stored = self.record_batch(std::slice::from_ref(event)).await?;
        Ok(stored.pop())
    }
    /// Stores `events` in order in one transaction, applying their deltas summed per counter and
    /// currency; returns the newly stored ones (redeliveries are left out). All or nothing.
    async fn record_batch(&self, events: &[NewEvent]) -> Result<Vec<StoredEvent>, StoreError>;
    /// Value of a counter (0 if never incremented).
    async fn counter(&self, name: &str) -> Result<i64, StoreError>;
    /// Money totals per currency.
    async fn money(&self) -> Result<Vec<CurrencyTotals>, StoreError>;
    /// Number of stored events.
    async fn events_total(&self) -> Result<i64, StoreError>;
    /// How many events of `event_type` occurred in `[from_ms, to_ms)` (counted in SQL).
    async fn count_between(
        &self,
        event_type: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<i64, StoreError>;
    /// Events of `event_type` in `[from_ms, to_ms)` per UTC day: `(day start in ms, count)`,
    /// grouped in SQL (at most one row per day of the range).
    async fn daily_counts(
        &self,
        event_type: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError>;
    /// Stored events after `after_seq`, oldest first, at most `limit`, only of `types` (all when
    /// empty; filtered in SQL on the `(event_type, seq)` index).
    async fn events_after(
        &self,
        after_seq: i64,
        limit: i64,
        types: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The highest seq stored (0 if none).
    async fn last_seq(&self) -> Result<i64, StoreError>;
    /// The first seq whose event occurred at or after `since` (for `?since=`), minus one.
    async fn seq_before(&self, since: DateTime<Utc>) -> Result<i64, StoreError>;
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    event_id: Uuid,
    topic: String,
    event_type: String,
    key: String,
    occurred_at: DateTime<Utc>,
    data: String,
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> Self {
        StoredEvent {
            seq: r.seq,
            event_id: r.event_id,
            topic: r.topic,
            event_type: r.event_type,
            key: r.key,
            occurred_at: r.occurred_at,
            data: serde_json::from_str(&r.data).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(sqlx::FromRow)]
struct MoneyRow {
    currency: String,
    invoiced: i64,
    collected: i64,
    refunded: i64,
}

/// Events per INSERT: seven parameters each stays far below SQLite's 32,766 bind parameters.
const EVENTS_PER_INSERT: usize = 1000;
const BUMP_COUNTER: &str = "INSERT INTO counters (name, value) VALUES ($1, $2) \
     ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value";
const BUMP_MONEY: &str = "INSERT INTO money_totals (currency, invoiced, collected, refunded) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (currency) DO UPDATE SET invoiced = money_totals.invoiced + excluded.invoiced, \
     collected = money_totals.collected + excluded.collected, refunded = money_totals.refunded + excluded.refunded";
/// Taken first in every event transaction on PostgreSQL (released at commit): the seq is drawn
/// and committed under it. Key: "pms-anly".
const SERIALISE_PG: Option<&str> = Some("SELECT pg_advisory_xact_lock(8101257943454739577)");
const SERIALISE_SQLITE: Option<&str> = None;
/// Most event types one query filters on (the API refuses more).
pub const MAX_TYPES: usize = 20;

/// `SELECT … WHERE seq > $1 [AND event_type IN ($3, …)] ORDER BY seq LIMIT $2`.
fn select_events(types: usize) -> String {
    let mut sql = String::from(
        "SELECT seq, event_id, topic, event_type, key, occurred_at, data FROM events WHERE seq > $1",
    );
    if types > 0 {
        let placeholders: Vec<String> = (0..types).map(|i| format!("${}", i + 3)).collect();
        sql.push_str(&format!(" AND event_type IN ({})", placeholders.join(", ")));
    }
    sql.push_str(" ORDER BY seq LIMIT $2");
    sql
}

const COUNT_BETWEEN: &str = "SELECT COUNT(*) FROM events WHERE event_type = $1 AND occurred_at_ms >= $2 AND occurred_at_ms < $3";
const DAILY_COUNTS: &str = "SELECT (occurred_at_ms / 86400000) * 86400000 AS day, COUNT(*) AS n FROM events \
     WHERE event_type = $1 AND occurred_at_ms >= $2 AND occurred_at_ms < $3 GROUP BY day ORDER BY day";

/// The deltas of a batch of events, summed: one counter update per name and one money update per
/// currency per transaction, whatever the batch's size.
#[derive(Default)]
struct Totals {
    counters: std::collections::BTreeMap<&'static str, i64>,
    money: std::collections::BTreeMap<String, (i64, i64, i64)>,
}

impl Totals {
    fn add(&mut self, delta: &Delta) {
        for (name, by) in &delta.counters {
            *self.counters.entry(name).or_default() += by;
        }
        if let Some((currency, invoiced, collected, refunded)) = &delta.money {
            let sum = self.money.entry(currency.clone()).or_default();
            sum.0 += invoiced;
            sum.1 += collected;
            sum.2 += refunded;
        }
    }
}

/// Analytics store on backend `B`.
pub struct SqlAnalyticsStore<B: Database>(pub Pool<B>);

/// Analytics store on PostgreSQL.
pub type PgAnalyticsStore = SqlAnalyticsStore<Postgres>;
/// Analytics store on SQLite.
pub type SqliteAnalyticsStore = SqlAnalyticsStore<Sqlite>;

/// How an event's transaction keeps `seq` order equal to commit order (see the module doc).
pub trait AnalyticsDialect: Backend {
    /// Taken first in every event transaction, if any.
    const SERIALISE: Option<&'static str>;
}

impl AnalyticsDialect for Postgres {
    const SERIALISE: Option<&'static str> = SERIALISE_PG;
}

impl AnalyticsDialect for Sqlite {
    const SERIALISE: Option<&'static str> = SERIALISE_SQLITE;
}

#[async_trait::async_trait]
impl<B> AnalyticsStore for SqlAnalyticsStore<B>
where
    B: AnalyticsDialect,
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> Uuid: Param<'q, B>,
    for<'q> i64: Param<'q, B>,
    for<'q> &'q str: Param<'q, B>,
    for<'q> String: Param<'q, B>,
    for<'q> DateTime<Utc>: Param<'q, B>,
    EventRow: Fetched<B>,
    MoneyRow: Fetched<B>,
    (i64,): Fetched<B>,
    (Option<i64>,): Fetched<B>,
    (i64, i64): Fetched<B>,
    (Uuid, i64): Fetched<B>,
{
    async fn record_batch(&self, events: &[NewEvent]) -> Result<Vec<StoredEvent>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = B::begin_write(&self.0).await?;
        if let Some(lock) = B::SERIALISE {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        // One statement per chunk; seqs are drawn in the rows' order. A redelivered event
        // (already stored, or twice in the batch) returns no row: its delta is not applied again.
        let mut seqs: HashMap<Uuid, i64> = HashMap::with_capacity(events.len());
        for chunk in events.chunks(EVENTS_PER_INSERT) {
            let mut sql = SqlBuilder::<B>::new(
                "INSERT INTO events (event_id, topic, event_type, key, occurred_at, \
                 occurred_at_ms, data) ",
            );
            sql.push_values(chunk, |row, e| {
                row.push_bind(e.event_id)
                    .push_bind(e.topic.clone())
                    .push_bind(e.event_type.clone())
                    .push_bind(e.key.clone())
                    .push_bind(e.occurred_at)
                    .push_bind(e.occurred_at.timestamp_millis())
                    .push_bind(e.data.to_string());
            });
            sql.push(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id, seq");
            let (sql, args) = sql.into_parts()?;
            let rows: Vec<(Uuid, i64)> = sqlx::query_as_with(&sql, args)
                .persistent(chunk.len() == 1)
                .fetch_all(&mut *tx)
                .await?;
            seqs.extend(rows);
        }
        let mut stored = Vec::with_capacity(seqs.len());
        let mut totals = Totals::default();
        for e in events {
            // `remove`: an event twice in the batch counts once.
            if let Some(seq) = seqs.remove(&e.event_id) {
                totals.add(&e.delta);
                stored.push(StoredEvent {
                    seq,
                    event_id: e.event_id,
                    topic: e.topic.clone(),
                    event_type: e.event_type.clone(),
                    key: e.key.clone(),
                    occurred_at: e.occurred_at,
                    data: e.data.clone(),
                });
            }
        }
        stored.sort_by_key(|e| e.seq);
        for (name, by) in &totals.counters {
            sqlx::query(BUMP_COUNTER)
                .bind(*name)
                .bind(*by)
                .execute(&mut *tx)
                .await?;
        }
        for (currency, (invoiced, collected, refunded)) in &totals.money {
            sqlx::query(BUMP_MONEY)
                .bind(currency)
                .bind(*invoiced)
                .bind(*collected)
                .bind(*refunded)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn counter(&self, name: &str) -> Result<i64, StoreError> {
        let value: Option<i64> = sqlx::query_scalar("SELECT value FROM counters WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.0)
            .await?;
        Ok(value.unwrap_or(0))
    }

    async fn money(&self) -> Result<Vec<CurrencyTotals>, StoreError> {
        let rows: Vec<MoneyRow> = sqlx::query_as(
            "SELECT currency, invoiced, collected, refunded FROM money_totals ORDER BY currency",
        )
        .fetch_all(&self.0)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CurrencyTotals {
                outstanding: r.invoiced - r.collected + r.refunded,
                currency: r.currency,
                invoiced: r.invoiced,
                collected: r.collected,
                refunded: r.refunded,
            })
            .collect())
    }

    async fn events_total(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.0)
            .await
            .map_err(StoreError::from)
    }

    async fn count_between(
        &self,
        event_type: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(COUNT_BETWEEN)
            .bind(event_type)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&self.0)
            .await
            .map_err(StoreError::from)
    }

    async fn daily_counts(
        &self,
        event_type: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        sqlx::query_as(DAILY_COUNTS)
            .bind(event_type)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.0)
            .await
            .map_err(StoreError::from)
    }

    async fn events_after(
        &self,
        after_seq: i64,
        limit: i64,
        types: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = select_events(types.len().min(MAX_TYPES));
        let mut query = sqlx::query_as::<_, EventRow>(&sql)
            .bind(after_seq)
            .bind(limit);
        for t in types.iter().take(MAX_TYPES) {
            query = query.bind(t);
        }
        let rows = query.fetch_all(&self.0).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn last_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&self.0)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn seq_before(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM events WHERE occurred_at_ms >= $1")
                .bind(since.timestamp_millis())
                .fetch_one(&self.0)
                .await?;
        match seq {
            Some(seq) => Ok(seq - 1),
            None => self.last_seq().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::store::{Db, ServiceDb};

    async fn stores() -> Vec<(&'static str, Arc<dyn AnalyticsStore>, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = crate::store::connect(
            ServiceDb::Analytics,
            None,
            dir.path(),
            4,
            &super::super::MIGRATIONS,
        )
        .await
        .expect("sqlite");
        let url = secrecy::SecretString::from(crate::store::testing::fresh_postgres_url().await);
        let pg = crate::store::connect(
            ServiceDb::Analytics,
            Some(&url),
            dir.path(),
            4,
            &super::super::MIGRATIONS,
        )
        .await
        .expect("postgres");
        let wrap = |db: Db| -> Arc<dyn AnalyticsStore> {
            match db {
                Db::Postgres(pool) => Arc::new(SqlAnalyticsStore(pool)),
                Db::Sqlite(pool) => Arc::new(SqlAnalyticsStore(pool)),
            }
        };
        let other = tempfile::tempdir().expect("temp dir");
        vec![("sqlite", wrap(sqlite), dir), ("postgres", wrap(pg), other)]
    }

    fn event(event_type: &str, delta: Delta) -> NewEvent {
        NewEvent {
            event_id: Uuid::new_v4(),
            topic: "patient".into(),
            event_type: event_type.into(),
            key: "k".into(),
            occurred_at: Utc::now(),
            data: json!({ "n": 1 }),
            delta,
        }
    }

    fn counted(name: &'static str) -> Delta {
        Delta {
            counters: vec![(name, 1)],
            money: None,
        }
    }

    fn paid(currency: &str, collected: i64) -> Delta {
        Delta {
            counters: Vec::new(),
            money: Some((currency.into(), 0, collected, 0)),
        }
    }

    #[tokio::test]
    async fn a_batch_stores_each_event_once_in_order_and_sums_its_deltas() {
        for (backend, store, _dir) in stores().await {
            let first = event("PATIENT_CREATED", counted(counter::PATIENTS_CREATED));
            store.record(&first).await.expect("record").expect("new");
            let batch = vec![
                event("PATIENT_CREATED", counted(counter::PATIENTS_CREATED)),
                // A redelivery inside a batch: stored and counted once.
                first.clone(),
                event("PAYMENT_RECEIVED", paid("EUR", 250)),
                event("PATIENT_CREATED", counted(counter::PATIENTS_CREATED)),
                event("PAYMENT_RECEIVED", paid("EUR", 100)),
                event("PAYMENT_RECEIVED", paid("USD", 7)),
            ];
            let stored = store.record_batch(&batch).await.expect("batch");
            let ids: Vec<Uuid> = stored.iter().map(|e| e.event_id).collect();
            let expected: Vec<Uuid> = batch
                .iter()
                .filter(|e| e.event_id != first.event_id)
                .map(|e| e.event_id)
                .collect();
            assert_eq!(ids, expected, "{backend}: the new events, in order");
            assert!(
                stored.windows(2).all(|w| w[0].seq < w[1].seq),
                "{backend}: seq ascending"
            );
            assert_eq!(store.events_total().await.expect("total"), 6, "{backend}");
            assert_eq!(
                store
                    .counter(counter::PATIENTS_CREATED)
                    .await
                    .expect("counter"),
                3,
                "{backend}"
            );
            let money = store.money().await.expect("money");
            let collected: Vec<(String, i64)> = money
                .iter()
                .map(|m| (m.currency.clone(), m.collected))
                .collect();
            assert_eq!(
                collected,
                vec![("EUR".into(), 350), ("USD".into(), 7)],
                "{backend}"
            );
            // The whole batch again: nothing new, nothing counted twice.
            assert!(
                store.record_batch(&batch).await.expect("again").is_empty(),
                "{backend}"
            );
            assert_eq!(
                store
                    .counter(counter::PATIENTS_CREATED)
                    .await
                    .expect("counter"),
                3,
                "{backend}"
            );
        }
    }
}
