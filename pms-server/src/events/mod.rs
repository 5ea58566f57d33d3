//! Events: the transactional outbox, its relay, and two transports behind one interface.
//!
//! - Producers never publish inside a request: they [`outbox::enqueue`] the event in the same
//!   database transaction as the change, and a [`relay`] publishes committed rows in order
//!   (at-least-once).
//! - Transports: **Kafka** (rdkafka: idempotent producer, acks=all, consumer groups committing after
//!   the side effect) when `kafka.brokers` is set — required in distributed mode; otherwise the
//!   **embedded log** ([`embedded`]): an append-only table in an events database, delivered
//!   in-process, durable and replayable, with committed consumer offsets.
//! - Consumers deduplicate on the event id ([`dedup`]), in the same transaction as their effect,
//!   so redelivery never repeats an effect.

pub mod dedup;
pub mod embedded;
pub mod kafka;
pub(crate) mod lease;
pub mod outbox;
pub mod relay;
pub mod validate;

/// How long the relay and the embedded log's consumers wait after being woken before they read:
/// under load the commits of that moment go out in one round instead of a round each (a round
/// is several statements and a transaction), like a Kafka producer's `linger.ms`. It adds at
/// most this much to an event's delivery, which is asynchronous anyway.
pub(crate) const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Settings;
use crate::supervise::Background;

/// The `patient` topic (reference system name): `PatientEvent`, keyed by patient id.
pub const TOPIC_PATIENT: &str = "patient";
/// The `billing` topic: `BillingEvent`, keyed by account id.
pub const TOPIC_BILLING: &str = "billing";
/// Every topic PMS produces.
pub const TOPICS: [&str; 2] = [TOPIC_PATIENT, TOPIC_BILLING];

/// One event as it travels: the protobuf payload plus routing metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Unique id; consumers deduplicate on it.
    pub id: Uuid,
    pub topic: String,
    /// Partition key (patient id, account id): order is kept per key.
    pub key: String,
    /// e.g. `PATIENT_CREATED`.
    pub event_type: String,
    /// Protobuf-encoded message (`PatientEvent`, `BillingEvent`).
    pub payload: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
}

/// Publishing failed; the relay retries later (the event stays in the outbox).
#[derive(Debug, thiserror::Error)]
#[error("cannot publish event {id} to `{topic}`: {reason}")]
pub struct PublishError {
    pub id: Uuid,
    pub topic: String,
    pub reason: String,
}

/// Where events go.
#[async_trait::async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes one event durably (returns once the transport has it).
    async fn publish(&self, event: &EventRecord) -> Result<(), PublishError>;
    /// Publishes `events` in order; returns how many leading events are durably published and
    /// the error that stopped the rest (events after a failure may have gone out too: they are
    /// published again later, and consumers deduplicate). Transports override it to pipeline.
    async fn publish_batch(&self, events: &[EventRecord]) -> (usize, Option<PublishError>) {
        for (done, event) in events.iter().enumerate() {
            if let Err(e) = self.publish(event).await {
                return (done, Some(e));
            }
        }
        (events.len(), None)
    }
    /// Flushes anything buffered (on shutdown).
    async fn flush(&self) {}
    /// For transports that can lose published events (a broker that lost its data): changes to
    /// "republish what was published since this instant".
    fn replays(&self) -> Option<watch::Receiver<Option<DateTime<Utc>>>> {
        None
    }
}

/// A consumer's side effect for one event. Returning an error makes the consumer retry the same
/// event later (with backoff) instead of committing past it.
#[async_trait::async_trait]
pub trait Handler: Send + Sync {
    async fn handle(&self, event: &EventRecord) -> anyhow::Result<()>;

    /// The side effects of several events, in order, where the handler can make them one
    /// transaction (all or nothing). An error makes the consumer fall back to [`Handler::handle`]
    /// per event, with its retries and poison handling. By default, one by one.
    async fn handle_batch(&self, events: &[&EventRecord]) -> anyhow::Result<()> {
        for event in events {
            self.handle(event).await?;
        }
        Ok(())
    }
}

/// The transport a process uses, chosen from the settings.
#[derive(Clone)]
pub enum Transport {
    Kafka(Arc<kafka::KafkaTransport>),
    Embedded(Arc<embedded::EmbeddedLog>),
}

impl Transport {
    /// Kafka when `kafka.brokers` is set, else the embedded log in the events database. Its
    /// background tasks run supervised in `background`.
    pub async fn from_settings(
        settings: &Settings,
        background: &Background,
    ) -> anyhow::Result<Transport> {
        if settings.kafka.brokers.trim().is_empty() {
            Ok(Transport::Embedded(
                embedded::EmbeddedLog::open(settings, background).await?,
            ))
        } else {
            Ok(Transport::Kafka(Arc::new(
                kafka::KafkaTransport::connect(&settings.kafka, background).await?,
            )))
        }
    }

    /// A publisher onto this transport.
    pub fn publisher(&self) -> Arc<dyn Publisher> {
        match self {
            Transport::Kafka(k) => k.clone(),
            Transport::Embedded(log) => log.clone(),
        }
    }

    /// Starts a consumer of `topics` in consumer group `group`, supervised in `background`,
    /// delivering to `handler` until the process shuts down. Offsets are committed only after the handler
    /// succeeded (or the event was skipped as poison, see [`validate`]).
    pub fn spawn_consumer(
        &self,
        group: &str,
        topics: &[&str],
        handler: Arc<dyn Handler>,
        background: &Background,
    ) -> tokio::task::JoinHandle<()> {
        crate::observe::watch_consumer(group, topics);
        if let Transport::Embedded(log) = self {
            log.clone().watch_lag(group, topics);
        }
        match self {
            Transport::Kafka(k) => k.spawn_consumer(group, topics, handler, background),
            Transport::Embedded(log) => log
                .clone()
                .spawn_consumer(group, topics, handler, background),
        }
    }

    /// Readiness: the transport can reach its storage or brokers.
    pub async fn ping(&self) -> Result<(), String> {
        match self {
            Transport::Kafka(k) => k.ping().await,
            Transport::Embedded(log) => log.ping().await,
        }
    }

    /// Short name for logs and health output.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Kafka(_) => "kafka",
            Transport::Embedded(_) => "embedded",
        }
    }
}

/// Delivers one consumed event: poison (see [`validate`]) is logged, counted and skipped (`true`:
/// commit past it); anything else goes to [`handle_with_retry`].
pub(crate) async fn deliver(
    group: &str,
    handler: &dyn Handler,
    event: &EventRecord,
    shutdown: &CancellationToken,
) -> bool {
    if let Err(reason) = validate::check(event) {
        tracing::warn!(group, event_id = %event.id, topic = %event.topic, reason, "poison event skipped");
        metrics::counter!("events_poison_total", "group" => group.to_owned(), "topic" => event.topic.clone())
            .increment(1);
        crate::observe::count_event(group, &event.event_type, Some("poison"));
        return true;
    }
    let handled = handle_with_retry(handler, event, shutdown).await;
    if handled {
        crate::observe::count_event(group, &event.event_type, None);
    }
    handled
}

/// Delivers consumed events at once through [`Handler::handle_batch`] when there are several and
/// none is poison. `false` when that was not tried or failed: the caller then delivers each event
/// alone ([`deliver`]), with retries and poison handling — nothing was committed by the batch.
pub(crate) async fn deliver_at_once(
    group: &str,
    handler: &dyn Handler,
    events: &[&EventRecord],
) -> bool {
    if events.len() < 2 || events.iter().any(|e| validate::check(e).is_err()) {
        return false;
    }
    match handler.handle_batch(events).await {
        Ok(()) => {
            for event in events {
                crate::observe::count_event(group, &event.event_type, None);
            }
            true
        }
        Err(e) => {
            tracing::warn!(
                group,
                events = events.len(),
                error = format!("{e:#}"),
                "event batch failed; handling its events one by one"
            );
            false
        }
    }
}

/// Retries `handler` on `event` with capped exponential backoff until it succeeds or `shutdown`
/// fires (then `false`: the event was not handled and must not be committed).
pub(crate) async fn handle_with_retry(
    handler: &dyn Handler,
    event: &EventRecord,
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        match handler.handle(event).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(event_id = %event.id, topic = %event.topic, event_type = %event.event_type, error = format!("{e:#}"), "event handler failed; retrying");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests;
