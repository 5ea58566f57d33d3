//! The measured scenarios, the same for every target: creates, GETs by id through the gateway
//! and directly, a list page, health; GETs during a flood of valid logins; PostgreSQL work per
//! operation.

use std::time::Duration;

use anyhow::Context;

use crate::baseline::{self, TempDb};
use crate::load::{self, Op, Spec};
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

/// Create at 8/32 connections, GET by id through the gateway and directly, list pages of 20 and
/// 1,000, health.
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

/// Commits and rows per create and per GET on PostgreSQL: 100 sequential creates, 100
/// sequential GETs and 400 GETs on 8 connections (where reads share audit commits), the idle
/// background work over the same time subtracted.
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
    eprintln!("{target}: counting commits and rows per operation");
    let token = load::login(server.gateway(), &admin.email, &admin.password).await?;
    let id = load::create_patient(server.gateway(), &token).await?;
    let idle = baseline::measure(admin_url, &db.name, || async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Ok(())
    })
    .await?;
    let gw = server.gateway().to_owned();
    let creates = baseline::measure(admin_url, &db.name, || async {
        for _ in 0..OPS {
            load::create_patient(&gw, &token).await?;
        }
        Ok(())
    })
    .await?;
    let client = reqwest::Client::new();
    let url = format!("{gw}/api/patients/{id}");
    let gets =
        baseline::measure(admin_url, &db.name, || get_many(&client, &url, &token, OPS)).await?;
    let concurrent = baseline::measure(admin_url, &db.name, || async {
        let workers =
            (0..CONNECTIONS).map(|_| get_many(&client, &url, &token, 4 * OPS / CONNECTIONS));
        futures::future::try_join_all(workers).await.map(|_| ())
    })
    .await?;
    for (operation, (delta, secs), ops) in [
        ("create (gateway, 1 conn)", creates, OPS),
        ("GET by id (gateway, 1 conn)", gets, OPS),
        ("GET by id (gateway, 8 conns)", concurrent, 4 * OPS),
    ] {
        report.work.push(baseline::PgCounters::per_op(
            &format!("{target}: {operation}"),
            delta,
            secs,
            idle,
            ops,
        ));
    }
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
