//! `/metrics` read the way Prometheus reads it (a text-format parser): every operational family
//! (README "Operations") is there right after start, at zero where nothing happened yet, and
//! moves with traffic.

use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::helpers::{Backend, spawn_app_on};

async fn scrape(client: &reqwest::Client, addr: std::net::SocketAddr) -> Vec<Sample> {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("valid Prometheus text")
        .samples
}

/// The samples of family `name` whose labels include every pair of `labels`.
fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

fn value(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
        Value::Summary(_) => panic!("{} is a summary, not a histogram", sample.metric),
    }
}

/// Every family, with the labels a dashboard selects on, for the all-in-one app.
const FAMILIES: &[(&str, &[(&str, &str)])] = &[
    ("process_resident_memory_bytes", &[]),
    ("process_cpu_seconds_total", &[]),
    ("process_open_fds", &[]),
    (
        "db_pool_connections",
        &[("service", "patient"), ("state", "idle")],
    ),
    (
        "db_pool_connections",
        &[("service", "billing"), ("state", "in_use")],
    ),
    ("db_pool_max_connections", &[("service", "auth")]),
    ("db_pool_acquire_seconds", &[("service", "analytics")]),
    ("outbox_pending_events", &[("service", "patient")]),
    ("outbox_pending_events", &[("service", "billing")]),
    (
        "outbox_oldest_pending_age_seconds",
        &[("service", "patient")],
    ),
    (
        "outbox_oldest_pending_age_seconds",
        &[("service", "billing")],
    ),
    (
        "consumer_lag",
        &[
            ("group", "billing-service"),
            ("topic", "patient"),
            ("partition", "0"),
        ],
    ),
    (
        "consumer_lag",
        &[("group", "analytics-service"), ("topic", "billing")],
    ),
    (
        "events_applied_total",
        &[("service", "analytics"), ("type", "PATIENT_CREATED")],
    ),
    (
        "events_skipped_total",
        &[("service", "billing"), ("reason", "poison")],
    ),
    ("sse_clients", &[("service", "analytics")]),
    ("service_ready", &[("service", "gateway")]),
    ("service_ready", &[("service", "billing")]),
    ("http_requests_total", &[("service", "patient")]),
    (
        "http_request_duration_seconds",
        &[("service", "auth"), ("route", "/health/ready")],
    ),
];

fn assert_all_present(samples: &[Sample], when: &str) {
    for (name, labels) in FAMILIES {
        assert!(
            !find(samples, name, labels).is_empty(),
            "{when}: no {name}{labels:?} in /metrics"
        );
    }
    for histogram in ["db_pool_acquire_seconds", "http_request_duration_seconds"] {
        assert!(
            find(samples, histogram, &[])
                .iter()
                .all(|s| matches!(s.value, Value::Histogram(_))),
            "{histogram} is a histogram"
        );
    }
}

#[tokio::test]
async fn every_operational_metric_is_there_from_start_and_moves_with_traffic() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    // A service port, straight after start.
    let samples = scrape(&client, app.billing_addr).await;
    assert_all_present(&samples, "right after start");
    let gauge = |samples: &[Sample], name: &str, labels: &[(&str, &str)]| {
        find(samples, name, labels).first().map(|s| value(s))
    };
    assert!(gauge(&samples, "process_resident_memory_bytes", &[]).unwrap_or(0.0) > 1e6);
    assert!(gauge(&samples, "process_open_fds", &[]).unwrap_or(0.0) >= 3.0);
    // Other tests' apps share this process's registry: the value is one of theirs or ours.
    assert!(matches!(
        gauge(&samples, "service_ready", &[("service", "patient")]),
        Some(v) if v == 0.0 || v == 1.0
    ));
    // The limit is 8 for SQLite, but PostgreSQL apps of other tests may have set theirs last.
    assert!(
        gauge(
            &samples,
            "db_pool_max_connections",
            &[("service", "billing")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "the pool's limit"
    );

    // Traffic: a patient created and read through the gateway.
    let admin = app.admin_token().await;
    let created: serde_json::Value = app
        .client
        .post(app.url("/api/patients"))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "Metric Mo", "email": format!("metrics-{}@example.com", uuid::Uuid::new_v4().simple()),
            "address": "1 Main St", "dateOfBirth": "1980-01-01", "registeredDate": "2024-01-01"
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id");
    let got = app
        .client
        .get(app.url(&format!("/api/patients/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), 200);

    // Consumers apply the event a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let samples = scrape(&client, app.patient_addr).await;
        let applied = gauge(
            &samples,
            "events_applied_total",
            &[("service", "analytics"), ("type", "PATIENT_CREATED")],
        );
        if applied.unwrap_or(0.0) >= 1.0 || Instant::now() > deadline {
            break samples;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_all_present(&samples, "after traffic");
    assert!(
        gauge(
            &samples,
            "events_applied_total",
            &[("service", "analytics"), ("type", "PATIENT_CREATED")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "analytics applied the PATIENT_CREATED event"
    );
    // Per route template and status, never the raw path.
    let by_route = find(
        &samples,
        "http_requests_total",
        &[
            ("service", "patient"),
            ("route", "/patients/:id"),
            ("status", "200"),
        ],
    );
    assert!(
        by_route.iter().map(|s| value(s)).sum::<f64>() >= 1.0,
        "{:?}",
        find(&samples, "http_requests_total", &[("service", "patient")])
    );
    assert!(
        samples
            .iter()
            .filter_map(|s| s.labels.get("route"))
            .all(|r| !r.contains(id)),
        "no raw path as a route label"
    );
    let latency = find(
        &samples,
        "http_request_duration_seconds",
        &[("service", "patient"), ("route", "/patients/:id")],
    );
    assert!(latency.iter().map(|s| value(s)).sum::<f64>() >= 1.0);
    assert!(
        gauge(&samples, "process_cpu_seconds_total", &[]).is_some(),
        "CPU time"
    );
    app.stop().await;
}
