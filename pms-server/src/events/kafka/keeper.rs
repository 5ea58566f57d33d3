//! The topic keeper: probes the brokers (metadata and partition end offsets) every second,
//! creates missing topics, and decides when every client must be rebuilt and when the relays
//! must republish (see the parent module doc for why).
//!
//! Order matters when the brokers lost their topics: first a new client generation (old
//! consumers stop fetching and are destroyed), then a pause so the other processes' keepers see
//! the topics missing too, then the topics are created; consumers return after the next probe.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use super::{Shared, base_config, drop_off_runtime};
use crate::config::KafkaSettings;
use crate::events::TOPICS;

/// Probe interval while everything is fine, and while it is not.
const HEALTHY_EVERY: Duration = Duration::from_secs(1);
const TROUBLED_EVERY: Duration = Duration::from_millis(300);
/// Between "topics missing" and creating them: other processes' keepers notice meanwhile and
/// retire their clients, so none of them meets the new topics with old state.
const CREATE_DELAY: Duration = Duration::from_millis(1500);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

type Admin = AdminClient<DefaultClientContext>;

/// What one probe saw.
enum Probe {
    Unreachable(String),
    Missing(Vec<&'static str>),
    /// Low and high watermark of every partition of every topic.
    Present(super::stall::Marks),
}

/// Runs until `shutdown`; an error (the admin client cannot be created) ends it and the
/// supervisor restarts it.
pub(super) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut admin: Option<(u64, Arc<Admin>)> = None;
    let mut ends: HashMap<(&'static str, i32), i64> = HashMap::new();
    // Something may have been lost since the last healthy probe (outage, topics gone).
    let mut troubled = false;
    // Clients were already retired for the current outage.
    let mut retired = false;
    let mut last_healthy = None;
    let window =
        chrono::Duration::from_std(shared.settings.replay_window).unwrap_or(chrono::Duration::MAX);
    loop {
        let generation = shared.generation();
        let client = match &admin {
            Some((g, client)) if *g == generation => client.clone(),
            _ => {
                let client: Admin = base_config(&shared.settings)
                    .create()
                    .context("cannot create the Kafka admin client")?;
                let client = Arc::new(client);
                drop_off_runtime(admin.replace((generation, client.clone())));
                client
            }
        };
        let probe = {
            let client = client.clone();
            tokio::task::spawn_blocking(move || probe(&client)).await?
        };
        if shared.outage_seen.swap(false, Ordering::SeqCst) {
            troubled = true;
            if !retired {
                // One consumer saw the brokers go: the others must not outlive the outage either.
                shared.new_generation("a client lost the brokers");
                retired = true;
            }
        }
        let healthy = match probe {
            Probe::Unreachable(e) => {
                if !retired {
                    tracing::warn!(error = %e, "Kafka brokers unreachable");
                    // Consumers must not survive to meet a broker that comes back empty.
                    shared.new_generation("brokers unreachable");
                    retired = true;
                }
                troubled = true;
                false
            }
            Probe::Missing(missing) => {
                tracing::warn!(?missing, "Kafka topics missing; recreating them");
                troubled = true;
                shared.new_generation("topics missing");
                retired = true;
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(CREATE_DELAY) => {}
                }
                let fresh: Admin = base_config(&shared.settings)
                    .create()
                    .context("cannot create the Kafka admin client")?;
                if let Err(e) = create_topics(&fresh, &shared.settings, &missing).await {
                    tracing::warn!(error = format!("{e:#}"), "cannot create Kafka topics yet");
                }
                drop_off_runtime(admin.replace((shared.generation(), Arc::new(fresh))));
                false
            }
            Probe::Present(marks) => {
                let now: HashMap<(&'static str, i32), i64> =
                    marks.iter().map(|(tp, (_, high))| (*tp, *high)).collect();
                let shrunk = now
                    .iter()
                    .any(|(tp, end)| ends.get(tp).is_some_and(|before| end < before));
                if shrunk {
                    tracing::warn!(
                        "Kafka partitions are shorter than before: the brokers lost data"
                    );
                    shared.new_generation("partitions shorter than before");
                    troubled = true;
                }
                ends = now;
                retired = false;
                if troubled {
                    let since = last_healthy.unwrap_or_else(Utc::now) - window;
                    tracing::info!(%since, "Kafka available again; republishing recent events");
                    shared.replay_since.send_replace(Some(since));
                    troubled = false;
                }
                last_healthy = Some(Utc::now());
                shared.marks.send_replace(marks);
                shared.healthy.send_modify(|n| *n += 1);
                true
            }
        };
        let every = if healthy {
            HEALTHY_EVERY
        } else {
            TROUBLED_EVERY
        };
        tokio::select! {
            _ = shutdown.cancelled() => {
                drop_off_runtime(admin.take());
                return Ok(());
            }
            _ = shared.recheck.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Metadata of the PMS topics and the watermarks of each partition (blocking).
fn probe(admin: &Admin) -> Probe {
    let client = admin.inner();
    let metadata = match client.fetch_metadata(None, Timeout::After(PROBE_TIMEOUT)) {
        Ok(m) => m,
        Err(e) => return Probe::Unreachable(e.to_string()),
    };
    let mut missing = Vec::new();
    let mut partitions = Vec::new();
    for topic in TOPICS {
        match metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        {
            Some(t) => partitions.extend(t.partitions().iter().map(|p| (topic, p.id()))),
            None => missing.push(topic),
        }
    }
    if !missing.is_empty() {
        return Probe::Missing(missing);
    }
    let mut ends = HashMap::new();
    for (topic, partition) in partitions {
        match client.fetch_watermarks(topic, partition, Timeout::After(PROBE_TIMEOUT)) {
            Ok(marks) => {
                ends.insert((topic, partition), marks);
            }
            Err(e) => return Probe::Unreachable(format!("{topic}/{partition}: {e}")),
        }
    }
    Probe::Present(ends)
}

async fn create_topics(
    admin: &Admin,
    settings: &KafkaSettings,
    topics: &[&str],
) -> anyhow::Result<()> {
    let min_insync = settings.min_insync_replicas.to_string();
    let topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                t,
                settings.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            )
            .set("min.insync.replicas", &min_insync)
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(topic) => tracing::info!(topic, "Kafka topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}
