//! The load generator: N connections, each a loop of one request at a time for a fixed duration,
//! latencies recorded in HDR histograms (microseconds) and merged at the end. Closed-loop on
//! purpose, like wrk: it measures what the server sustains, not a fixed offered rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use reqwest::{Client, Method, StatusCode};
use serde::Serialize;

/// One kind of request the generator sends.
#[derive(Debug, Clone)]
pub enum Op {
    /// `POST /api/patients` with a unique email per request (through the gateway).
    Create,
    /// `GET {path}`: a patient by id, a list, a health check.
    Get(String),
    /// `POST /auth/login` with valid credentials: Argon2id on every request.
    Login { email: String, password: String },
}

/// What to run: `op` against `base` on `connections` connections for `duration`.
#[derive(Debug, Clone)]
pub struct Spec {
    pub label: String,
    pub base: String,
    pub op: Op,
    pub connections: usize,
    pub duration: Duration,
    pub token: Option<String>,
}

/// The outcome of one [`Spec`]. Latencies in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub label: String,
    pub connections: usize,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Runs `spec` and returns its figures. Every non-2xx answer and every transport error or
/// timeout counts as an error (and its latency is still recorded).
pub async fn run(spec: &Spec) -> anyhow::Result<Outcome> {
    let client = Client::builder()
        .pool_max_idle_per_host(spec.connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let spec = Arc::new(spec.clone());
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let deadline = started + spec.duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..spec.connections {
        let (client, spec, run_id) = (client.clone(), spec.clone(), run_id.clone());
        workers.spawn(async move { work(client, &spec, &run_id, worker, deadline).await });
    }
    let mut histogram = new_histogram();
    let mut errors = 0;
    while let Some(joined) = workers.join_next().await {
        let (h, e) = joined.context("a load worker panicked")??;
        histogram.add(&h).context("merging histograms")?;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |v: u64| v as f64 / 1000.0;
    Ok(Outcome {
        label: spec.label.clone(),
        connections: spec.connections,
        requests: histogram.len(),
        errors,
        rps: histogram.len() as f64 / elapsed,
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
    })
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant figures: fixed bounds, so `record` cannot fail below 60 s.
    #[allow(clippy::unwrap_used)] // constant, valid bounds
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

async fn work(
    client: Client,
    spec: &Spec,
    run_id: &str,
    worker: usize,
    deadline: Instant,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut histogram = new_histogram();
    let mut errors = 0;
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let request = build(&client, spec, run_id, worker, n);
        let t = Instant::now();
        let ok = match request.send().await {
            Ok(response) => {
                let status = response.status();
                // Read the whole body: the server's work includes producing it.
                response.bytes().await.is_ok() && status.is_success()
            }
            Err(_) => false,
        };
        histogram.saturating_record(t.elapsed().as_micros().max(1) as u64);
        if !ok {
            errors += 1;
        }
    }
    Ok((histogram, errors))
}

fn build(
    client: &Client,
    spec: &Spec,
    run_id: &str,
    worker: usize,
    n: u64,
) -> reqwest::RequestBuilder {
    let request = match &spec.op {
        Op::Create => client
            .request(Method::POST, format!("{}/api/patients", spec.base))
            .json(&serde_json::json!({
                "name": format!("Bench Patient {worker} {n}"),
                "email": format!("bench-{run_id}-{worker}-{n}@bench.test"),
                "address": "1 Main St",
                "dateOfBirth": "1990-04-01",
                "registeredDate": "2024-11-28",
            })),
        Op::Get(path) => client.get(format!("{}{path}", spec.base)),
        Op::Login { email, password } => client
            .post(format!("{}/auth/login", spec.base))
            .json(&serde_json::json!({ "email": email, "password": password })),
    };
    match &spec.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// Logs in and returns the access token.
pub async fn login(base: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let response = Client::new()
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .context("logging in")?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("reading the login answer")?;
    anyhow::ensure!(status == StatusCode::OK, "login answered {status}: {body}");
    body["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in the login answer")
}

/// Creates one patient and returns its id.
pub async fn create_patient(base: &str, token: &str) -> anyhow::Result<String> {
    let email = format!("seed-{}@bench.test", uuid::Uuid::new_v4().simple());
    let response = Client::new()
        .post(format!("{base}/api/patients"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "name": "Bench Seed", "email": email, "address": "1 Main St",
            "dateOfBirth": "1990-04-01", "registeredDate": "2024-11-28",
        }))
        .send()
        .await
        .context("creating a patient")?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    anyhow::ensure!(
        status == StatusCode::CREATED,
        "create answered {status}: {body}"
    );
    body["id"]
        .as_str()
        .map(str::to_owned)
        .context("no id in the create answer")
}
