//! One consumer group member, rebuilt for every client generation: it starts only after a probe
//! found every topic, consumes (committing after the handler), and on a new generation or a sign
//! that the brokers went away stops polling, pauses its partitions and is destroyed off the
//! runtime — an old consumer never fetches from a broker that lost its topics. Beside it runs its
//! [`stall`] watchdog: when the coordinator left partitions with pending events to nobody, the
//! member is rebuilt too (it leaves and rejoins, and the group is assigned again).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Statistics};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Shared, base_config, drop_off_runtime, stall};
use crate::events::{EventRecord, Handler, deliver, deliver_at_once};

enum End {
    Shutdown,
    Rebuild(String),
}

pub(super) async fn run(
    shared: Arc<Shared>,
    group: String,
    topics: Vec<String>,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut healthy = shared.healthy.subscribe();
    let mut generations = shared.generation.subscribe();
    let mut seen = 0;
    loop {
        // Only after a probe newer than the last teardown found the brokers and every topic.
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            waited = healthy.wait_for(|n| *n > seen) => { waited?; }
        }
        let generation = *generations.borrow_and_update();
        let member: Member = base_config(&shared.settings)
            .set("group.id", &group)
            // librdkafka's statistics carry each assigned partition's lag ([`LagContext`]).
            .set("statistics.interval.ms", "5000")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                shared.settings.session_timeout.as_millis().to_string(),
            )
            .create_with_context(LagContext {
                group: group.clone(),
                revocations: AtomicU64::new(0),
            })
            .map(|consumer| Member(Some(Arc::new(consumer))))
            .with_context(|| format!("cannot create Kafka consumer {group}"))?;
        let consumer = member.client();
        let subscribed: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&subscribed)
            .with_context(|| format!("cannot subscribe {group} to {topics:?}"))?;
        tracing::debug!(group, generation, "Kafka consumer started");
        let rejoin = CancellationToken::new();
        // The watchdog holds the consumer weakly: the last reference must be dropped off the
        // runtime (`drop_off_runtime`), never by an aborted task on a runtime thread, where
        // librdkafka's close blocks forever waiting for the callbacks that thread would serve.
        let watchdog = tokio::spawn(watch_partitions(
            shared.clone(),
            Arc::downgrade(consumer),
            group.clone(),
            topics.clone(),
            rejoin.clone(),
            shutdown.clone(),
        ));
        let end = consume(
            &shared,
            consumer,
            &group,
            &mut generations,
            &rejoin,
            handler.as_ref(),
            &shutdown,
        )
        .await;
        watchdog.abort();
        seen = *healthy.borrow();
        // Stop fetching at once; destroying the client (leaving the group) may take a while.
        if let Ok(assigned) = consumer.assignment() {
            let _ = consumer.pause(&assigned);
        }
        member.retire();
        match end {
            End::Shutdown => return Ok(()),
            End::Rebuild(why) => {
                tracing::info!(group, reason = %why, "Kafka consumer retired; rebuilding")
            }
        }
    }
}

/// A consumer that reports `consumer_lag` from librdkafka's periodic statistics.
type LagConsumer = StreamConsumer<LagContext>;

/// The one strong reference to a member's client. Retired on the blocking pool; dropped
/// without that (the task aborted, its runtime shutting down), it destroys the client on a
/// thread of its own: librdkafka's close blocks, and on a runtime thread it waits forever for
/// callbacks that very thread would serve.
struct Member(Option<Arc<LagConsumer>>);

impl Member {
    fn client(&self) -> &Arc<LagConsumer> {
        self.0
            .as_ref()
            .expect("a member holds its client until it retires")
    }

    fn retire(mut self) {
        drop_off_runtime(self.0.take());
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let spawned = std::thread::Builder::new()
                .name("kafka-close".into())
                .spawn(move || drop(client));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a thread to close a Kafka consumer");
            }
        }
    }
}

/// Receives librdkafka's statistics (on its own thread) and publishes the lag of every partition
/// this consumer has a known lag for (`-1`, unknown, and the internal partition `-1` are left out).
struct LagContext {
    group: String,
    /// Rebalances that revoked partitions: a batch that saw one keeps (and commits) only what
    /// is still assigned to this member.
    revocations: AtomicU64,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    crate::observe::set_lag(&self.group, topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

/// Logs every assignment and revocation (partition lists only): what a member consumes is the
/// first question when events wait.
impl ConsumerContext for LagContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, partitions = %partitions(list), "Kafka partitions assigned")
            }
            Rebalance::Revoke(list) => {
                self.revocations.fetch_add(1, Ordering::SeqCst);
                tracing::info!(group = %self.group, partitions = %partitions(list), "Kafka partitions revoked")
            }
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "Kafka rebalance failed")
            }
        }
    }
}

/// `topic/partition` list for logs.
fn partitions(list: &rdkafka::TopicPartitionList) -> String {
    list.elements()
        .iter()
        .map(|p| format!("{}/{}", p.topic(), p.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The member's [`stall`] watchdog: probes the group's committed offsets every half session
/// (reading watermarks from the keeper's last probe) and fires `rejoin` once partitions with
/// pending events have had no consumer for too long. Aborted when the member retires; ends at
/// shutdown.
async fn watch_partitions(
    shared: Arc<Shared>,
    consumer: std::sync::Weak<LagConsumer>,
    group: String,
    topics: Vec<String>,
    rejoin: CancellationToken,
    shutdown: CancellationToken,
) {
    let session = shared.settings.session_timeout;
    let every = (session / 2).max(Duration::from_secs(1));
    let mut watchdog = stall::Watchdog::for_session(session);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let marks = shared.marks.borrow().clone();
        let (member, wanted) = (consumer.clone(), topics.clone());
        // Upgraded (and so possibly dropped last) on the blocking thread, off the runtime.
        let observed = match tokio::task::spawn_blocking(move || {
            member
                .upgrade()
                .map(|member| stall::probe(&*member, &marks, &wanted))
        })
        .await
        {
            // The member retired meanwhile.
            Ok(None) => return,
            Ok(Some(Ok(observed))) => observed,
            Ok(Some(Err(e))) => {
                tracing::debug!(group, error = %e, "cannot read the group's committed offsets");
                continue;
            }
            Err(_) => continue,
        };
        let stalled = watchdog.observe(Instant::now(), &observed);
        if !stalled.is_empty() {
            tracing::warn!(
                group,
                partitions = %stalled.join(","),
                waited_secs = watchdog.after().as_secs(),
                "Kafka partitions have pending events and no consumer; rejoining the group so the coordinator assigns them again"
            );
            rejoin.cancel();
            return;
        }
    }
}

/// Most messages handed to the handler at once.
const MAX_BATCH: usize = 500;

async fn consume(
    shared: &Shared,
    consumer: &LagConsumer,
    group: &str,
    generations: &mut tokio::sync::watch::Receiver<u64>,
    rejoin: &CancellationToken,
    handler: &dyn Handler,
    shutdown: &CancellationToken,
) -> End {
    loop {
        let revocations = consumer.context().revocations.load(Ordering::SeqCst);
        let received = tokio::select! {
            _ = shutdown.cancelled() => return End::Shutdown,
            _ = generations.changed() => return End::Rebuild("new client generation".to_owned()),
            _ = rejoin.cancelled() => return End::Rebuild("partitions without a consumer".to_owned()),
            received = consumer.recv() => received,
        };
        let first = match received {
            Ok(m) => m,
            Err(e) => match on_error(shared, group, e, shutdown).await {
                Some(end) => return end,
                None => continue,
            },
        };
        // Like the embedded consumers: what arrives within `LINGER` of the first message is
        // handled with it (`Handler::handle_batch`, one transaction), and committed with one
        // request. An error met meanwhile is dealt with after the batch.
        let mut messages = vec![first];
        let mut error = None;
        let linger = tokio::time::Instant::now() + crate::events::LINGER;
        while messages.len() < MAX_BATCH {
            match tokio::time::timeout_at(linger, consumer.recv()).await {
                Ok(Ok(m)) => messages.push(m),
                Ok(Err(e)) => {
                    error = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        // A rebalance (run inside `recv`) may have given some of these partitions to another
        // member, which starts from the last commit: leave their messages to it.
        if let Some(assigned) = reassigned(consumer, revocations) {
            messages.retain(|m| assigned.contains(&(m.topic().to_owned(), m.partition())));
        }
        let events: Vec<EventRecord> = messages.iter().map(record_of).collect();
        let batch: Vec<&EventRecord> = events.iter().collect();
        if deliver_at_once(group, handler, &batch).await {
            commit(consumer, group, &messages, revocations);
        } else {
            for (message, event) in messages.iter().zip(&events) {
                if !deliver(group, handler, event, shutdown).await {
                    return End::Shutdown;
                }
                commit(consumer, group, std::slice::from_ref(message), revocations);
            }
        }
        if let Some(e) = error
            && let Some(end) = on_error(shared, group, e, shutdown).await
        {
            return end;
        }
    }
}

/// The partitions assigned to this member now, when partitions were revoked since the count
/// `revocations` was read; `None` when none were.
fn reassigned(consumer: &LagConsumer, revocations: u64) -> Option<HashSet<(String, i32)>> {
    if consumer.context().revocations.load(Ordering::SeqCst) == revocations {
        return None;
    }
    // Unknown (an error) counts as nothing assigned: the messages are redelivered, not lost.
    let assigned = consumer.assignment().unwrap_or_default();
    Some(
        assigned
            .elements()
            .iter()
            .map(|p| (p.topic().to_owned(), p.partition()))
            .collect(),
    )
}

/// Commits past `messages` (after their side effects: a crash before the commit lands
/// redelivers, and the handlers' dedup makes that harmless): one offset per partition, the
/// highest. Async: a sync commit would block a runtime thread for as long as the broker is
/// unreachable.
fn commit<M: Message>(consumer: &LagConsumer, group: &str, messages: &[M], revocations: u64) {
    let assigned = reassigned(consumer, revocations);
    let mut next = BTreeMap::new();
    for message in messages {
        // Never commit for a partition another member owns now: it would move its offset back.
        if assigned
            .as_ref()
            .is_some_and(|a| !a.contains(&(message.topic().to_owned(), message.partition())))
        {
            continue;
        }
        let offset = next
            .entry((message.topic(), message.partition()))
            .or_insert(message.offset() + 1);
        *offset = (*offset).max(message.offset() + 1);
    }
    if next.is_empty() {
        return;
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(e) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(group, error = %e, "cannot list an offset to commit");
        }
    }
    if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
        tracing::warn!(group, error = %e, "offset commit failed; events may be redelivered");
    }
}

/// What a consumption error means: `Some` ends this member (the brokers went away: rebuild;
/// shutdown); `None` goes on after a pause.
async fn on_error(
    shared: &Shared,
    group: &str,
    error: KafkaError,
    shutdown: &CancellationToken,
) -> Option<End> {
    match error {
        KafkaError::MessageConsumption(code) if brokers_lost(code) => {
            shared.report_outage();
            Some(End::Rebuild(code.to_string()))
        }
        e => {
            tracing::warn!(group, error = %e, "Kafka consumer error");
            tokio::select! {
                _ = shutdown.cancelled() => Some(End::Shutdown),
                _ = tokio::time::sleep(Duration::from_millis(500)) => None,
            }
        }
    }
}

/// Errors after which this consumer must not fetch again: the brokers went away (they may come
/// back without their data) or the topic is gone (it may come back with a new id).
fn brokers_lost(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownTopicId
    )
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
