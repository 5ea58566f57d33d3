//! The Kafka transport (rdkafka/librdkafka): an idempotent producer (`acks=all`), consumer groups
//! that commit an offset only after the handler's side effect, and topic creation at start where
//! missing (retried in the background while the brokers are down: services start regardless, the
//! outbox holds events until the brokers come back).
//!
//! Message value = the protobuf message alone (reference-compatible: a consumer that knows only
//! `patient_event.proto` decodes it); the event id, type and time also travel as headers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{EventRecord, Handler, PublishError, Publisher, TOPICS, handle_with_retry};
use crate::config::KafkaSettings;

/// How often the topics are checked (and re-created if a broker lost them) without a failure.
const TOPIC_RECHECK: Duration = Duration::from_secs(10);

/// A connected Kafka transport.
pub struct KafkaTransport {
    settings: KafkaSettings,
    /// Replaced by a fresh one after a failed publish: an idempotent producer keeps its producer
    /// id, sequence numbers and metadata from the broker it knew, which a restarted broker that
    /// lost its state never accepts again.
    producer: std::sync::RwLock<FutureProducer>,
    /// Asks the topic keeper to check the topics again (a broker that lost its state, e.g. an
    /// in-memory broker restarted, answers "unknown topic" until they are re-created).
    recheck_topics: Arc<tokio::sync::Notify>,
}

impl KafkaTransport {
    fn current_producer(&self) -> FutureProducer {
        // A poisoned lock only means a writer panicked mid-swap; the producer inside is whole.
        match self.producer.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Creates the producer and starts ensuring the topics exist (in the background).
    pub async fn connect(settings: &KafkaSettings) -> anyhow::Result<KafkaTransport> {
        let producer = new_producer(settings)?;
        let admin: AdminClient<DefaultClientContext> = base_config(settings)
            .create()
            .context("cannot create the Kafka admin client")?;
        let partitions = settings.partitions;
        let recheck_topics = Arc::new(tokio::sync::Notify::new());
        let recheck = recheck_topics.clone();
        tokio::spawn(async move {
            loop {
                let mut backoff = Duration::from_millis(200);
                while let Err(e) = ensure_topics(&admin, partitions).await {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot create Kafka topics yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                // Again after a failed publish, and every so often: a broker can lose its topics.
                tokio::select! {
                    _ = recheck.notified() => {}
                    _ = tokio::time::sleep(TOPIC_RECHECK) => {}
                }
            }
        });
        Ok(KafkaTransport {
            settings: settings.clone(),
            producer: std::sync::RwLock::new(producer),
            recheck_topics,
        })
    }

    /// Broker reachability (metadata request), for readiness.
    pub async fn ping(&self) -> Result<(), String> {
        let producer = self.current_producer();
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

    /// Runs a consumer of group `group` over `topics`; commits each message after `handler`.
    pub fn spawn_consumer(
        &self,
        group: &str,
        topics: &[&str],
        handler: Arc<dyn Handler>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let consumer: StreamConsumer = base_config(&self.settings)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.settings.session_timeout_ms.to_string(),
            )
            .create()
            .with_context(|| format!("cannot create Kafka consumer {group}"))?;
        consumer
            .subscribe(topics)
            .with_context(|| format!("cannot subscribe {group} to {topics:?}"))?;
        let group = group.to_owned();
        Ok(tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    message = consumer.recv() => message,
                };
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(group, error = %e, "Kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                let event = record_of(&message);
                if !handle_with_retry(handler.as_ref(), &event, &shutdown).await {
                    break;
                }
                // Commit after the side effect: a crash before the commit lands redelivers, and
                // the handler's dedup makes that harmless. Async: a sync commit would block a
                // runtime thread for as long as the broker is unreachable.
                if let Err(e) = consumer.commit_message(&message, CommitMode::Async) {
                    tracing::warn!(group, error = %e, "offset commit failed; the event may be redelivered");
                }
            }
            // Dropping the consumer leaves the group cleanly.
            drop(consumer);
        }))
    }
}

fn new_producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    base_config(settings)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.message_timeout_ms.to_string(),
        )
        .set("topic.metadata.refresh.interval.ms", "2000")
        .create()
        .context("cannot create the Kafka producer")
}

fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", &settings.client_id);
    config
}

async fn ensure_topics(
    admin: &AdminClient<DefaultClientContext>,
    partitions: i32,
) -> anyhow::Result<()> {
    let topics: Vec<NewTopic<'_>> = TOPICS
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
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

/// Rebuilds the event from a Kafka message. Messages produced by others (no `event-id` header)
/// get a stable id derived from their position, so dedup still works on redelivery.
fn record_of<M: Message>(message: &M) -> EventRecord {
    let header = |name: &str| -> Option<String> {
        message.headers().and_then(|h| {
            h.iter()
                .find(|x| x.key == name)
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    let id = header("event-id")
        .and_then(|v| Uuid::parse_str(&v).ok())
        .unwrap_or_else(|| {
            let position = format!(
                "{}/{}/{}",
                message.topic(),
                message.partition(),
                message.offset()
            );
            Uuid::new_v5(&Uuid::NAMESPACE_OID, position.as_bytes())
        });
    EventRecord {
        id,
        topic: message.topic().to_owned(),
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        event_type: header("event-type").unwrap_or_default(),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        occurred_at: header("occurred-at")
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now),
    }
}

#[async_trait::async_trait]
impl Publisher for KafkaTransport {
    async fn publish(&self, e: &EventRecord) -> Result<(), PublishError> {
        let id = e.id.to_string();
        let occurred = e.occurred_at.to_rfc3339();
        let headers = OwnedHeaders::new()
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
            });
        let record = FutureRecord::to(&e.topic)
            .key(&e.key)
            .payload(&e.payload)
            .headers(headers);
        let producer = self.current_producer();
        let result = producer
            .send(
                record,
                Timeout::After(Duration::from_millis(self.settings.message_timeout_ms)),
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err((err, _)) => {
                self.recheck_topics.notify_one();
                match new_producer(&self.settings) {
                    Ok(fresh) => {
                        if let Ok(mut current) = self.producer.write() {
                            *current = fresh;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot recreate the Kafka producer"),
                }
                Err(PublishError {
                    id: e.id,
                    topic: e.topic.clone(),
                    reason: err.to_string(),
                })
            }
        }
    }

    async fn flush(&self) {
        let producer = self.current_producer();
        let _ = tokio::task::spawn_blocking(move || {
            producer.flush(Timeout::After(Duration::from_secs(5)))
        })
        .await;
    }
}
