//! PostgreSQL work per API operation: commits and rows from `pg_stat_database` and, when the
//! `pg_stat_statements` extension is loaded, statement calls (and the most called statements)
//! from it; the idle background work over the same time subtracted.
//!
//! # When the counters can be read (PostgreSQL 15, `src/backend/utils/activity/pgstat.c`)
//!
//! A backend keeps its counters locally and flushes them to the shared statistics from
//! `pgstat_report_stat()` when it goes idle. A non-forced flush happens at most every
//! `PGSTAT_MIN_INTERVAL` (1 s) and does not wait for the lock; a transaction ending sooner after
//! the previous flush (or one whose flush met a held lock) leaves its counts pending and arms the
//! idle timer for `PGSTAT_IDLE_INTERVAL` (10 s), whose flush is forced; a backend that stays busy
//! flushes at the latest after `PGSTAT_MAX_INTERVAL` (60 s). So the last transactions of each pool
//! connection reach `pg_stat_database` only 10 s after the connection went idle — measured on this
//! machine's 15.18: four inserts within a second of a flush appeared 10.2 s later, not before.
//! (Transactions that touch no table keep even their commit count local until something else is
//! flushed or the backend exits; every API transaction touches a table.) The old fixed 1.2 s wait
//! therefore read zeros.
//!
//! Options weighed:
//! - `pg_stat_statements` is updated in shared memory at the end of every statement, so it needs
//!   no waiting — but it is not loaded on a stock PostgreSQL (it must be in
//!   `shared_preload_libraries`, which takes a restart, and `CREATE EXTENSION` needs a superuser),
//!   and it does not count commits: with `track_utility` it counts explicit `BEGIN`/`COMMIT`, but
//!   an implicit single-statement transaction is not a `COMMIT` there.
//! - Forcing other backends to flush: PostgreSQL 15 has no way (`pg_stat_force_next_flush()` acts
//!   on the caller's own backend only), and ending the server's connections would change what is
//!   measured.
//! - Global counters (`pg_current_xact_id()`, the WAL position) are immediate, but count every
//!   database of the cluster — other suites share it — and miss read-only commits.
//! - "Poll until the counters stop moving" cannot tell settled counters from a 10 s pending flush.
//!
//! So every window boundary waits [`SETTLE`] after the operations end — longer than the 10 s idle
//! flush plus the relay's and consumers' 2 s polling tail — before reading both sources, and the
//! work of the window is `after - before - idle rate × window seconds` (the idle rate from a window
//! with no requests). `pg_stat_statements` adds statement calls and rows per operation when it is
//! there (its figures are exact at once, but share the windows so both sources cover the same
//! work). A `pg_stat_statements` entry evicted under `pg_stat_statements.max` pressure during a
//! window reads as fewer calls (clamped at zero); a reset of the view (it is cluster-wide: anyone
//! may reset it) voids the statement figures of that window.
//!
//! Autovacuum and analyze of the benchmark's database, set off by the measured writes, count in
//! `pg_stat_database` too (rows returned and fetched, `pg_statistic` updates) and land in whichever
//! window they happen to: those figures vary between runs, the statement figures do not. The idle
//! rate is the lower of two idle windows, counter by counter, so such a burst is not subtracted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sqlx::Connection;

/// How long after the last operation of a window its counters are read: the 10 s idle flush of
/// `pgstat_report_stat()`, the 2 s polling tail of the relay and consumers, and some margin.
pub const SETTLE: Duration = Duration::from_secs(12);

/// How many of the most called statements are listed per operation.
const TOP: usize = 5;

/// `pg_stat_database` counters of one database, in this order.
const DB_COUNTERS: usize = 5;

/// The counters of one database at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    taken: Instant,
    /// `xact_commit, tup_inserted, tup_updated, tup_returned, tup_fetched`.
    db: [i64; DB_COUNTERS],
    /// `(calls, rows)` per normalised statement text; `None` without `pg_stat_statements`.
    statements: Option<BTreeMap<String, (i64, i64)>>,
    /// When `pg_stat_statements` was last reset (by anyone: the view is cluster-wide).
    statements_reset: Option<String>,
}

/// What happened between two snapshots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub seconds: f64,
    pub db: [i64; DB_COUNTERS],
    pub statements: Option<BTreeMap<String, (i64, i64)>>,
}

impl Delta {
    /// `after - before`.
    pub fn between(before: &Snapshot, after: &Snapshot) -> Delta {
        // A reset in between (another user's `pg_stat_statements_reset()`) voids the window.
        let statements = match (&before.statements, &after.statements) {
            (Some(b), Some(a)) if before.statements_reset == after.statements_reset => Some(
                a.iter()
                    .map(|(q, &(calls, rows))| {
                        let (c0, r0) = b.get(q).copied().unwrap_or((0, 0));
                        (q.clone(), (calls - c0, rows - r0))
                    })
                    .filter(|(_, (calls, _))| *calls != 0)
                    .collect(),
            ),
            _ => None,
        };
        Delta {
            seconds: after.taken.duration_since(before.taken).as_secs_f64(),
            db: std::array::from_fn(|i| after.db[i] - before.db[i]),
            statements,
        }
    }
}

/// Database work per API operation (idle background work subtracted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkPerOp {
    pub operation: String,
    pub commits: f64,
    pub rows_inserted: f64,
    pub rows_updated: f64,
    /// Rows scanned (sequential scans) and index entries returned (`tup_returned`).
    pub rows_returned: f64,
    /// Rows fetched by index scans (`tup_fetched`).
    pub rows_fetched: f64,
    /// From `pg_stat_statements`, when loaded.
    pub statements: Option<StatementsPerOp>,
}

/// Statement calls per operation (`pg_stat_statements`, top-level statements).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementsPerOp {
    /// All statements, `BEGIN` and `COMMIT` included.
    pub calls: f64,
    /// Rows the statements returned or changed.
    pub rows: f64,
    /// The most called statements, most first.
    pub top: Vec<StatementPerOp>,
}

/// One normalised statement (parameters as `$n`: no values, no PHI).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementPerOp {
    pub calls: f64,
    pub rows: f64,
    pub query: String,
}

/// Background work per second, measured with no requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    db: [f64; DB_COUNTERS],
    statements: Option<BTreeMap<String, (f64, f64)>>,
}

impl Rates {
    /// The rates of an idle window.
    pub fn of(idle: &Delta) -> Rates {
        let per_s = |v: i64| {
            if idle.seconds > 0.0 {
                v as f64 / idle.seconds
            } else {
                0.0
            }
        };
        Rates {
            db: idle.db.map(per_s),
            statements: idle.statements.as_ref().map(|m| {
                m.iter()
                    .map(|(q, &(c, r))| (q.clone(), (per_s(c), per_s(r))))
                    .collect()
            }),
        }
    }

    /// Counter by counter, the lower rate of two idle windows: autovacuum of the database (set
    /// off by the measured writes) or a prune task lands in one of them now and then, and is not
    /// the background work to subtract.
    pub fn min(&self, other: &Rates) -> Rates {
        let statements = match (&self.statements, &other.statements) {
            (Some(a), Some(b)) => Some(
                a.iter()
                    .filter_map(|(q, &(c, r))| {
                        let &(c2, r2) = b.get(q)?;
                        Some((q.clone(), (c.min(c2), r.min(r2))))
                    })
                    .collect(),
            ),
            (Some(a), None) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        };
        Rates {
            db: std::array::from_fn(|i| self.db[i].min(other.db[i])),
            statements,
        }
    }

    /// The rates as a row of the report (per second instead of per operation).
    pub fn as_row(&self, operation: &str) -> WorkPerOp {
        WorkPerOp {
            operation: operation.to_owned(),
            commits: self.db[0],
            rows_inserted: self.db[1],
            rows_updated: self.db[2],
            rows_returned: self.db[3],
            rows_fetched: self.db[4],
            statements: self.statements.as_ref().map(|m| {
                summarise(m.iter().map(|(q, &(calls, rows))| StatementPerOp {
                    calls,
                    rows,
                    query: q.clone(),
                }))
            }),
        }
    }
}

/// The totals and the [`TOP`] most called of `statements` (those called at least once per 200
/// operations).
fn summarise(statements: impl Iterator<Item = StatementPerOp>) -> StatementsPerOp {
    let mut all: Vec<StatementPerOp> = statements.filter(|s| s.calls >= 0.005).collect();
    all.sort_by(|a, b| b.calls.total_cmp(&a.calls).then(a.query.cmp(&b.query)));
    let (calls, rows) = all
        .iter()
        .fold((0.0, 0.0), |(c, r), s| (c + s.calls, r + s.rows));
    all.truncate(TOP);
    StatementsPerOp {
        calls,
        rows,
        top: all,
    }
}

/// Work per operation: `(work - idle rate × work.seconds) / ops`, never below zero (noise).
pub fn per_op(operation: &str, work: &Delta, idle: &Rates, ops: u64) -> WorkPerOp {
    let ops = ops.max(1) as f64;
    let f = |w: i64, rate: f64| ((w as f64 - rate * work.seconds) / ops).max(0.0);
    let statements = work.statements.as_ref().map(|w| {
        let empty = BTreeMap::new();
        let idle = idle.statements.as_ref().unwrap_or(&empty);
        summarise(w.iter().map(|(q, &(calls, rows))| {
            let (idle_calls, idle_rows) = idle.get(q).copied().unwrap_or((0.0, 0.0));
            StatementPerOp {
                calls: f(calls, idle_calls),
                rows: f(rows, idle_rows),
                query: q.clone(),
            }
        }))
    });
    WorkPerOp {
        operation: operation.to_owned(),
        commits: f(work.db[0], idle.db[0]),
        rows_inserted: f(work.db[1], idle.db[1]),
        rows_updated: f(work.db[2], idle.db[2]),
        rows_returned: f(work.db[3], idle.db[3]),
        rows_fetched: f(work.db[4], idle.db[4]),
        statements,
    }
}

/// Reads the counters of one database over a connection of its own to another one (the admin
/// URL's database), so its own queries are not counted.
pub struct Probe {
    conn: sqlx::PgConnection,
    database: String,
    /// Why `pg_stat_statements` cannot be read, if it cannot.
    unavailable: Option<String>,
}

impl Probe {
    /// Connects to `admin_url` to watch `database`, and checks whether `pg_stat_statements` can
    /// be read there.
    pub async fn connect(admin_url: &str, database: &str) -> anyhow::Result<Probe> {
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .context("connecting to PostgreSQL to read its statistics")?;
        let unavailable = sqlx::query("SELECT 1 FROM pg_stat_statements LIMIT 1")
            .fetch_optional(&mut conn)
            .await
            .err()
            .map(|e| match e.as_database_error() {
                Some(db) => db.message().to_owned(),
                None => e.to_string(),
            });
        Ok(Probe {
            conn,
            database: database.to_owned(),
            unavailable,
        })
    }

    /// Why statement counts are skipped (`None`: they are not).
    pub fn statements_unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// The counters now. Call it [`SETTLE`] after the last operation to be counted.
    pub async fn snapshot(&mut self) -> anyhow::Result<Snapshot> {
        let taken = Instant::now();
        let db: (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_returned, tup_fetched
               FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&self.database)
        .fetch_one(&mut self.conn)
        .await
        .context("reading pg_stat_database")?;
        let (statements, statements_reset) = if self.unavailable.is_some() {
            (None, None)
        } else {
            let reset: String =
                sqlx::query_scalar("SELECT stats_reset::text FROM pg_stat_statements_info")
                    .fetch_one(&mut self.conn)
                    .await
                    .context("reading pg_stat_statements_info")?;
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT regexp_replace(s.query, '\\s+', ' ', 'g'), sum(s.calls)::int8,
                        sum(s.rows)::int8
                   FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
                  WHERE d.datname = $1 AND s.toplevel
                  GROUP BY 1",
            )
            .bind(&self.database)
            .fetch_all(&mut self.conn)
            .await
            .context("reading pg_stat_statements")?;
            (
                Some(rows.into_iter().map(|(q, c, r)| (q, (c, r))).collect()),
                Some(reset),
            )
        };
        Ok(Snapshot {
            taken,
            db: [db.0, db.1, db.2, db.3, db.4],
            statements,
            statements_reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(v: &[(&str, i64, i64)]) -> Option<BTreeMap<String, (i64, i64)>> {
        Some(v.iter().map(|&(q, c, r)| (q.to_owned(), (c, r))).collect())
    }

    #[test]
    fn delta_subtracts_counters_and_statements() {
        let at = Instant::now();
        let before = Snapshot {
            taken: at,
            db: [10, 20, 30, 40, 50],
            statements: statements(&[("COMMIT", 5, 0), ("SELECT 1", 7, 7)]),
            statements_reset: Some("t0".into()),
        };
        let after = Snapshot {
            taken: at + Duration::from_millis(2500),
            db: [15, 22, 30, 41, 60],
            statements: statements(&[("COMMIT", 9, 0), ("SELECT 1", 7, 7), ("INSERT", 3, 3)]),
            statements_reset: Some("t0".into()),
        };
        let d = Delta::between(&before, &after);
        assert_eq!(d.seconds, 2.5);
        assert_eq!(d.db, [5, 2, 0, 1, 10]);
        // Unchanged statements drop out; new ones count from zero.
        assert_eq!(
            d.statements,
            statements(&[("COMMIT", 4, 0), ("INSERT", 3, 3)])
        );
        // Someone reset pg_stat_statements in between: no statement figures for the window.
        let reset = Snapshot {
            statements_reset: Some("t1".into()),
            ..after
        };
        let d = Delta::between(&before, &reset);
        assert_eq!(d.db, [5, 2, 0, 1, 10]);
        assert_eq!(d.statements, None);
    }

    #[test]
    fn idle_rates_take_the_quieter_window_counter_by_counter() {
        let quiet = Rates::of(&Delta {
            seconds: 4.0,
            db: [8, 0, 0, 400, 4],
            statements: statements(&[("poll", 4, 0), ("prune", 1, 0)]),
        });
        let autovacuum = Rates::of(&Delta {
            seconds: 2.0,
            db: [2, 0, 0, 6000, 1000],
            statements: statements(&[("poll", 4, 0)]),
        });
        let r = quiet.min(&autovacuum);
        assert_eq!(r.db, [1.0, 0.0, 0.0, 100.0, 1.0]);
        // A statement seen in one idle window only is not background work.
        assert_eq!(r.statements, Some([("poll".to_owned(), (1.0, 0.0))].into()));
        let row = r.as_row("idle");
        assert_eq!(row.commits, 1.0);
        assert_eq!(row.rows_returned, 100.0);
        assert_eq!(row.statements.expect("statements").calls, 1.0);
    }

    #[test]
    fn per_op_subtracts_the_idle_rate_over_the_window() {
        // Idle: 10 commits and 20 rows fetched in 5 s → 2 commits/s, 4 fetches/s.
        let idle = Delta {
            seconds: 5.0,
            db: [10, 0, 5, 0, 20],
            statements: statements(&[("poll", 10, 0), ("COMMIT", 5, 0)]),
        };
        // 100 operations over 15 s: 30 idle commits, 60 idle fetches in there.
        let work = Delta {
            seconds: 15.0,
            db: [330, 500, 215, 1000, 160],
            statements: statements(&[
                ("poll", 30, 0),
                ("COMMIT", 215, 0),
                ("INSERT INTO patient", 100, 100),
                ("INSERT INTO outbox", 100, 100),
                ("SELECT patient", 50, 50),
                ("UPDATE x", 1, 1),
                ("rare", 0, 0),
            ]),
        };
        let w = per_op("create", &work, &Rates::of(&idle), 100);
        assert_eq!(w.operation, "create");
        assert_eq!(w.commits, 3.0);
        assert_eq!(w.rows_inserted, 5.0);
        assert_eq!(w.rows_updated, 2.0);
        assert_eq!(w.rows_returned, 10.0);
        assert_eq!(w.rows_fetched, 1.0);
        let s = w.statements.expect("statement counts");
        // Per statement, idle-subtracted: 0 + 200 + 100 + 100 + 50 + 1 = 451 calls → 4.51 per op.
        assert!((s.calls - 4.51).abs() < 1e-9, "{}", s.calls);
        assert!((s.rows - 2.51).abs() < 1e-9, "{}", s.rows);
        let top: Vec<(&str, f64)> = s.top.iter().map(|t| (t.query.as_str(), t.calls)).collect();
        assert_eq!(
            top,
            [
                ("COMMIT", 2.0),
                ("INSERT INTO outbox", 1.0),
                ("INSERT INTO patient", 1.0),
                ("SELECT patient", 0.5),
                ("UPDATE x", 0.01),
            ],
            "the idle poll nets to zero and drops out"
        );
    }

    #[test]
    fn per_op_never_goes_below_zero_and_survives_an_empty_idle_window() {
        let idle = Delta {
            seconds: 0.0,
            db: [0; DB_COUNTERS],
            statements: None,
        };
        let work = Delta {
            seconds: 3.0,
            db: [4, 0, -2, 0, 0],
            statements: None,
        };
        let w = per_op("GET", &work, &Rates::of(&idle), 4);
        assert_eq!(w.commits, 1.0);
        assert_eq!(w.rows_updated, 0.0);
        assert_eq!(w.statements, None);
        let noisy = Delta {
            seconds: 1.0,
            db: [100, 0, 0, 0, 0],
            statements: None,
        };
        assert_eq!(per_op("GET", &work, &Rates::of(&noisy), 4).commits, 0.0);
    }
}
