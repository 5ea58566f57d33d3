//! `pms-bench soak`: a mixed load on one all-in-one server for minutes (creates, GETs by id, lists
//! of 1,000, live-event-stream clients connecting and leaving), printing the server's RSS and
//! high-water mark over time, so that growth (a leak, fragmentation) shows. Figures only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;

use crate::load;
use crate::target::{Admin, Server};

/// One sample of the server's memory and the work done so far.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub secs: u64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub creates: u64,
    pub gets: u64,
    pub lists: u64,
    pub streams: u64,
    pub errors: u64,
}

/// The whole soak: samples, and the RSS growth from the end of the first minute to the end.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    pub target: String,
    pub idle_rss_kb: u64,
    pub samples: Vec<Sample>,
    pub growth_after_first_minute_kb: i64,
}

#[derive(Default)]
struct Counters {
    creates: AtomicU64,
    gets: AtomicU64,
    lists: AtomicU64,
    streams: AtomicU64,
    errors: AtomicU64,
}

/// Runs the soak against `server` for `duration`, sampling every `every`.
pub async fn run(
    target: &str,
    server: &Server,
    admin: &Admin,
    duration: Duration,
    every: Duration,
) -> anyhow::Result<Soak> {
    let idle_rss_kb = server.memory_kb()?.0;
    let token = load::login(&server.gateway, &admin.email, &admin.password).await?;
    eprintln!("soak: seeding 1,000 patients");
    let mut ids = Vec::new();
    for chunk in 0..125 {
        let creates = (0..8).map(|_| load::create_patient(&server.gateway, &token));
        for id in futures::future::join_all(creates).await {
            ids.push(id.with_context(|| format!("seeding, batch {chunk}"))?);
        }
    }
    let ids = Arc::new(ids);
    let token = Arc::new(std::sync::RwLock::new(token));
    let counters = Arc::new(Counters::default());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    let kinds = [
        Kind::Create,
        Kind::Create,
        Kind::Get,
        Kind::Get,
        Kind::Get,
        Kind::List,
        Kind::Stream,
        Kind::Stream,
    ];
    for (n, kind) in kinds.into_iter().enumerate() {
        let worker = Worker {
            n,
            base: server.gateway.clone(),
            client: client.clone(),
            token: Arc::clone(&token),
            ids: Arc::clone(&ids),
            counters: Arc::clone(&counters),
        };
        workers.spawn(async move { worker.run(kind, deadline).await });
    }
    let mut samples = Vec::new();
    let mut next_login = started + Duration::from_secs(300);
    while Instant::now() < deadline {
        tokio::time::sleep(every.min(deadline.saturating_duration_since(Instant::now()))).await;
        if Instant::now() >= next_login {
            // Access tokens live 15 minutes: a long soak logs in again.
            let fresh = load::login(&server.gateway, &admin.email, &admin.password).await?;
            *token.write().unwrap_or_else(|p| p.into_inner()) = fresh;
            next_login += Duration::from_secs(300);
        }
        let (rss_kb, hwm_kb) = server.memory_kb()?;
        let c = &counters;
        let sample = Sample {
            secs: started.elapsed().as_secs(),
            rss_kb,
            hwm_kb,
            creates: c.creates.load(Ordering::Relaxed),
            gets: c.gets.load(Ordering::Relaxed),
            lists: c.lists.load(Ordering::Relaxed),
            streams: c.streams.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        };
        eprintln!(
            "soak {:>4} s  RSS {:>6.1} MB  high-water {:>6.1} MB  creates {:>6}  gets {:>7}  lists {:>5}  streams {:>4}  errors {}",
            sample.secs,
            sample.rss_kb as f64 / 1024.0,
            sample.hwm_kb as f64 / 1024.0,
            sample.creates,
            sample.gets,
            sample.lists,
            sample.streams,
            sample.errors
        );
        samples.push(sample);
    }
    while let Some(done) = workers.join_next().await {
        done.context("a soak worker panicked")?;
    }
    let after_warmup = samples
        .iter()
        .find(|s| s.secs >= 60)
        .or(samples.first())
        .map_or(0, |s| s.rss_kb);
    let last = samples.last().map_or(0, |s| s.rss_kb);
    Ok(Soak {
        target: target.to_owned(),
        idle_rss_kb,
        samples,
        growth_after_first_minute_kb: last as i64 - after_warmup as i64,
    })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Create,
    Get,
    List,
    Stream,
}

struct Worker {
    n: usize,
    base: String,
    client: reqwest::Client,
    token: Arc<std::sync::RwLock<String>>,
    ids: Arc<Vec<String>>,
    counters: Arc<Counters>,
}

impl Worker {
    fn token(&self) -> String {
        self.token.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn run(self, kind: Kind, deadline: Instant) {
        let mut i = self.n as u64;
        while Instant::now() < deadline {
            i += 1;
            let (ok, counter) = match kind {
                Kind::Create => (
                    load::create_patient(&self.base, &self.token())
                        .await
                        .is_ok(),
                    &self.counters.creates,
                ),
                Kind::Get => {
                    let id = &self.ids[(i as usize * 7919) % self.ids.len()];
                    (
                        self.get(&format!("/api/patients/{id}")).await,
                        &self.counters.gets,
                    )
                }
                Kind::List => (
                    self.get("/api/patients?limit=1000").await,
                    &self.counters.lists,
                ),
                Kind::Stream => (self.stream(i).await, &self.counters.streams),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if !ok {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn get(&self, path: &str) -> bool {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token())
            .send()
            .await;
        match response {
            Ok(r) => {
                let ok = r.status().is_success();
                r.bytes().await.is_ok() && ok
            }
            Err(_) => false,
        }
    }

    /// Connects to the live event stream, reads it for 1–3 s, and leaves.
    async fn stream(&self, i: u64) -> bool {
        let response = self
            .client
            .get(format!("{}/api/analytics/events/stream", self.base))
            .bearer_auth(self.token())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let Ok(response) = response else {
            return false;
        };
        if !response.status().is_success() {
            return false;
        }
        let stay = Duration::from_millis(1000 + (i % 3) * 1000);
        let mut body = response.bytes_stream();
        let _ = tokio::time::timeout(stay, async { while body.next().await.is_some() {} }).await;
        true
    }
}
