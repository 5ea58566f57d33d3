//! `pms-bench`: measures PMS beside the limits of its storage on the same machine in one run.
//!
//! `pms-bench run` starts release `pms-server` targets (embedded SQLite; all-in-one on
//! PostgreSQL when a database URL is given), drives them with the closed-loop generator in
//! [`load`], runs the baselines in [`baseline`] (pgbench, a SQLite commit loop), and prints one
//! table plus memory, time to ready and PostgreSQL work per operation; `--json` writes the same.
//! `pms-bench load` drives any running gateway with one operation (for ad-hoc runs).
//! Figures only: nothing here passes or fails on speed.

#![forbid(unsafe_code)]

mod baseline;
mod load;
mod report;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use baseline::{PgShape, TempDb};
use load::{Op, Spec};
use report::{Report, Row};
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
        /// PostgreSQL URL of a role with CREATEDB: enables the PostgreSQL target and the
        /// pgbench baselines (each gets a fresh database, dropped afterwards).
        #[arg(long, env = "PMS_TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// Seconds per measured point.
        #[arg(long, default_value_t = 5)]
        secs: u64,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Load a running gateway with one operation and print its figures.
    Load {
        /// Gateway (or service) base URL.
        #[arg(long, default_value = "http://127.0.0.1:4004")]
        url: String,
        /// `create`, or a path to GET (e.g. `/api/patients/<id>`).
        #[arg(long)]
        op: String,
        /// Bearer token (`pms auth token` prints one).
        #[arg(long, env = "PMS_TOKEN")]
        token: Option<String>,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Run {
            server,
            postgres,
            secs,
            json,
        } => {
            let report = run(&server, postgres.as_deref(), secs).await?;
            print!("{}", report.table());
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Cmd::Load {
            url,
            op,
            token,
            connections,
            secs,
        } => {
            let op = if op == "create" {
                Op::Create
            } else {
                Op::Get(op)
            };
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

async fn run(bin: &std::path::Path, postgres: Option<&str>, secs: u64) -> anyhow::Result<Report> {
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it first (`cargo build --release -p pms-server`)",
        bin.display()
    );
    let mut report = Report::default();
    let admin = Admin {
        email: "bench-admin@bench.test".into(),
        password: format!("Bench-{}", uuid::Uuid::new_v4().simple()),
    };

    eprintln!("baseline: SQLite commit loop ({secs} s)");
    let sqlite = baseline::sqlite_commit_loop(secs).await?;
    report
        .baselines
        .push(("sqlite patient+outbox, 1 writer".into(), sqlite));

    eprintln!("target: embedded");
    let embedded = Server::start(bin, &admin, &[]).await?;
    report.memory.push(memory_row("embedded", &embedded, true)?);
    measure_api(
        &mut report,
        "embedded",
        &embedded,
        &admin,
        secs,
        sqlite,
        None,
    )
    .await?;
    login_flood(&mut report, &embedded, &admin, secs).await?;
    report
        .memory
        .push(memory_row("embedded", &embedded, false)?);
    embedded.stop()?;

    if let Some(url) = postgres {
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

        eprintln!("target: all-in-one on PostgreSQL");
        let db = TempDb::create(url).await?;
        let server = Server::start(bin, &admin, &[("PMS_DATABASE__URL", db.url.clone())]).await?;
        report.memory.push(memory_row("postgres", &server, true)?);
        let baselines = PgBaselines {
            create8: pg[&("pgbench patient+outbox", 8)],
            create32: pg[&("pgbench patient+outbox", 32)],
            insert8: pg[&("pgbench insert", 8)],
        };
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
        count_work(&mut report, &server, &admin, url, &db).await?;
        report.memory.push(memory_row("postgres", &server, false)?);
        server.stop()?;
        db.drop_now().await?;
    }
    Ok(report)
}

struct PgBaselines {
    create8: f64,
    create32: f64,
    insert8: f64,
}

fn memory_row(target: &str, server: &Server, idle: bool) -> anyhow::Result<report::Memory> {
    let (rss, hwm) = server.memory_kb()?;
    Ok(report::Memory {
        target: target.into(),
        when: if idle {
            "idle after start"
        } else {
            "after the load"
        }
        .into(),
        rss_kb: rss,
        hwm_kb: hwm,
        ready_ms: server.ready_ms,
    })
}

/// Create at 8/32 connections, GET by id through the gateway and directly, a list page, health.
async fn measure_api(
    report: &mut Report,
    target: &str,
    server: &Server,
    admin: &Admin,
    secs: u64,
    sqlite: f64,
    pg: Option<&PgBaselines>,
) -> anyhow::Result<()> {
    let token = load::login(&server.gateway, &admin.email, &admin.password).await?;
    let id = load::create_patient(&server.gateway, &token).await?;
    let duration = Duration::from_secs(secs);
    let spec = |label: &str, base: &str, op: Op, connections| Spec {
        label: label.into(),
        base: base.into(),
        op,
        connections,
        duration,
        token: Some(token.clone()),
    };
    let (gw, direct) = (server.gateway.as_str(), server.patient.as_str());
    let by_id = format!("/api/patients/{id}");
    let points = [
        (
            spec("create", gw, Op::Create, 8),
            pg.map(|b| ("pgbench patient+outbox", b.create8)),
        ),
        (
            spec("create", gw, Op::Create, 32),
            pg.map(|b| ("pgbench patient+outbox", b.create32)),
        ),
        (
            spec("GET by id (gateway)", gw, Op::Get(by_id.clone()), 8),
            pg.map(|b| ("pgbench insert", b.insert8)),
        ),
        (
            spec(
                "GET by id (patient port)",
                direct,
                Op::Get(format!("/patients/{id}")),
                8,
            ),
            None,
        ),
        (
            spec(
                "list 20 (gateway)",
                gw,
                Op::Get("/api/patients?limit=20".into()),
                8,
            ),
            None,
        ),
        (
            spec("health (gateway)", gw, Op::Get("/health/live".into()), 8),
            None,
        ),
    ];
    let mut gateway_get = None;
    for (spec, baseline) in points {
        eprintln!("{target}: {} c={} ({secs} s)", spec.label, spec.connections);
        let o = load::run(&spec).await?;
        let baseline = match (baseline, spec.label.as_str()) {
            (Some((name, v)), _) => Some((name.to_owned(), v)),
            (None, "create") if sqlite > 0.0 => Some(("sqlite commit loop".to_owned(), sqlite)),
            (None, "GET by id (patient port)") => {
                gateway_get.map(|g: f64| ("gateway ÷ direct".to_owned(), g))
            }
            _ => None,
        };
        if spec.label == "GET by id (gateway)" {
            gateway_get = Some(o.rps);
        }
        // For the direct GET the ratio reads "gateway req/s ÷ direct req/s".
        let row = match baseline {
            Some((name, g)) if name == "gateway ÷ direct" => {
                Row::with_ratio(target, o.clone(), name, g / o.rps, o.rps)
            }
            Some((name, v)) => Row::with_ratio(target, o.clone(), name, o.rps / v, v),
            None => Row::plain(target, o.clone()),
        };
        report.rows.push(row);
    }
    Ok(())
}

/// GET by id alone, then during a flood of valid logins (16 connections of Argon2id work).
async fn login_flood(
    report: &mut Report,
    server: &Server,
    admin: &Admin,
    secs: u64,
) -> anyhow::Result<()> {
    let token = load::login(&server.gateway, &admin.email, &admin.password).await?;
    let id = load::create_patient(&server.gateway, &token).await?;
    let get = Spec {
        label: "GET by id during a login flood".into(),
        base: server.gateway.clone(),
        op: Op::Get(format!("/api/patients/{id}")),
        connections: 4,
        duration: Duration::from_secs(secs),
        token: Some(token),
    };
    eprintln!("embedded: GET by id alone, c=4 ({secs} s)");
    let alone = load::run(&Spec {
        label: "GET by id alone".into(),
        ..get.clone()
    })
    .await?;
    let flood = Spec {
        label: "valid logins (the flood)".into(),
        base: server.gateway.clone(),
        op: Op::Login {
            email: admin.email.clone(),
            password: admin.password.clone(),
        },
        connections: 16,
        duration: Duration::from_secs(secs + 2),
        token: None,
    };
    eprintln!("embedded: GET by id during a login flood, c=4 ({secs} s)");
    let flooding = tokio::spawn(async move { load::run(&flood).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = load::run(&get).await?;
    let flood = flooding.await.context("the flood task")??;
    report.rows.push(Row::plain("embedded", alone.clone()));
    report.rows.push(Row::with_ratio(
        "embedded",
        during.clone(),
        "alone".into(),
        during.rps / alone.rps,
        alone.rps,
    ));
    report.rows.push(Row::plain("embedded", flood));
    Ok(())
}

/// Commits and rows per create and per GET on PostgreSQL (100 sequential operations each, the
/// idle background work over the same time subtracted).
async fn count_work(
    report: &mut Report,
    server: &Server,
    admin: &Admin,
    admin_url: &str,
    db: &TempDb,
) -> anyhow::Result<()> {
    const OPS: u64 = 100;
    eprintln!("postgres: counting commits and rows per operation");
    let token = load::login(&server.gateway, &admin.email, &admin.password).await?;
    let id = load::create_patient(&server.gateway, &token).await?;
    let idle = baseline::measure(admin_url, &db.name, || async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(())
    })
    .await?;
    let gw = server.gateway.clone();
    let creates = baseline::measure(admin_url, &db.name, || async {
        for _ in 0..OPS {
            load::create_patient(&gw, &token).await?;
        }
        Ok(())
    })
    .await?;
    let client = reqwest::Client::new();
    let gets = baseline::measure(admin_url, &db.name, || async {
        for _ in 0..OPS {
            let r = client
                .get(format!("{gw}/api/patients/{id}"))
                .bearer_auth(&token)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "GET answered {}", r.status());
        }
        Ok(())
    })
    .await?;
    report.work.push(baseline::PgCounters::per_op(
        "create (through the gateway)",
        creates.0,
        creates.1,
        idle,
        OPS,
    ));
    report.work.push(baseline::PgCounters::per_op(
        "GET by id (through the gateway)",
        gets.0,
        gets.1,
        idle,
        OPS,
    ));
    Ok(())
}
