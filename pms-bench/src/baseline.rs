//! The storage limits PMS is measured against, taken on the same machine in the same run:
//! pgbench with the patient and patient+outbox row shapes, and a SQLite single-writer commit loop
//! (WAL, `synchronous=FULL`, the embedded default's durability).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, Executor};

const SCHEMA: &str = "
CREATE TABLE patient (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  email text NOT NULL UNIQUE,
  address text NOT NULL,
  date_of_birth date NOT NULL,
  registered_date date NOT NULL DEFAULT current_date
);
CREATE TABLE outbox (id bigserial PRIMARY KEY, aggregate_id uuid NOT NULL, topic text NOT NULL,
  payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
";

const INSERT: &str = "\\set n random(1, 1000000000)
INSERT INTO patient (name, email, address, date_of_birth) VALUES ('Patient ' || :n, 'p' || :n || '-' || :client_id || '-' || random() || '@example.com', '1 Main St', '1980-01-01');
";

const INSERT_OUTBOX: &str = "\\set n random(1, 1000000000)
BEGIN;
INSERT INTO patient (name, email, address, date_of_birth) VALUES ('Patient ' || :n, 'p' || :n || '-' || :client_id || '-' || random() || '@example.com', '1 Main St', '1980-01-01');
INSERT INTO outbox (aggregate_id, topic, payload) VALUES (gen_random_uuid(), 'patient', '{\"event\":\"PATIENT_CREATED\"}');
COMMIT;
";

/// Which pgbench script.
#[derive(Debug, Clone, Copy)]
pub enum PgShape {
    /// One durable single-row insert per transaction.
    Insert,
    /// A patient row and an outbox row in one transaction: what a create must commit.
    InsertOutbox,
}

/// A fresh PostgreSQL database, dropped on [`TempDb::drop_now`].
pub struct TempDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl TempDb {
    /// Creates `pms_bench_<random>` with the role of `admin_url` (needs CREATEDB).
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("pms_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {}", redact(admin_url)))?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        let mut url = reqwest::Url::parse(admin_url).context("the PostgreSQL URL")?;
        url.set_path(&name);
        Ok(TempDb {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    pub async fn drop_now(self) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await?;
        Ok(())
    }
}

/// pgbench `shape` at `clients` for `secs` seconds in a fresh table; returns transactions/s.
pub async fn pgbench(
    db: &TempDb,
    shape: PgShape,
    clients: usize,
    secs: u64,
) -> anyhow::Result<f64> {
    let mut conn = sqlx::PgConnection::connect(&db.url).await?;
    conn.execute("DROP TABLE IF EXISTS patient, outbox").await?;
    conn.execute(SCHEMA).await?;
    drop(conn);
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(
        script.path(),
        match shape {
            PgShape::Insert => INSERT,
            PgShape::InsertOutbox => INSERT_OUTBOX,
        },
    )?;
    let out = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-f"])
        .arg(script.path())
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &secs.to_string()])
        .arg(&db.url)
        .output()
        .context("running pgbench (Debian: apt-get install postgresql-client)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("actually processed: 0\n") {
        return Ok(0.0); // nothing committed within a very short run
    }
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no `tps = ` line in pgbench's output:\n{text}"))
}

/// One writer committing a patient row and an outbox row per transaction into a SQLite file in
/// WAL mode with `synchronous=FULL`, for `secs` seconds; returns commits/s.
pub async fn sqlite_commit_loop(secs: u64) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("loop.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    conn.execute("PRAGMA journal_mode=WAL").await?;
    conn.execute("PRAGMA synchronous=FULL").await?;
    conn.execute(
        "CREATE TABLE patient (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
           address TEXT NOT NULL, date_of_birth TEXT NOT NULL, registered_date TEXT NOT NULL);
         CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, aggregate_id TEXT NOT NULL,
           topic TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL);",
    )
    .await?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        n += 1;
        let id = uuid::Uuid::new_v4().to_string();
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO patient VALUES (?, ?, ?, '1 Main St', '1980-01-01', '2024-01-01')",
        )
        .bind(&id)
        .bind(format!("Patient {n}"))
        .bind(format!("p{n}@example.com"))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO outbox (aggregate_id, topic, payload, created_at)
             VALUES (?, 'patient', '{\"event\":\"PATIENT_CREATED\"}', datetime('now'))",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<invalid URL>".into(),
    }
}
