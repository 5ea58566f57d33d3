//! `pms-bench`: measures PMS beside the limits of its storage on the same machine in one run.
//!
//! `pms-bench run` starts release `pms-server` targets (embedded SQLite; all-in-one on
//! PostgreSQL when a database URL is given; the five services as five processes with a Tansu
//! broker when one is given too), drives them with the closed-loop generator in [`load`], runs
//! the baselines in [`baseline`] (pgbench, a SQLite commit loop), and prints one table plus
//! memory, time to ready and PostgreSQL work per operation; `--json` writes the same.
//! `pms-bench soak` runs a mixed load for minutes and prints the server's memory over time.
//! `pms-bench load` drives any running gateway with one operation (for ad-hoc runs).
//! Figures only: nothing here passes or fails on speed.

#![forbid(unsafe_code)]

mod baseline;
mod cluster;
mod load;
mod pgwork;
mod report;
mod scenarios;
mod soak;
mod target;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use baseline::{PgShape, TempDb};
use load::{Op, Spec};
use report::Report;
use scenarios::{PgBaselines, count_work, login_flood, measure_api, memory_row};
use target::{Admin, Server};

#[derive(Debug, Parser)]
#[command(name = "pms-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start the targets, load them, run the baselines, print the table.
    Run {
        /// The `pms-server` binary to measure (a release build).
        #[arg(long, default_value = "target/release/pms-server")]
        server: PathBuf,
        /// PostgreSQL URL of a role with CREATEDB: enables the PostgreSQL targets and the
        /// pgbench baselines (each gets a fresh database, dropped afterwards).
        #[arg(long, env = "PMS_TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// A Tansu binary (Kafka-protocol broker): enables the distributed target (with
        /// `--postgres`).
        #[arg(long, env = "PMS_TEST_TANSU")]
        tansu: Option<PathBuf>,
        /// Seconds per measured point.
        #[arg(long, default_value_t = 5)]
        secs: u64,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Which targets to measure, comma-separated (the SQLite commit loop comes with
        /// `embedded`, the pgbench baselines with the PostgreSQL targets).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "embedded,postgres,distributed"
        )]
        targets: Vec<TargetKind>,
    },
    /// A mixed load (creates, GETs, lists of 1,000, live streams) on one all-in-one server for
    /// minutes; prints RSS and its high-water mark over time.
    Soak {
        #[arg(long, default_value = "target/release/pms-server")]
        server: PathBuf,
        /// Run on PostgreSQL (a fresh database) instead of embedded SQLite.
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 15)]
        every: u64,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Load a running gateway with one operation and print its figures.
    Load {
        /// Gateway (or service) base URL.
        #[arg(long, default_value = "http://127.0.0.1:4004")]
        url: String,
        /// `create`, or a path to GET (e.g. `/api/patients/<id>`).
        #[arg(long, value_parser = parse_op)]
        op: Op,
        /// Bearer token (`pms auth token` prints one).
        #[arg(long, env = "PMS_TOKEN")]
        token: Option<String>,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
}

/// A target of `pms-bench run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TargetKind {
    /// All-in-one on embedded SQLite.
    Embedded,
    /// All-in-one on PostgreSQL (with the work counted per operation).
    Postgres,
    /// The five services as five processes on PostgreSQL and a Tansu broker.
    Distributed,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Run {
            server,
            postgres,
            tansu,
            secs,
            json,
            targets,
        } => {
            let started = std::time::Instant::now();
            let report = run(
                &server,
                postgres.as_deref(),
                tansu.as_deref(),
                secs,
                &targets,
            )
            .await?;
            print!("{}", report.table());
            println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
            write_json(json.as_deref(), &report)
        }
        Cmd::Soak {
            server,
            postgres,
            minutes,
            every,
            json,
        } => {
            check_binary(&server)?;
            let admin = Admin::random();
            let db = match &postgres {
                Some(url) => Some(TempDb::create(url).await?),
                None => None,
            };
            let env: Vec<(&str, String)> = db
                .iter()
                .map(|db| ("PMS_DATABASE__URL", db.url.clone()))
                .collect();
            let target = if db.is_some() { "postgres" } else { "embedded" };
            let running = Server::start(&server, &admin, &env).await?;
            let soak = soak::run(
                target,
                &running,
                &admin,
                Duration::from_secs(minutes * 60),
                Duration::from_secs(every),
            )
            .await?;
            running.stop()?;
            if let Some(db) = db {
                db.drop_now().await?;
            }
            println!(
                "{target}: idle RSS {:.1} MB; RSS grew {:+.1} MB from the end of the first minute to the end; high-water {:.1} MB",
                soak.idle_rss_kb as f64 / 1024.0,
                soak.growth_after_first_minute_kb as f64 / 1024.0,
                soak.samples.last().map_or(0, |s| s.hwm_kb) as f64 / 1024.0
            );
            write_json(json.as_deref(), &soak)
        }
        Cmd::Load {
            url,
            op,
            token,
            connections,
            secs,
        } => {
            let spec = Spec {
                label: "load".into(),
                base: url,
                op,
                connections,
                duration: Duration::from_secs(secs),
                token,
            };
            let o = load::run(&spec).await?;
            println!("{}", serde_json::to_string_pretty(&o)?);
            Ok(())
        }
    }
}

/// `--op`: `create`, or a path to GET (a typo used to become a path that failed millions of
/// times a second).
fn parse_op(op: &str) -> Result<Op, String> {
    match op {
        "create" => Ok(Op::Create),
        path if path.starts_with('/') => Ok(Op::Get(path.to_owned())),
        other => Err(format!(
            "`{other}` is neither `create` nor a path starting with `/` (e.g. /api/patients/<id>)"
        )),
    }
}

fn write_json(path: Option<&Path>, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_vec_pretty(value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn check_binary(bin: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it first (`cargo build --release -p pms-server`)",
        bin.display()
    );
    Ok(())
}

async fn run(
    bin: &Path,
    postgres: Option<&str>,
    tansu: Option<&Path>,
    secs: u64,
    targets: &[TargetKind],
) -> anyhow::Result<Report> {
    check_binary(bin)?;
    let mut report = Report::default();
    let admin = Admin::random();

    if targets.contains(&TargetKind::Embedded) {
        run_embedded(&mut report, bin, &admin, secs).await?;
    }
    if !targets.contains(&TargetKind::Postgres) && !targets.contains(&TargetKind::Distributed) {
        return Ok(report);
    }
    let Some(url) = postgres else {
        eprintln!(
            "no PostgreSQL URL (--postgres / PMS_TEST_DATABASE_URL): PostgreSQL targets skipped"
        );
        return Ok(report);
    };
    let base = TempDb::create(url).await?;
    let mut pg = std::collections::HashMap::new();
    for (shape, name) in [
        (PgShape::Insert, "pgbench insert"),
        (PgShape::InsertOutbox, "pgbench patient+outbox"),
    ] {
        for clients in [8, 32] {
            eprintln!("baseline: {name}, {clients} clients ({secs} s)");
            let tps = baseline::pgbench(&base, shape, clients, secs).await?;
            report
                .baselines
                .push((format!("{name}, {clients} clients"), tps));
            pg.insert((name, clients), tps);
        }
    }
    base.drop_now().await?;
    let baselines = PgBaselines {
        create8: pg[&("pgbench patient+outbox", 8)],
        create32: pg[&("pgbench patient+outbox", 32)],
        insert8: pg[&("pgbench insert", 8)],
    };

    if targets.contains(&TargetKind::Postgres) {
        eprintln!("target: all-in-one on PostgreSQL");
        let db = TempDb::create(url).await?;
        let server = Server::start(bin, &admin, &[("PMS_DATABASE__URL", db.url.clone())]).await?;
        report.memory.push(memory_row("postgres", &server, true)?);
        measure_api(
            &mut report,
            "postgres",
            &server,
            &admin,
            secs,
            0.0,
            Some(&baselines),
        )
        .await?;
        count_work(&mut report, "postgres", &server, &admin, url, &db).await?;
        report.memory.push(memory_row("postgres", &server, false)?);
        server.stop()?;
        db.drop_now().await?;
    }

    if !targets.contains(&TargetKind::Distributed) {
        return Ok(report);
    }
    let Some(tansu) = tansu else {
        eprintln!("no Tansu broker (--tansu / PMS_TEST_TANSU): the distributed target skipped");
        return Ok(report);
    };
    eprintln!("target: distributed (five processes, Kafka protocol)");
    let db = TempDb::create(url).await?;
    let cluster = cluster::Cluster::start(bin, tansu, &admin, &db.url).await?;
    report.memory.push(memory_row("distrib", &cluster, true)?);
    measure_api(
        &mut report,
        "distrib",
        &cluster,
        &admin,
        secs,
        0.0,
        Some(&baselines),
    )
    .await?;
    report.memory.push(memory_row("distrib", &cluster, false)?);
    cluster.stop()?;
    db.drop_now().await?;
    Ok(report)
}

/// The SQLite commit loop, then the embedded server: the API points and the login flood.
async fn run_embedded(
    report: &mut Report,
    bin: &Path,
    admin: &Admin,
    secs: u64,
) -> anyhow::Result<()> {
    eprintln!("baseline: SQLite commit loop ({secs} s)");
    let sqlite = baseline::sqlite_commit_loop(secs).await?;
    report
        .baselines
        .push(("sqlite patient+outbox, 1 writer".into(), sqlite));

    eprintln!("target: embedded");
    let embedded = Server::start(bin, admin, &[]).await?;
    report.memory.push(memory_row("embedded", &embedded, true)?);
    measure_api(report, "embedded", &embedded, admin, secs, sqlite, None).await?;
    login_flood(report, "embedded", &embedded, admin, secs).await?;
    report
        .memory
        .push(memory_row("embedded", &embedded, false)?);
    embedded.stop()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_is_create_or_a_path() {
        assert!(matches!(parse_op("create"), Ok(Op::Create)));
        assert!(matches!(parse_op("/api/patients/1"), Ok(Op::Get(p)) if p == "/api/patients/1"));
        let err = parse_op("get").err().unwrap_or_default();
        assert!(err.contains("`get` is neither"), "{err}");
    }
}
