//! Operational metrics: the families operators, alert rules and autoscalers rely on (README
//! "Operations"), all present from the first scrape (at zero), with fixed names:
//!
//! - process: `process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`;
//! - database pools: `db_pool_connections{service,state="idle"|"in_use"}`,
//!   `db_pool_max_connections{service}`, `db_pool_acquire_seconds{service}` (histogram);
//! - outboxes: `outbox_pending_events{service}`, `outbox_oldest_pending_age_seconds{service}`;
//! - consumers: `consumer_lag{group,topic,partition}`, `events_applied_total{service,type}`,
//!   `events_skipped_total{service,reason}`;
//! - `sse_clients{service}`, `service_ready{service}` (1/0), and the request families recorded by
//!   [`crate::http`]: `http_requests_total{service,method,route,status}`,
//!   `http_request_duration_seconds{service,method,route}` (histogram).
//!
//! Values that live in a database (pool use, outbox backlog, embedded-log lag, readiness) are
//! sampled when `/metrics` is scraped ([`sample_all`]): no background task, always current.
//! Pool acquire wait is measured by that sample's own acquire (a probe, one per scrape) — sqlx
//! does not time the acquires of queries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::store::Db;

/// Buckets (seconds) of the latency histograms: 1 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Histograms (rendered with [`LATENCY_BUCKETS`], not as summaries).
pub const HISTOGRAMS: [&str; 2] = ["http_request_duration_seconds", "db_pool_acquire_seconds"];

/// Longest one sampler may take during a scrape; a slow database must not hang `/metrics`.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A scrape-time sampler; `false` once what it watches is gone (then it is dropped).
type Sampler = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// The registered samplers, each under a key naming what it samples (`pool:patient`, …). A new
/// registration replaces the one under the same key, so a process that builds a service again (the
/// test suites build hundreds in one process) keeps sampling — and holding — only the newest one,
/// instead of every pool it ever opened.
static SAMPLERS: LazyLock<Mutex<Vec<(u64, String, Sampler)>>> =
    LazyLock::new(|| Mutex::new(Vec::new()));
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn add_sampler(key: String, sampler: Sampler) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    // A poisoned lock only means a sampler registration panicked; the list is still usable.
    let mut samplers = SAMPLERS.lock().unwrap_or_else(|e| e.into_inner());
    samplers.retain(|(_, k, _)| *k != key);
    samplers.push((id, key, sampler));
}

/// Refreshes every sampled value: process figures, then each registered sampler (concurrently,
/// each bounded by a timeout). Called by `/metrics` before rendering.
pub async fn sample_all() {
    process::sample();
    let samplers: Vec<(u64, Sampler)> = SAMPLERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(id, _, sampler)| (*id, sampler.clone()))
        .collect();
    let results = futures::future::join_all(samplers.iter().map(|(id, sampler)| async move {
        // A timed-out sampler stays: the next scrape tries again.
        let alive = tokio::time::timeout(SAMPLE_TIMEOUT, sampler())
            .await
            .unwrap_or(true);
        (*id, alive)
    }))
    .await;
    let gone: Vec<u64> = results
        .into_iter()
        .filter(|(_, alive)| !alive)
        .map(|(id, _)| id)
        .collect();
    if !gone.is_empty() {
        SAMPLERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _, _)| !gone.contains(id));
    }
}

/// Describes the families (the `# HELP` lines) and registers the process figures at zero.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "process_resident_memory_bytes",
        metrics::Unit::Bytes,
        "Resident set size."
    );
    describe_counter!(
        "process_cpu_seconds_total",
        metrics::Unit::Seconds,
        "User and system CPU time."
    );
    describe_gauge!("process_open_fds", "Open file descriptors.");
    describe_gauge!(
        "db_pool_connections",
        "Connections of the service's database pool, by state."
    );
    describe_gauge!(
        "db_pool_max_connections",
        "Size limit of the service's database pool."
    );
    describe_histogram!(
        "db_pool_acquire_seconds",
        metrics::Unit::Seconds,
        "Wait for a pooled connection (probed at each scrape)."
    );
    describe_gauge!("outbox_pending_events", "Outbox events not yet published.");
    describe_gauge!(
        "outbox_oldest_pending_age_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest unpublished outbox event (0: none)."
    );
    describe_gauge!(
        "consumer_lag",
        "Events of a topic partition a consumer group has not consumed yet."
    );
    describe_counter!(
        "events_applied_total",
        "Consumed events handled (duplicates included: handlers are idempotent)."
    );
    describe_counter!(
        "events_skipped_total",
        "Consumed events skipped, by reason (poison: malformed)."
    );
    describe_gauge!("sse_clients", "Open live event streams.");
    describe_gauge!(
        "service_ready",
        "1 while the service's readiness check passes, else 0."
    );
    describe_counter!(
        "http_requests_total",
        "HTTP requests by route template and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route template."
    );
    process::sample();
}

/// Registers a service's request families (at zero, for its readiness route) and its readiness
/// gauge, sampled with `ready` at each scrape for as long as the service's router holds `ready`.
pub fn watch_service(service: &'static str, ready: crate::http::ReadyCheck) {
    let labels = [
        ("service", service.to_owned()),
        ("method", "GET".to_owned()),
        ("route", "/health/ready".to_owned()),
    ];
    let _ = metrics::histogram!("http_request_duration_seconds", &labels);
    for status in ["200", "503"] {
        let mut with_status = labels.to_vec();
        with_status.push(("status", status.to_owned()));
        metrics::counter!("http_requests_total", &with_status).absolute(0);
    }
    metrics::gauge!("service_ready", "service" => service).set(0.0);
    // Weak: a stopped service (its router dropped) stops being sampled.
    let ready = Arc::downgrade(&ready);
    add_sampler(
        format!("ready:{service}"),
        Arc::new(move || {
            let ready = ready.upgrade();
            Box::pin(async move {
                let Some(ready) = ready else {
                    return false;
                };
                let up = ready().await.is_ok();
                metrics::gauge!("service_ready", "service" => service).set(if up {
                    1.0
                } else {
                    0.0
                });
                true
            })
        }),
    );
}

/// Registers `db`'s pool figures under `service`, sampled at each scrape until the pool closes.
pub fn watch_pool(service: &'static str, db: &Db) {
    let max = match db {
        Db::Postgres(pool) => pool.options().get_max_connections(),
        Db::Sqlite(pool) => pool.options().get_max_connections(),
    };
    metrics::gauge!("db_pool_max_connections", "service" => service).set(f64::from(max));
    for state in ["idle", "in_use"] {
        metrics::gauge!("db_pool_connections", "service" => service, "state" => state).set(0.0);
    }
    let _ = metrics::histogram!("db_pool_acquire_seconds", "service" => service);
    let db = db.clone();
    add_sampler(
        format!("pool:{service}"),
        Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { sample_pool(service, &db).await })
        }),
    );
}

fn is_closed(db: &Db) -> bool {
    match db {
        Db::Postgres(p) => p.is_closed(),
        Db::Sqlite(p) => p.is_closed(),
    }
}

async fn sample_pool(service: &'static str, db: &Db) -> bool {
    let (closed, size, idle) = match db {
        Db::Postgres(p) => (p.is_closed(), p.size(), p.num_idle()),
        Db::Sqlite(p) => (p.is_closed(), p.size(), p.num_idle()),
    };
    if closed {
        return false;
    }
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    metrics::gauge!("db_pool_connections", "service" => service, "state" => "idle")
        .set(f64::from(idle));
    metrics::gauge!("db_pool_connections", "service" => service, "state" => "in_use")
        .set(f64::from(size - idle));
    let started = Instant::now();
    let acquired = match db {
        Db::Postgres(p) => p.acquire().await.map(drop),
        Db::Sqlite(p) => p.acquire().await.map(drop),
    };
    if acquired.is_ok() {
        metrics::histogram!("db_pool_acquire_seconds", "service" => service)
            .record(started.elapsed().as_secs_f64());
    }
    true
}

const OLDEST_PENDING: &str =
    "SELECT occurred_at FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT 1";

/// Registers `service`'s outbox backlog figures, sampled at each scrape.
pub fn watch_outbox(service: &'static str, db: &Db) {
    metrics::gauge!("outbox_pending_events", "service" => service).set(0.0);
    metrics::gauge!("outbox_oldest_pending_age_seconds", "service" => service).set(0.0);
    let db = db.clone();
    add_sampler(
        format!("outbox:{service}"),
        Arc::new(move || {
            let db = db.clone();
            Box::pin(async move {
                if is_closed(&db) {
                    return false;
                }
                if let Ok(pending) = crate::events::outbox::backlog(&db).await {
                    metrics::gauge!("outbox_pending_events", "service" => service)
                        .set(pending as f64);
                }
                let oldest: Result<Option<DateTime<Utc>>, sqlx::Error> = match &db {
                    Db::Postgres(p) => sqlx::query_scalar(OLDEST_PENDING).fetch_optional(p).await,
                    Db::Sqlite(p) => sqlx::query_scalar(OLDEST_PENDING).fetch_optional(p).await,
                };
                if let Ok(oldest) = oldest {
                    let age = oldest.map_or(0.0, |at| {
                        (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
                    });
                    metrics::gauge!("outbox_oldest_pending_age_seconds", "service" => service)
                        .set(age);
                }
                true
            })
        }),
    );
}

/// The service a consumer group belongs to (`billing-service` → `billing`).
pub fn service_of(group: &str) -> String {
    group.strip_suffix("-service").unwrap_or(group).to_owned()
}

/// Registers a consumer's families at zero: lag of partition 0 of each topic (more partitions
/// appear as they are consumed), applied events of each known type, skipped poison.
pub fn watch_consumer(group: &str, topics: &[&str]) {
    let service = service_of(group);
    for topic in topics {
        set_lag(group, topic, 0, 0);
        for event_type in known_types(topic) {
            metrics::counter!("events_applied_total", "service" => service.clone(), "type" => *event_type)
                .absolute(0);
        }
    }
    metrics::counter!("events_skipped_total", "service" => service, "reason" => "poison")
        .absolute(0);
}

/// Sets `consumer_lag{group,topic,partition}`.
pub fn set_lag(group: &str, topic: &str, partition: i32, lag: i64) {
    metrics::gauge!(
        "consumer_lag",
        "group" => group.to_owned(),
        "topic" => topic.to_owned(),
        "partition" => partition.to_string()
    )
    .set(lag.max(0) as f64);
}

/// Counts one consumed event: applied (`Ok` from its handler) or skipped for `reason`.
pub fn count_event(group: &str, event_type: &str, skipped: Option<&'static str>) {
    let service = service_of(group);
    match skipped {
        None => metrics::counter!("events_applied_total", "service" => service, "type" => event_type.to_owned())
            .increment(1),
        Some(reason) => {
            metrics::counter!("events_skipped_total", "service" => service, "reason" => reason)
                .increment(1)
        }
    }
}

/// Registers a sampler (embedded log): `lag(topic)` is the number of events of `topic` after the
/// group's committed position, reported as partition 0.
pub fn watch_lag(
    group: String,
    topics: Vec<String>,
    lag: Arc<dyn Fn(String) -> BoxFuture<'static, Option<i64>> + Send + Sync>,
) {
    add_sampler(
        format!("lag:{group}"),
        Arc::new(move || {
            let (group, topics, lag) = (group.clone(), topics.clone(), lag.clone());
            Box::pin(async move {
                for topic in topics {
                    if let Some(n) = lag(topic.clone()).await {
                        set_lag(&group, &topic, 0, n);
                    }
                }
                true
            })
        }),
    )
}

fn known_types(topic: &str) -> &'static [&'static str] {
    use crate::events::validate::{BILLING_TYPES, PATIENT_TYPES};
    match topic {
        crate::events::TOPIC_PATIENT => &PATIENT_TYPES,
        crate::events::TOPIC_BILLING => &BILLING_TYPES,
        _ => &[],
    }
}

/// Registers `sse_clients{service}` at zero.
pub fn watch_sse(service: &'static str) {
    metrics::gauge!("sse_clients", "service" => service).increment(0.0);
}

/// Counts one open live stream in `sse_clients{service}` for as long as it lives.
pub struct SseClient(&'static str);

impl SseClient {
    pub fn open(service: &'static str) -> SseClient {
        metrics::gauge!("sse_clients", "service" => service).increment(1.0);
        SseClient(service)
    }
}

impl Drop for SseClient {
    fn drop(&mut self) {
        metrics::gauge!("sse_clients", "service" => self.0).decrement(1.0);
    }
}

/// Process figures from `/proc/self` (Linux; elsewhere they stay at zero). A small reader instead
/// of a crate: three numbers do not justify procfs' compile time.
mod process {
    /// Clock ticks per second of `/proc/<pid>/stat`: `USER_HZ`, fixed at 100 by the Linux ABI on
    /// every architecture we build for.
    const USER_HZ: f64 = 100.0;

    pub fn sample() {
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| rss_bytes(&s))
            .unwrap_or(0);
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
        let cpu = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| cpu_ticks(&s))
            .unwrap_or(0);
        // A counter set to the kernel's running total (it only grows).
        metrics::counter!("process_cpu_seconds_total").absolute((cpu as f64 / USER_HZ) as u64);
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
        metrics::gauge!("process_open_fds").set(fds as f64);
    }

    /// `VmRSS:  1234 kB` → bytes.
    pub(super) fn rss_bytes(status: &str) -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// utime + stime (fields 14 and 15) of `/proc/self/stat`, in ticks. The command name (field
    /// 2) may hold spaces and parentheses: fields are counted after its closing `)`.
    pub(super) fn cpu_ticks(stat: &str) -> Option<u64> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field n is at index n - 3.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(utime + stime)
    }
}

#[cfg(test)]
mod tests {
    use super::process::{cpu_ticks, rss_bytes};
    use super::service_of;

    #[test]
    fn proc_files_are_parsed() {
        assert_eq!(
            rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\nVmData: 1 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(rss_bytes("Name: x\n"), None);
        let stat = "4242 (pms server) (x) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 8 0 100";
        assert_eq!(cpu_ticks(stat), Some(200));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn groups_name_their_service() {
        assert_eq!(service_of("billing-service"), "billing");
        assert_eq!(service_of("custom"), "custom");
    }
}
