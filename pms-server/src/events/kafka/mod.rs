//! The Kafka transport (rdkafka/librdkafka): an idempotent producer (`acks=all`), consumer groups
//! that commit an offset only after the handler's side effect, and a topic keeper ([`keeper`])
//! that creates missing topics and watches the brokers.
//!
//! **Client generations.** librdkafka 2.12.1 (the newest rdkafka-sys) crashes the whole process
//! (SIGSEGV in `rd_kafka_metadata_update_op`) when a consumer fetches a partition the broker no
//! longer knows — a broker restarted without its data, or a topic deleted and re-created (new
//! topic id) while the consumer still holds the old one. The process never lets an old client
//! meet such a broker: every client belongs to a *generation*; when the keeper finds the brokers
//! unreachable, topics missing or partitions shorter than before, it starts a new generation
//! (every consumer stops polling, pauses and is destroyed; the producer and admin client are
//! replaced) *before* it re-creates topics, and consumers come back only after a probe found
//! every topic. A consumer that sees the brokers go away tears itself down at once.
//!
//! **No event lost to a broker that lost its data.** After such an outage, the relays republish
//! what they published shortly before it (`kafka.replay_window_secs`); consumers deduplicate.
//!
//! Message value = the protobuf message alone (reference-compatible: a consumer that knows only
//! `patient_event.proto` decodes it); the event id, type and time also travel as headers.
//! One transport per process (per [`Background`]), shared by every service in it.

mod consumer;
mod keeper;
mod stall;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use secrecy::ExposeSecret;
use tokio::sync::{Notify, watch};

use super::{EventRecord, Handler, PublishError, Publisher};
use crate::config::KafkaSettings;
use crate::supervise::{self, Background};

/// One transport per process and background context (see the module doc).
static OPEN: LazyLock<Mutex<HashMap<String, Weak<Shared>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A connected Kafka transport (cheap to clone; every clone is the same process-wide state).
#[derive(Clone)]
pub struct KafkaTransport {
    shared: Arc<Shared>,
}

/// State shared by the producer, the consumers and the keeper of one process.
pub(crate) struct Shared {
    settings: KafkaSettings,
    /// The producer and the generation it belongs to (rebuilt lazily for a new generation, and
    /// after a failed publish: an idempotent producer keeps sequence state a broker that lost its
    /// data never accepts again).
    producer: RwLock<Option<(u64, FutureProducer)>>,
    /// Bumped when every client must be rebuilt.
    generation: watch::Sender<u64>,
    /// Bumped after every probe that found the brokers up with every topic present.
    healthy: watch::Sender<u64>,
    /// Low and high watermark of every partition at the last healthy probe (for the consumers'
    /// [`stall`] watchdogs).
    marks: watch::Sender<stall::Marks>,
    /// Set when relays must republish events published since this instant.
    replay_since: watch::Sender<Option<DateTime<Utc>>>,
    /// A client saw the brokers go away since the last healthy probe.
    outage_seen: AtomicBool,
    /// Asks the keeper to probe now.
    recheck: Notify,
}

impl Shared {
    fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Starts a new client generation: every consumer stops and is rebuilt, the producer too.
    fn new_generation(&self, why: &str) {
        let mut next = 0;
        self.generation.send_modify(|g| {
            *g += 1;
            next = *g;
        });
        tracing::info!(
            generation = next,
            reason = why,
            "rebuilding every Kafka client"
        );
        let old = match self.producer.write() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop_off_runtime(old);
    }

    /// A client noticed the brokers went away: probe now, and republish after recovery.
    fn report_outage(&self) {
        self.outage_seen.store(true, Ordering::SeqCst);
        self.recheck.notify_one();
    }

    /// The producer of the current generation, created if needed.
    fn producer(&self) -> anyhow::Result<FutureProducer> {
        let generation = self.generation();
        let read = |slot: &Option<(u64, FutureProducer)>| {
            slot.as_ref()
                .filter(|(g, _)| *g == generation)
                .map(|(_, p)| p.clone())
        };
        // A poisoned lock only means a writer panicked mid-swap; the value inside is whole.
        let current = match self.producer.read() {
            Ok(slot) => read(&slot),
            Err(poisoned) => read(&poisoned.into_inner()),
        };
        if let Some(p) = current {
            return Ok(p);
        }
        let fresh = new_producer(&self.settings)?;
        let old = {
            let mut slot = match self.producer.write() {
                Ok(slot) => slot,
                Err(poisoned) => poisoned.into_inner(),
            };
            slot.replace((generation, fresh.clone()))
        };
        drop_off_runtime(old);
        Ok(fresh)
    }

    /// Forgets the producer after a failed publish (the next publish builds a fresh one).
    fn discard_producer(&self) {
        let old = match self.producer.write() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop_off_runtime(old);
    }
}

/// Destroying a librdkafka client blocks (it joins its threads and may wait for the brokers).
fn drop_off_runtime<T: Send + 'static>(value: Option<T>) {
    if let Some(value) = value {
        tokio::task::spawn_blocking(move || drop(value));
    }
}

impl KafkaTransport {
    /// The process's transport for `settings` (created on first use; its keeper runs supervised
    /// in `background` until shutdown).
    pub async fn connect(
        settings: &KafkaSettings,
        background: &Background,
    ) -> anyhow::Result<KafkaTransport> {
        let key = format!(
            "{}|{}|{:p}",
            settings.brokers,
            settings.client_id,
            background.identity()
        );
        let mut open = match OPEN.lock() {
            Ok(open) => open,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(shared) = open.get(&key).and_then(Weak::upgrade) {
            return Ok(KafkaTransport { shared });
        }
        // Fail fast on settings librdkafka refuses (unknown protocol, missing TLS support).
        let producer = new_producer(settings)?;
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            producer: RwLock::new(Some((0, producer))),
            generation: watch::Sender::new(0),
            healthy: watch::Sender::new(0),
            marks: watch::Sender::new(HashMap::new()),
            replay_since: watch::Sender::new(None),
            outage_seen: AtomicBool::new(false),
            recheck: Notify::new(),
        });
        let keeper = shared.clone();
        let shutdown = background.shutdown().clone();
        supervise::spawn(background, "kafka topic keeper", move || {
            keeper::run(keeper.clone(), shutdown.clone())
        });
        open.retain(|_, weak| weak.strong_count() > 0);
        open.insert(key, Arc::downgrade(&shared));
        Ok(KafkaTransport { shared })
    }

    /// Broker reachability (metadata request), for readiness.
    pub async fn ping(&self) -> Result<(), String> {
        let producer = self
            .shared
            .producer()
            .map_err(|e| format!("kafka: {e:#}"))?;
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Timeout::After(Duration::from_secs(2)))
                .map(|_| ())
        })
        .await
        .map_err(|e| format!("kafka: {e}"))?
        .map_err(|e| format!("kafka: {e}"))
    }

    /// Runs a consumer of group `group` over `topics`, supervised in `background`; commits each
    /// message after `handler`.
    pub fn spawn_consumer(
        &self,
        group: &str,
        topics: &[&str],
        handler: Arc<dyn Handler>,
        background: &Background,
    ) -> tokio::task::JoinHandle<()> {
        let shared = self.shared.clone();
        let shutdown = background.shutdown().clone();
        let group = group.to_owned();
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        supervise::spawn(background, format!("kafka consumer {group}"), move || {
            consumer::run(
                shared.clone(),
                group.clone(),
                topics.clone(),
                handler.clone(),
                shutdown.clone(),
            )
        })
    }

    /// Changes to "republish what was published since …" (see the module doc).
    pub fn replays(&self) -> watch::Receiver<Option<DateTime<Utc>>> {
        self.shared.replay_since.subscribe()
    }
}

fn new_producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    base_config(settings)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.message_timeout.as_millis().to_string(),
        )
        .set("topic.metadata.refresh.interval.ms", "2000")
        // 1 for Tansu 0.6.0 (the suite's broker): its fetch from an offset inside a record batch
        // answers with the later batches only (fixed upstream in 87db6ea).
        .set(
            "batch.num.messages",
            settings.batch_max_messages.to_string(),
        )
        .create()
        .context("cannot create the Kafka producer")
}

/// Settings every client shares: brokers, client id, security. Topics are only ever created by
/// the keeper (after the old clients are gone), never implicitly by a metadata request.
pub(crate) fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", &settings.client_id)
        .set("allow.auto.create.topics", "false")
        .set(
            "security.protocol",
            settings.security_protocol.to_ascii_lowercase(),
        );
    if !settings.sasl_mechanism.is_empty() {
        config
            .set("sasl.mechanism", &settings.sasl_mechanism)
            .set("sasl.username", &settings.sasl_username);
    }
    if let Some(password) = &settings.sasl_password {
        config.set("sasl.password", password.expose_secret());
    }
    for (key, value) in [
        ("ssl.ca.location", &settings.ssl_ca_location),
        (
            "ssl.certificate.location",
            &settings.ssl_certificate_location,
        ),
        ("ssl.key.location", &settings.ssl_key_location),
    ] {
        if !value.is_empty() {
            config.set(key, value);
        }
    }
    if let Some(password) = &settings.ssl_key_password {
        config.set("ssl.key.password", password.expose_secret());
    }
    config
}

/// The Kafka message of `e`: value = the protobuf message, key = the partition key, and the
/// event id, type and time as headers.
fn headers_of(e: &EventRecord) -> OwnedHeaders {
    let id = e.id.to_string();
    let occurred = e.occurred_at.to_rfc3339();
    OwnedHeaders::new()
        .insert(Header {
            key: "event-id",
            value: Some(id.as_bytes()),
        })
        .insert(Header {
            key: "event-type",
            value: Some(e.event_type.as_bytes()),
        })
        .insert(Header {
            key: "occurred-at",
            value: Some(occurred.as_bytes()),
        })
}

fn failed(e: &EventRecord, reason: String) -> PublishError {
    PublishError {
        id: e.id,
        topic: e.topic.clone(),
        reason,
    }
}

impl KafkaTransport {
    /// Unknown topic, broker gone: the keeper looks now (and rebuilds every client if the broker
    /// lost its topics); the next publish builds a fresh producer.
    fn publish_failed(&self) {
        self.shared.recheck.notify_one();
        self.shared.discard_producer();
    }
}

#[async_trait::async_trait]
impl Publisher for KafkaTransport {
    async fn publish(&self, e: &EventRecord) -> Result<(), PublishError> {
        let (_, failure) = self.publish_batch(std::slice::from_ref(e)).await;
        failure.map_or(Ok(()), Err)
    }

    /// Hands every event to the producer first, then waits for the acknowledgements in order:
    /// one round trip per batch instead of one per event. The idempotent producer keeps the order
    /// within each partition across its retries.
    async fn publish_batch(&self, events: &[EventRecord]) -> (usize, Option<PublishError>) {
        let Some(first) = events.first() else {
            return (0, None);
        };
        let producer = match self.shared.producer() {
            Ok(p) => p,
            Err(e) => return (0, Some(failed(first, format!("{e:#}")))),
        };
        let mut pending = Vec::with_capacity(events.len());
        let mut failure = None;
        for e in events {
            let record = FutureRecord::to(&e.topic)
                .key(&e.key)
                .payload(&e.payload)
                .headers(headers_of(e));
            match producer.send_result(record) {
                Ok(delivery) => pending.push(delivery),
                // Queue full or a bad record: what was enqueued goes out, the rest next round.
                Err((err, _)) => {
                    failure = Some(failed(e, err.to_string()));
                    break;
                }
            }
        }
        drop(producer);
        let mut sent = 0;
        let mut acked = true;
        for (delivery, e) in pending.into_iter().zip(events) {
            let outcome = match delivery.await {
                Ok(Ok(_)) => None,
                Ok(Err((err, _))) => Some(err.to_string()),
                Err(_) => Some("the producer was closed before delivery".to_owned()),
            };
            match outcome {
                None if acked => sent += 1,
                None => {}
                Some(reason) => {
                    if acked {
                        // The first failure in order is the one reported; later events stay
                        // pending even if they were delivered (consumers deduplicate).
                        failure = Some(failed(e, reason));
                    }
                    acked = false;
                }
            }
        }
        if failure.is_some() {
            self.publish_failed();
        }
        (sent, failure)
    }

    async fn flush(&self) {
        let Ok(producer) = self.shared.producer() else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || {
            producer.flush(Timeout::After(Duration::from_secs(5)))
        })
        .await;
    }

    fn replays(&self) -> Option<watch::Receiver<Option<DateTime<Utc>>>> {
        Some(KafkaTransport::replays(self))
    }
}
