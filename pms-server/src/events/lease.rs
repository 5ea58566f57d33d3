//! One outbox relay at a time per outbox: every replica of a producing service runs a relay over
//! the same table, and only the holder of the outbox's lease publishes.
//!
//! - **PostgreSQL**: a session advisory lock held on a dedicated connection (not a pooled one: the
//!   lock lives exactly as long as that session). Standbys wait for it inside the server
//!   (`pg_advisory_lock`), so when the holder dies — SIGKILL closes its socket, the server ends the
//!   session and frees the lock — the next waiter holds it at once. A holder whose host vanished is
//!   dropped by the server's TCP keepalives (set on the session, ≈ 11 s). No row is written to
//!   hold or renew the lease: an idle installation commits nothing for it. The holder checks its
//!   session every second with a protocol-level ping (no transaction) and steps down when it fails.
//! - **SQLite**: one process per database file, so the lease is a process-local lock per file.
//!
//! Losing the lease mid-batch can make two relays publish the same rows for a moment: consumers
//! deduplicate on the event id, and since each relay publishes in commit order, the first copy of
//! every event still reaches a partition in order per key.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::watch;

use crate::store::Db;

/// How often the holder checks that its lease session is still alive.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Settings of the lease session. `lock_timeout` bounds one wait for the lock (the standby simply
/// waits again: one transaction per 30 s), so the wait of a client that vanished ends too; the
/// keepalives let the server notice a holder whose host disappeared. Each is optional: a server
/// that refuses one (older version, managed restrictions) still gives a working lease.
const SESSION: [(&str, &str); 6] = [
    ("lock_timeout", "'30s'"),
    ("statement_timeout", "0"),
    ("idle_session_timeout", "0"),
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
];
/// SQLSTATE of `lock_timeout` expiring.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Process-local leases of SQLite outboxes, per database file.
static LOCAL: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A relay's claim on its outbox: held or waiting, kept by a background task that ends (freeing
/// the lease) when this value is dropped.
pub(crate) struct Lease {
    holding: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Dropping the task drops its connection or guard: the lease is free for the next relay.
        self.task.abort();
    }
}

impl Lease {
    /// Starts competing for the lease of `service`'s outbox in `db`.
    pub(crate) fn acquire(service: &'static str, db: &Db) -> Lease {
        let (tx, holding) = watch::channel(false);
        let task = match db {
            Db::Postgres(pool) => {
                // The wait for the lock is a long statement by design: not worth a warning.
                let options = (*pool.connect_options())
                    .clone()
                    .log_slow_statements(tracing::log::LevelFilter::Off, Duration::MAX);
                tokio::spawn(hold_postgres(service, options, tx))
            }
            Db::Sqlite(pool) => {
                let path = pool.connect_options().get_filename().to_owned();
                tokio::spawn(hold_local(path, tx))
            }
        };
        Lease { holding, task }
    }

    /// Whether this relay holds the lease now.
    pub(crate) fn held(&self) -> bool {
        *self.holding.borrow()
    }

    /// Waits until the lease is taken or lost.
    pub(crate) async fn changed(&mut self) {
        if self.holding.changed().await.is_err() {
            // The task never ends on its own; if it did, there is nothing left to wait for.
            std::future::pending::<()>().await;
        }
    }
}

/// The advisory lock key of `service`'s outbox ("pms-rly" + the service): advisory locks are per
/// database, and services may share one database (a schema each).
fn lock_key(service: &str) -> i64 {
    // FNV-1a: stable across builds and platforms (unlike the std hasher).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"pms-relay:".iter().chain(service.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

async fn hold_local(path: PathBuf, holding: watch::Sender<bool>) {
    let lock = {
        // A poisoned map only means a thread panicked while inserting; the map is whole.
        let mut map = match LOCAL.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(path).or_default().clone()
    };
    let _guard = lock.lock_owned().await;
    holding.send_replace(true);
    // Held until the relay drops its lease (this task is aborted then, releasing the guard).
    std::future::pending::<()>().await;
}

async fn hold_postgres(
    service: &'static str,
    options: PgConnectOptions,
    holding: watch::Sender<bool>,
) {
    let key = lock_key(service);
    let mut backoff = Duration::from_millis(250);
    loop {
        let result = hold_once(service, &options, key, &holding).await;
        let had = holding.send_replace(false);
        if let Err(e) = result {
            tracing::warn!(
                service,
                error = format!("{e:#}"),
                lost = had,
                "outbox relay lease: session failed; competing again"
            );
        }
        if had {
            backoff = Duration::from_millis(250);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Connects, waits for the lock and holds it while the session lives; returns an error when the
/// session fails (the lock is gone with it).
async fn hold_once(
    service: &'static str,
    options: &PgConnectOptions,
    key: i64,
    holding: &watch::Sender<bool>,
) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(options)
        .await
        .context("cannot open the lease connection")?;
    for (name, value) in SESSION {
        if let Err(e) = sqlx::query(&format!("SET {name} = {value}"))
            .execute(&mut conn)
            .await
        {
            tracing::debug!(service, setting = name, error = %e, "lease session setting refused");
        }
    }
    loop {
        match sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut conn)
            .await
        {
            Ok(_) => break,
            Err(e)
                if e.as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == LOCK_NOT_AVAILABLE) => {}
            Err(e) => return Err(e).context("cannot wait for the lease"),
        }
    }
    holding.send_replace(true);
    tracing::info!(service, "outbox relay lease taken: this replica publishes");
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        conn.ping().await.context("the lease session is gone")?;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex as StdMutex;
    use std::time::Instant;

    use chrono::Utc;
    use tokio_util::sync::CancellationToken;
    use uuid::Uuid;

    use super::*;
    use crate::events::outbox::{self, Enqueue};
    use crate::events::{EventRecord, PublishError, Publisher, TOPIC_PATIENT, relay};
    use crate::store;

    #[test]
    fn services_get_distinct_stable_keys() {
        assert_ne!(lock_key("patient"), lock_key("billing"));
        assert_eq!(lock_key("patient"), lock_key("patient"));
    }

    #[tokio::test]
    async fn a_sqlite_outbox_has_one_lease_per_process_until_its_holder_lets_go() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = store::connect_sqlite(&dir.path().join("svc.db"), 2)
            .await
            .expect("db");
        let db = Db::Sqlite(pool);
        let mut first = Lease::acquire("patient", &db);
        tokio::time::timeout(Duration::from_secs(5), async {
            while !first.held() {
                first.changed().await;
            }
        })
        .await
        .expect("the first relay holds the lease");
        let mut second = Lease::acquire("patient", &db);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!second.held(), "one holder per outbox");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), async {
            while !second.held() {
                second.changed().await;
            }
        })
        .await
        .expect("the lease passes on when its holder lets go");
    }

    /// Appends `(relay name, event id)` to one log shared by every relay, in publication order.
    struct Shared {
        name: &'static str,
        log: Arc<StdMutex<Vec<(&'static str, Uuid)>>>,
    }

    #[async_trait::async_trait]
    impl Publisher for Shared {
        async fn publish(&self, e: &EventRecord) -> Result<(), PublishError> {
            self.log.lock().expect("lock").push((self.name, e.id));
            Ok(())
        }
    }

    fn event(n: i64) -> EventRecord {
        use prost::Message;
        let key = Uuid::new_v5(&Uuid::NAMESPACE_OID, b"one-patient").to_string();
        EventRecord {
            id: Uuid::new_v4(),
            topic: TOPIC_PATIENT.into(),
            key: key.clone(),
            event_type: "PATIENT_UPDATED".into(),
            payload: pms_proto::patient_events::PatientEvent {
                patient_id: key,
                event_type: "PATIENT_UPDATED".into(),
                version: n,
                ..Default::default()
            }
            .encode_to_vec(),
            occurred_at: Utc::now(),
        }
    }

    async fn enqueue(pool: &sqlx::PgPool, events: &[EventRecord]) {
        for e in events {
            let mut tx = pool.begin().await.expect("tx");
            tx.enqueue(e).await.expect("enqueue");
            tx.commit().await.expect("commit");
        }
    }

    /// Waits (≤ 15 s) until every id in `ids` was published; returns how long it took.
    async fn published_all(log: &StdMutex<Vec<(&'static str, Uuid)>>, ids: &[Uuid]) -> Duration {
        let started = Instant::now();
        loop {
            {
                let log = log.lock().expect("lock");
                if ids.iter().all(|id| log.iter().any(|(_, p)| p == id)) {
                    return started.elapsed();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "not every event was published within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn one_relay_publishes_per_postgres_outbox_and_another_takes_over_when_its_session_dies()
    {
        let url = store::testing::fresh_postgres_url().await;
        let pool = store::connect_postgres("public", &url, 4)
            .await
            .expect("pool");
        sqlx::raw_sql(include_str!(
            "../../migrations/postgres/patient/0002_outbox.sql"
        ))
        .execute(&pool)
        .await
        .expect("ddl");
        let db = Db::Postgres(pool.clone());
        let log = Arc::new(StdMutex::new(Vec::new()));
        let mut relays = Vec::new();
        for name in ["one", "two"] {
            let background = crate::supervise::Background::new(CancellationToken::new());
            let publisher = Arc::new(Shared {
                name,
                log: log.clone(),
            });
            let (waker, task) = relay::spawn(
                "patient",
                db.clone(),
                publisher,
                Duration::from_secs(3600),
                &background,
            );
            relays.push((waker, task, background));
        }

        let first: Vec<EventRecord> = (0..10).map(event).collect();
        enqueue(&pool, &first).await;
        let ids: Vec<Uuid> = first.iter().map(|e| e.id).collect();
        published_all(&log, &ids).await;
        let holder = {
            let log = log.lock().expect("lock");
            let names: std::collections::BTreeSet<&str> = log.iter().map(|(n, _)| *n).collect();
            assert_eq!(names.len(), 1, "only the lease holder publishes: {log:?}");
            assert_eq!(log.len(), 10, "each event once: {log:?}");
            log[0].0
        };

        // The holder's session vanishes (as when its process is killed): the standby, waiting
        // for the lock inside the server, holds it at once and publishes what comes next.
        let holders: Vec<i32> = sqlx::query_scalar(
            // This database's: another server on the same PostgreSQL (a benchmark, another
            // suite) takes the same lease key in its own database.
            "SELECT pid FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND classid::bigint = $1 AND objid::bigint = $2 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(i64::from((lock_key("patient") >> 32) as u32))
        .bind(i64::from(lock_key("patient") as u32))
        .fetch_all(&pool)
        .await
        .expect("lease holders");
        assert_eq!(holders.len(), 1, "one session held the lease: {holders:?}");
        let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(holders[0])
            .fetch_one(&pool)
            .await
            .expect("terminate");
        assert!(terminated, "the holder's session was signalled");
        // pg_terminate_backend only signals: wait until the backend is really gone (as after a
        // kill), so the old holder's next check fails instead of racing the new events.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let alive: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1")
                    .bind(holders[0])
                    .fetch_one(&pool)
                    .await
                    .expect("activity");
            if alive == 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the holder's backend did not exit"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The old holder notices at its next check (every CHECK_EVERY) and steps down; until then
        // it may still publish (duplicates, which consumers drop). Events committed after that
        // are the standby's alone to publish.
        tokio::time::sleep(CHECK_EVERY * 2).await;
        let second: Vec<EventRecord> = (10..20).map(event).collect();
        enqueue(&pool, &second).await;
        for (waker, _, _) in &relays {
            waker.wake();
        }
        let ids: Vec<Uuid> = first.iter().chain(&second).map(|e| e.id).collect();
        let took = published_all(&log, &ids).await;
        println!("failover: the next events went out {took:?} after the holder's session died");
        let log = log.lock().expect("lock").clone();
        assert!(
            log[10..].iter().any(|(n, _)| *n != holder),
            "the other relay took over: {log:?}"
        );
        // Order per key: the first copy of each event arrives in commit order (a relay that
        // had not noticed its loss yet may send duplicates, which consumers drop).
        let mut first_copies = Vec::new();
        for (_, id) in &log {
            if !first_copies.contains(id) {
                first_copies.push(*id);
            }
        }
        assert_eq!(first_copies, ids, "commit order kept across the failover");
        assert_eq!(outbox::backlog(&db).await.expect("backlog"), 0);
        for (_, task, background) in relays {
            background.shutdown().cancel();
            task.await.expect("relay stops");
        }
    }
}
