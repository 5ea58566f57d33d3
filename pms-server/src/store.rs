//! Database plumbing shared by the services: one pool per service, PostgreSQL (own schema per
//! service) or embedded SQLite (own file per service), and migrations at start.
//!
//! Each service defines its own store trait and implements it for both backends; nothing here
//! knows any service's tables.
//!
//! SQLite allows one writer per database file at a time. Writers that race for the lock wait in
//! SQLite's busy handler, which sleeps and polls (1, 2, 5 … 100 ms): under concurrent writes the
//! tail latency reached a second. So every SQLite file also gets a *writer*: a pool of exactly one
//! connection that [`BeginWrite`] transactions take in turn (a fair FIFO queue, no polling),
//! while reads use the file's ordinary pool concurrently (WAL lets readers run beside the writer).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};

mod backend;
pub mod group_commit;
mod sql_builder;

pub use backend::{Backend, Fetched, Param};
pub use sql_builder::{SqlBuilder, ValuesRow};

/// The services that own a database (schema in PostgreSQL, file in SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceDb {
    Auth,
    Patient,
    Billing,
    Analytics,
    /// The embedded event log (no Kafka).
    Events,
}

impl ServiceDb {
    /// Schema (PostgreSQL) and file stem (SQLite) name.
    pub fn name(self) -> &'static str {
        match self {
            ServiceDb::Auth => "auth",
            ServiceDb::Patient => "patient",
            ServiceDb::Billing => "billing",
            ServiceDb::Analytics => "analytics",
            ServiceDb::Events => "events",
        }
    }
}

/// A connected service database.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Db {
    /// `SELECT 1`, for readiness checks.
    pub async fn ping(&self) -> Result<(), String> {
        let result = match self {
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            Db::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        };
        result.map_err(|e| format!("database: {e}"))
    }

    pub async fn close(&self) {
        match self {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite(pool) => {
                if let Some(writer) = sqlite_writer(pool) {
                    writer.close().await;
                }
                pool.close().await
            }
        }
    }
}

/// Migrations of one service, per backend.
pub struct Migrations {
    pub postgres: &'static Migrator,
    pub sqlite: &'static Migrator,
}

/// Connects a service's database and runs its migrations.
///
/// `pg_url` set → PostgreSQL, schema `service.name()` (created if missing, and first on the
/// `search_path` of every pooled connection). Otherwise `{dir}/{service}.db` in SQLite (WAL,
/// `synchronous=FULL`: patient data needs durable commits, foreign keys on).
pub async fn connect(
    service: ServiceDb,
    pg_url: Option<&SecretString>,
    sqlite_dir: &Path,
    max_connections: u32,
    migrations: &Migrations,
) -> anyhow::Result<Db> {
    match pg_url {
        Some(url) => {
            let pool =
                connect_postgres(service.name(), url.expose_secret(), max_connections).await?;
            // A schema without a migration history is new: its tables get early statistics.
            let fresh: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NULL")
                .fetch_one(&pool)
                .await
                .context("cannot read the schema's migration history")?;
            migrations
                .postgres
                .run(&pool)
                .await
                .with_context(|| format!("while migrating the {} schema", service.name()))?;
            if fresh {
                analyze_new_tables(service.name(), pool.clone());
            }
            let db = Db::Postgres(pool);
            crate::observe::watch_pool(service.name(), &db);
            Ok(db)
        }
        None => {
            let path = sqlite_dir.join(format!("{}.db", service.name()));
            let pool = connect_sqlite(&path, max_connections).await?;
            migrations
                .sqlite
                .run(&pool)
                .await
                .with_context(|| format!("while migrating {}", path.display()))?;
            let db = Db::Sqlite(pool);
            crate::observe::watch_pool(service.name(), &db);
            Ok(db)
        }
    }
}

/// How often [`analyze_new_tables`] looks (doubling while nothing is due, up to 4 s), for how
/// long, and how many changed rows make a table worth analyzing at least.
const EARLY_ANALYZE_EVERY: Duration = Duration::from_secs(1);
const EARLY_ANALYZE_MAX_EVERY: Duration = Duration::from_secs(4);
const EARLY_ANALYZE_FOR: Duration = Duration::from_secs(600);
const EARLY_ANALYZE_ROWS: i64 = 100;

/// Tables of this schema (the migration history aside) never analyzed with `$1` rows changed, or
/// with twice the live rows their last ANALYZE counted (`$1` at least). Growth, not changes: a
/// small table updated all the time (outbox marks, claims) would be analyzed every round.
const GROWN: &str = "SELECT format('%I.%I', s.schemaname, s.relname) \
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE s.schemaname = current_schema() AND s.relname <> '_sqlx_migrations' \
       AND CASE WHEN c.reltuples < 0 THEN s.n_mod_since_analyze >= $1 \
           ELSE s.n_live_tup >= 2 * greatest(c.reltuples, $1) END";

/// Until a table is first analyzed PostgreSQL plans its queries on default guesses, and
/// autovacuum's first ANALYZE comes up to `autovacuum_naptime` (a minute by default) after the
/// table's first changes. The guesses can be far off: a new `patients` table (`deleted_at IS NULL`
/// guessed true for 0.5 % of rows) had the email check of every create scan a partial index of
/// all live patients instead of the unique email index — 3,000 rows read per create at 10,000
/// patients, growing with the table (auto_explain, issue 10). Statistics of a tiny table mislead
/// too: a plan made at 100 rows (a few pages, where scanning them beats an index probe) is kept
/// by every pooled connection until the table's next ANALYZE, while the table grows a
/// hundredfold. So for its first `EARLY_ANALYZE_FOR` a new schema (one this process migrated
/// from nothing) gets a table analyzed as soon as `EARLY_ANALYZE_ROWS` rows changed, and again
/// each time its live rows doubled — the cached plans are rebuilt with it — until autovacuum's own
/// schedule (a tenth of the table changed) takes over. The task ends then or when the pool
/// closes. ANALYZE waits at most a second for its lock (another replica's migration, a running
/// VACUUM) and is tried again on the next round.
fn analyze_new_tables(service: &'static str, pool: PgPool) {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut every = EARLY_ANALYZE_EVERY;
        loop {
            tokio::time::sleep(every).await;
            if pool.is_closed() || started.elapsed() > EARLY_ANALYZE_FOR {
                return;
            }
            let grown: Vec<String> = match sqlx::query_scalar(GROWN)
                .bind(EARLY_ANALYZE_ROWS)
                .fetch_all(&pool)
                .await
            {
                Ok(tables) => tables,
                Err(e) => {
                    tracing::debug!(service, error = %e, "cannot read table statistics");
                    continue;
                }
            };
            every = if grown.is_empty() {
                (every * 2).min(EARLY_ANALYZE_MAX_EVERY)
            } else {
                EARLY_ANALYZE_EVERY
            };
            for table in grown {
                match analyze(&pool, &table).await {
                    Ok(()) => tracing::debug!(service, table, "statistics gathered"),
                    Err(e) => tracing::debug!(service, table, error = %e, "cannot analyze"),
                }
            }
        }
    });
}

/// `ANALYZE table` (a name quoted by `format('%I.%I')`), waiting at most a second for its lock.
/// A sample of 3,000 rows (statistics target 10) instead of 30,000: these early statistics only
/// need the broad shape (how many rows, how many NULLs), and at the default target the first
/// ANALYZEs of the event tables took 150–300 ms of a core each in a new system's first seconds of
/// load. Autovacuum's later ANALYZEs use the default target.
async fn analyze(pool: &PgPool, table: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT set_config('lock_timeout', '1s', true), \
         set_config('default_statistics_target', '10', true)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("ANALYZE {table}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// A pooled PostgreSQL connection idle at least this long is pinged before it is handed out.
const PG_PING_IF_IDLE: Duration = Duration::from_secs(1);

/// A PostgreSQL pool whose connections use `schema`.
pub async fn connect_postgres(
    schema: &str,
    url: &str,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .context("invalid PostgreSQL URL")?
        .log_statements(tracing::log::LevelFilter::Trace);
    // One plain connection first to create the schema; `IF NOT EXISTS` can still race with a
    // replica starting at the same moment, which is harmless.
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .context("cannot connect to PostgreSQL (is it running, and is the URL right?)")?;
    if let Err(e) = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut conn)
        .await
    {
        let duplicate = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "23505" || c == "42P06");
        if !duplicate {
            return Err(e).with_context(|| format!("cannot create schema {schema}"));
        }
    }
    conn.close().await.ok();
    let options = options.options([("search_path", schema)]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out: one more round trip per checkout, which on a
        // busy pool is most of a short transaction's. Ping only connections that sat idle (where a
        // restarted server or a dropped connection shows); a failed ping discards the connection
        // and the pool hands out another.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(
                async move { Ok(meta.idle_for < PG_PING_IF_IDLE || conn.ping().await.is_ok()) },
            )
        })
        .connect_with(options)
        .await
        .context("cannot open the PostgreSQL pool")
}

/// How long a SQLite write waits for its turn (the writer queue, then the file lock held by
/// another process) before it fails.
const SQLITE_WRITE_WAIT: Duration = Duration::from_secs(10);

/// The writer of each SQLite database file this process opened, keyed by the path its pools were
/// opened with ([`SqliteConnectOptions::get_filename`]), so that every pool on a file — and so
/// every store, relay and consumer using it — shares one write queue.
static SQLITE_WRITERS: LazyLock<Mutex<HashMap<PathBuf, SqlitePool>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The open writer of the file `pool` reads (none: a pool not opened by [`connect_sqlite`]).
fn sqlite_writer(pool: &SqlitePool) -> Option<SqlitePool> {
    let options = pool.connect_options();
    let writers = SQLITE_WRITERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    writers
        .get(options.get_filename())
        .filter(|writer| !writer.is_closed())
        .cloned()
}

/// Where a single writing statement on the SQLite file of `pool` goes: the file's writer, so that
/// it queues with the write transactions instead of racing them for the lock in SQLite's busy
/// handler (which sleeps and polls: an outbox mark once waited 1.1 s under load). `pool` itself
/// when it was not opened by [`connect_sqlite`].
pub fn sqlite_write_pool(pool: &SqlitePool) -> SqlitePool {
    sqlite_writer(pool).unwrap_or_else(|| pool.clone())
}

/// Read connections per SQLite file at most.
const SQLITE_READERS: u32 = 4;

/// SQLite's page cache per connection, in KiB (the pragma's negative form).
const SQLITE_CACHE_KIB: &str = "-512";

/// A SQLite pool on `path` (created if missing) for reads and single statements, and the file's
/// writer for [`BeginWrite`] transactions (shared with any other pool of this process on the
/// same file).
pub async fn connect_sqlite(path: &Path, max_connections: u32) -> anyhow::Result<SqlitePool> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::private::private_dir(parent)?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        // Still needed: single statements on the read pool write too (offsets, marks), and
        // another process may hold the file.
        .busy_timeout(SQLITE_WRITE_WAIT)
        // SQLite's page cache is per connection (2 MiB by default): with five files of up to
        // nine connections each it kept growing with the data (a 10-minute soak: 76 → 99 MB).
        // The OS page cache holds the files anyway.
        .pragma("cache_size", SQLITE_CACHE_KIB)
        // Statement journals and sorts in memory: on disk they were a file created, written and
        // unlinked in /var/tmp per write transaction (pages of patient rows included).
        .pragma("temp_store", "memory")
        .log_statements(tracing::log::LevelFilter::Trace);
    // A connection to a local file cannot go stale: no ping before every checkout. At most four
    // readers per file (beside its writer): each keeps its own page cache, and two cores gain
    // nothing from more (a soak: the same throughput with four as with eight, RSS growth +3.4 MB
    // over four minutes instead of +5.7 — most of both was the undrained metrics queue, see
    // `telemetry::spawn_metrics_upkeep`).
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections.min(SQLITE_READERS))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await
        .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
    // SQLite creates the files itself, with the process umask: repair them for processes that
    // did not restrict it (library users, tests). The WAL/SHM files copy the database's mode.
    crate::private::private_file(path)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        crate::private::private_file(Path::new(&side))?;
    }
    if sqlite_writer(&pool).is_none() {
        // Connects lazily: the read pool above already proved the file opens.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(SQLITE_WRITE_WAIT)
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let mut writers = SQLITE_WRITERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Forget writers of files that are gone (tests' temporary directories) or closed:
        // dropping the last handle closes the connection and ends its thread.
        writers.retain(|file, w| !w.is_closed() && file.exists());
        writers
            .entry(path.to_path_buf())
            .and_modify(|w| {
                if w.is_closed() {
                    *w = writer.clone();
                }
            })
            .or_insert(writer);
    }
    Ok(pool)
}

/// Starts a write transaction. SQLite's runs on the file's writer (see the module doc), so
/// writers of this process wait their turn in a queue instead of polling the file lock, and gets
/// `BEGIN IMMEDIATE`: taking the write lock up front avoids the deadlock-prone upgrade of a
/// deferred read transaction (`SQLITE_BUSY`) when another connection or process writes too.
/// PostgreSQL gets a plain `BEGIN`.
pub trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>>
    + Send;
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        match sqlite_writer(self) {
            Some(writer) => writer.begin_with("BEGIN IMMEDIATE").await,
            // A pool opened elsewhere: SQLite's own lock still serialises, by polling.
            None => self.begin_with("BEGIN IMMEDIATE").await,
        }
    }
}

/// Test support for this crate's tests, the API tests and the end-to-end tests (feature
/// `testing`, which those enable). Not compiled into `cargo build -p pms-server` (the image);
/// a whole-workspace build unifies the feature in through pms-e2e, harmlessly (nothing calls it).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
