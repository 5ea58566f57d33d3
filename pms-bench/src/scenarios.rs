//! The measured scenarios, the same for every target: creates, GETs by id through the gateway
//! and directly, a list page, health; GETs during a flood of valid logins; PostgreSQL work per
//! operation ([`crate::pgwork`]).

use std::time::Duration;

use anyhow::Context;

use crate::baseline::TempDb;
use crate::load::{self, Op, Spec};
use crate::pgwork;
use crate::report::{self, Report, Row};
use crate::target::Admin;

/// What the scenarios need of a target (one all-in-one process, or the five-process cluster).
pub trait Target {
    /// Gateway base URL.
    fn gateway(&self) -> &str;
    /// The patient service's own base URL.
    fn patient(&self) -> &str;
    /// RSS and high-water mark in kB (summed over processes).
    fn memory_kb(&self) -> anyhow::Result<(u64, u64)>;
    /// Milliseconds from exec to ready.
    fn ready_ms(&self) -> f64;
}

impl Target for crate::target::Server {
    fn gateway(&self) -> &str {
        &self.gateway
    }
    fn patient(&self) -> &str {
        &self.patient
    }
    fn memory_kb(&self) -> anyhow::Result<(u64, u64)> {
        crate::target::Server::memory_kb(self)
    }
    fn ready_ms(&self) -> f64 {
        self.ready_ms
    }
}

impl Target for crate::cluster::Cluster {
    fn gateway(&self) -> &str {
        &self.gateway
    }
    fn patient(&self) -> &str {
        &self.patient
    }
    fn memory_kb(&self) -> anyhow::Result<(u64, u64)> {
        crate::cluster::Cluster::memory_kb(self)
    }
    fn ready_ms(&self) -> f64 {
        self.ready_ms
    }
}

/// pgbench figures of this run the PostgreSQL targets are compared with.
pub struct PgBaselines {
    pub create8: f64,
    pub create32: f64,
    pub insert8: f64,
}

/// The memory row of `server` now (idle after start, or after the load).
pub fn memory_row(target: &str, server: &dyn Target, idle: bool) -> anyhow::Result<report::Memory> {
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
        ready_ms: server.ready_ms(),
    })
}

/// Creates before a target's measured points.
const WARM_UP: Duration = Duration::from_secs(3);

/// After a warm-up ([`WARM_UP`]): create at 8/32 connections, GET by id through the gateway and
/// directly, list pages of 20 and 1,000, health.
pub async fn measure_api(
    report: &mut Report,
    target: &str,
    server: &dyn Target,
    admin: &Admin,
    secs: u64,
    sqlite: f64,
    pg: Option<&PgBaselines>,
) -> anyhow::Result<()> {
    let token = load::login(server.gateway(), &admin.email, &admin.password).await?;
    let id = load::create_patient(server.gateway(), &token).await?;
    let duration = Duration::from_secs(secs);
    let spec = |label: &str, base: &str, op: Op, connections| Spec {
        label: label.into(),
        base: base.into(),
        op,
        connections,
        duration,
        token: Some(token.clone()),
    };
    let (gw, direct) = (server.gateway(), server.patient());
    // Not measured: a new server's first seconds (its new tables' first statistics, cached
    // statement plans, connection pools) are not its steady state.
    eprintln!(
        "{target}: warm-up, create c=32 ({} s, not measured)",
        WARM_UP.as_secs()
    );
    let warm = load::run(&Spec {
        duration: WARM_UP,
        ..spec("warm-up", gw, Op::Create, 32)
    })
    .await?;
    if warm.errors > 0 {
        eprintln!("{target}: warning: {} errors in the warm-up", warm.errors);
    }
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
            spec(
                "list 1000 (gateway)",
                gw,
                Op::Get("/api/patients?limit=1000".into()),
                4,
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
pub async fn login_flood(
    report: &mut Report,
    target: &str,
    server: &dyn Target,
    admin: &Admin,
    secs: u64,
) -> anyhow::Result<()> {
    let token = load::login(server.gateway(), &admin.email, &admin.password).await?;
    let id = load::create_patient(server.gateway(), &token).await?;
    let get = Spec {
        label: "GET by id during a login flood".into(),
        base: server.gateway().to_owned(),
        op: Op::Get(format!("/api/patients/{id}")),
        connections: 4,
        duration: Duration::from_secs(secs),
        token: Some(token),
    };
    eprintln!("{target}: GET by id alone, c=4 ({secs} s)");
    let alone = load::run(&Spec {
        label: "GET by id alone".into(),
        ..get.clone()
    })
    .await?;
    let flood = Spec {
        label: "valid logins (the flood)".into(),
        base: server.gateway().to_owned(),
        op: Op::Login {
            email: admin.email.clone(),
            password: admin.password.clone(),
        },
        connections: 16,
        duration: Duration::from_secs(secs + 2),
        token: None,
    };
    eprintln!("{target}: GET by id during a login flood, c=4 ({secs} s)");
    let flooding = tokio::spawn(async move { load::run(&flood).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = load::run(&get).await?;
    let flood = flooding.await.context("the flood task")??;
    report.rows.push(Row::plain(target, alone.clone()));
    report.rows.push(Row::with_ratio(
        target,
        during.clone(),
        "alone".into(),
        during.rps / alone.rps,
        alone.rps,
    ));
    report.rows.push(Row::plain(target, flood));
    Ok(())
}

/// Commits and rows (and statement calls, with `pg_stat_statements`) per create and per GET on
/// PostgreSQL: 100 sequential creates, 100 sequential GETs and 400 GETs on 8 connections (where
/// reads share audit commits), each window read [`pgwork::SETTLE`] after its last request (see
/// [`pgwork`] for why); the background rate of the quieter of two idle windows (before and after)
/// subtracted. About a minute.
pub async fn count_work(
    report: &mut Report,
    target: &str,
    server: &dyn Target,
    admin: &Admin,
    admin_url: &str,
    db: &TempDb,
) -> anyhow::Result<()> {
    const OPS: u64 = 100;
    const CONNECTIONS: u64 = 8;
    /// Each idle window: three polling rounds of the relay and consumers (every 2 s when idle).
    const IDLE: Duration = Duration::from_secs(6);
    eprintln!(
        "{target}: counting commits and rows per operation (about {} s)",
        4 * pgwork::SETTLE.as_secs() + 2 * IDLE.as_secs()
    );
    let mut probe = pgwork::Probe::connect(admin_url, &db.name).await?;
    if let Some(why) = probe.statements_unavailable() {
        let note = format!(
            "pg_stat_statements not readable ({why}): statement counts skipped. Load it \
             (shared_preload_libraries, a restart) and run `CREATE EXTENSION pg_stat_statements` \
             as a superuser in the database of the PostgreSQL URL; scripts/test-services does both \
             when it starts PostgreSQL itself"
        );
        eprintln!("{target}: {note}");
        report.work_note = Some(note);
    }
    let token = load::login(server.gateway(), &admin.email, &admin.password).await?;
    let id = load::create_patient(server.gateway(), &token).await?;
    let gw = server.gateway().to_owned();
    let client = reqwest::Client::new();
    let url = format!("{gw}/api/patients/{id}");
    // The load before this (and the login above) flushes its statistics first.
    tokio::time::sleep(pgwork::SETTLE).await;
    let mut last = probe.snapshot().await?;
    tokio::time::sleep(IDLE).await;
    let now = probe.snapshot().await?;
    let idle_before = pgwork::Rates::of(&pgwork::Delta::between(&last, &now));
    last = now;
    let mut windows = Vec::new();
    /// What a window does: sequential creates, or GETs by id on some connections.
    enum Ops {
        Creates,
        Gets { connections: u64 },
    }
    for (operation, what, ops) in [
        ("create (gateway, 1 conn)", Ops::Creates, OPS),
        (
            "GET by id (gateway, 1 conn)",
            Ops::Gets { connections: 1 },
            OPS,
        ),
        (
            "GET by id (gateway, 8 conns)",
            Ops::Gets {
                connections: CONNECTIONS,
            },
            4 * OPS,
        ),
    ] {
        match what {
            Ops::Creates => {
                for _ in 0..ops {
                    load::create_patient(&gw, &token).await?;
                }
            }
            Ops::Gets { connections } => {
                let workers =
                    (0..connections).map(|_| get_many(&client, &url, &token, ops / connections));
                futures::future::try_join_all(workers).await?;
            }
        }
        tokio::time::sleep(pgwork::SETTLE).await;
        let now = probe.snapshot().await?;
        windows.push((operation, pgwork::Delta::between(&last, &now), ops));
        last = now;
    }
    tokio::time::sleep(IDLE).await;
    let idle_after = pgwork::Rates::of(&pgwork::Delta::between(&last, &probe.snapshot().await?));
    let idle = idle_before.min(&idle_after);
    for (operation, work, ops) in windows {
        if probe.statements_unavailable().is_none() && work.statements.is_none() {
            let note = format!(
                "pg_stat_statements was reset during the {operation} window (by another session): \
                 no statement counts for it"
            );
            eprintln!("{target}: {note}");
            report.work_note = Some(note);
        }
        report.work.push(pgwork::per_op(
            &format!("{target}: {operation}"),
            &work,
            &idle,
            ops,
        ));
    }
    report.work_idle = Some(idle.as_row(&format!("{target}: idle, per second")));
    Ok(())
}

/// `n` sequential GETs of `url`; fails on the first non-2xx answer.
async fn get_many(client: &reqwest::Client, url: &str, token: &str, n: u64) -> anyhow::Result<()> {
    for _ in 0..n {
        let r = client.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(r.status().is_success(), "GET answered {}", r.status());
        r.bytes().await?;
    }
    Ok(())
}
