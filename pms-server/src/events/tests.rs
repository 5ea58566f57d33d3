//! Transport tests: the embedded log on SQLite and PostgreSQL, the relay, and the Kafka transport
//! against rdkafka's in-process mock cluster (with a broker outage).

use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::*;
use crate::store::{self, Db};

/// The id standing for a short name (keys must be UUIDs to pass validation).
fn id_of(name: &str) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// A well-formed event on `topic` keyed by the id standing for `key`; `n` travels as the
/// version (patient) or amount (billing).
fn event(topic: &str, key: &str, n: u8) -> EventRecord {
    use prost::Message;
    let key = id_of(key);
    let (event_type, payload) = if topic == TOPIC_BILLING {
        let t = validate::BILLING_TYPES[usize::from(n) % validate::BILLING_TYPES.len()];
        let message = pms_proto::billing_events::BillingEvent {
            event_type: t.into(),
            account_id: key.clone(),
            amount: i64::from(n),
            ..Default::default()
        };
        (t, message.encode_to_vec())
    } else {
        let t = validate::PATIENT_TYPES[usize::from(n) % validate::PATIENT_TYPES.len()];
        let message = pms_proto::patient_events::PatientEvent {
            event_type: t.into(),
            patient_id: key.clone(),
            version: i64::from(n),
            ..Default::default()
        };
        (t, message.encode_to_vec())
    };
    EventRecord {
        id: Uuid::new_v4(),
        topic: topic.into(),
        key,
        event_type: event_type.into(),
        payload,
        occurred_at: Utc::now(),
    }
}

fn background() -> crate::supervise::Background {
    crate::supervise::Background::new(CancellationToken::new())
}

/// Records what it handled; fails the first `fail_first` calls.
#[derive(Default)]
struct Recorder {
    seen: StdMutex<Vec<EventRecord>>,
    fail_first: StdMutex<u32>,
    /// The size of every batch it was handed.
    batches: StdMutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl Handler for Recorder {
    async fn handle(&self, event: &EventRecord) -> anyhow::Result<()> {
        {
            let mut fail = self.fail_first.lock().expect("lock");
            if *fail > 0 {
                *fail -= 1;
                anyhow::bail!("injected failure");
            }
        }
        self.seen.lock().expect("lock").push(event.clone());
        Ok(())
    }

    async fn handle_batch(&self, events: &[&EventRecord]) -> anyhow::Result<()> {
        self.batches.lock().expect("lock").push(events.len());
        for event in events {
            self.handle(event).await?;
        }
        Ok(())
    }
}

impl Recorder {
    fn ids(&self) -> Vec<Uuid> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .map(|e| e.id)
            .collect()
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn settings(postgres: bool, dir: &std::path::Path) -> Settings {
    let mut s = Settings {
        data_dir: dir.to_owned(),
        ..Settings::default()
    };
    if postgres {
        s.database.url = Some(SecretString::from(
            store::testing::fresh_postgres_url().await,
        ));
    }
    s
}

async fn embedded_log_appends_once_and_groups_resume(postgres: bool) {
    let dir = tempfile::tempdir().expect("dir");
    let log = embedded::EmbeddedLog::open(&settings(postgres, dir.path()).await, &background())
        .await
        .expect("open");
    let (a, b) = (
        event(TOPIC_PATIENT, "p1", 1),
        event(TOPIC_BILLING, "acc", 2),
    );
    log.publish(&a).await.expect("publish");
    log.publish(&a).await.expect("republish is idempotent");
    log.publish(&b).await.expect("publish");
    let stored: Vec<Uuid> = log
        .read_after(0, 10)
        .await
        .expect("read")
        .into_iter()
        .map(|(_, e)| e.id)
        .collect();
    assert_eq!(stored, [a.id, b.id], "each event once, in order");

    // A consumer of the patient topic only; the first handling fails once and is retried.
    let recorder = Arc::new(Recorder {
        fail_first: StdMutex::new(1),
        ..Default::default()
    });
    let bg = background();
    let stop = bg.shutdown().clone();
    let task = log
        .clone()
        .spawn_consumer("g1", &[TOPIC_PATIENT], recorder.clone(), &bg);
    wait_until("first event", || recorder.ids() == [a.id]).await;
    let c = event(TOPIC_PATIENT, "p2", 3);
    log.publish(&c).await.expect("publish");
    wait_until("live event", || recorder.ids() == [a.id, c.id]).await;
    stop.cancel();
    task.await.expect("consumer stops");
    let c_seq = log
        .read_after(0, 10)
        .await
        .expect("read")
        .into_iter()
        .find(|(_, e)| e.id == c.id)
        .map(|(seq, _)| seq);
    assert_eq!(
        Some(log.committed("g1").await.expect("offset")),
        c_seq,
        "committed up to the last event, past the skipped billing one"
    );

    // Restart: nothing already handled is redelivered, new events are.
    let d = event(TOPIC_PATIENT, "p3", 4);
    log.publish(&d).await.expect("publish");
    let again = Arc::new(Recorder::default());
    let bg = background();
    let task = log
        .clone()
        .spawn_consumer("g1", &[TOPIC_PATIENT], again.clone(), &bg);
    wait_until("event after restart", || again.ids() == [d.id]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(again.ids(), [d.id], "no redelivery of committed events");

    // Poison (undecodable, unknown type) is skipped and committed past; the partition goes on.
    let garbage = EventRecord {
        payload: vec![0xff, 0xff, 0xff],
        ..event(TOPIC_PATIENT, "p4", 5)
    };
    let unknown = EventRecord {
        event_type: "PATIENT_EXPLODED".into(),
        ..event(TOPIC_PATIENT, "p4", 6)
    };
    let after = event(TOPIC_PATIENT, "p4", 7);
    for e in [&garbage, &unknown, &after] {
        log.publish(e).await.expect("publish");
    }
    wait_until("event after poison", || again.ids() == [d.id, after.id]).await;
    bg.shutdown().cancel();
    task.await.expect("stops");
    assert_eq!(bg.failure(), None, "poison never kills the consumer");

    // Retention: only what every registered group consumed goes, once old enough.
    let total = log.rows().await.expect("len");
    assert_eq!(total, 7);
    assert_eq!(
        log.prune(Duration::from_secs(3600)).await.expect("prune"),
        0,
        "too young"
    );
    let lagging = background();
    let slow = Arc::new(Recorder {
        fail_first: StdMutex::new(u32::MAX),
        ..Default::default()
    });
    let stuck = log
        .clone()
        .spawn_consumer("g2", &[TOPIC_BILLING], slow, &lagging);
    // g2 commits past the patient event at seq 1, then is stuck on the billing event at seq 2.
    let mut rounds = 0;
    while log.committed("g2").await.expect("offset") < 1 {
        rounds += 1;
        assert!(rounds < 400, "g2 never committed seq 1");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    lagging.shutdown().cancel();
    stuck.await.expect("stops");
    assert_eq!(
        log.prune(Duration::ZERO).await.expect("prune"),
        1,
        "{total}"
    );
    assert_eq!(log.rows().await.expect("len"), total - 1);
}

#[tokio::test]
async fn embedded_log_on_sqlite() {
    embedded_log_appends_once_and_groups_resume(false).await;
}

#[tokio::test]
async fn embedded_log_on_postgres() {
    embedded_log_appends_once_and_groups_resume(true).await;
}

const OUTBOX_SQLITE: &str = "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE, \
    topic TEXT NOT NULL, key TEXT NOT NULL, event_type TEXT NOT NULL, payload BLOB NOT NULL, occurred_at TEXT NOT NULL, published_at TEXT)";

/// A publisher that can be switched off, recording what it published.
#[derive(Default)]
struct Flaky {
    down: std::sync::atomic::AtomicBool,
    published: StdMutex<Vec<Uuid>>,
}

#[async_trait::async_trait]
impl Publisher for Flaky {
    async fn publish(&self, e: &EventRecord) -> Result<(), PublishError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PublishError {
                id: e.id,
                topic: e.topic.clone(),
                reason: "down".into(),
            });
        }
        self.published.lock().expect("lock").push(e.id);
        Ok(())
    }
}

#[tokio::test]
async fn relay_publishes_committed_events_in_order_and_survives_outages() {
    use outbox::Enqueue;
    let dir = tempfile::tempdir().expect("dir");
    let pool = store::connect_sqlite(&dir.path().join("svc.db"), 2)
        .await
        .expect("db");
    sqlx::query(OUTBOX_SQLITE)
        .execute(&pool)
        .await
        .expect("ddl");
    let db = Db::Sqlite(pool.clone());
    let publisher = Arc::new(Flaky::default());
    publisher
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let bg = background();
    let stop = bg.shutdown().clone();
    let (waker, task) = relay::spawn(
        "test",
        db.clone(),
        publisher.clone(),
        Duration::from_secs(3600),
        &bg,
    );

    let events: Vec<EventRecord> = (0..5)
        .map(|n| event(TOPIC_PATIENT, "same-key", n))
        .collect();
    for e in &events {
        let mut tx = pool.begin().await.expect("tx");
        tx.enqueue(e).await.expect("enqueue");
        tx.commit().await.expect("commit");
        waker.wake();
    }
    // A rolled-back transaction's event never exists.
    let mut tx = pool.begin().await.expect("tx");
    tx.enqueue(&event(TOPIC_PATIENT, "k", 9))
        .await
        .expect("enqueue");
    tx.rollback().await.expect("rollback");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        outbox::backlog(&db).await.expect("backlog"),
        5,
        "nothing lost while the transport is down"
    );
    publisher
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    waker.wake();
    let expected: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    wait_until("drain", || {
        publisher.published.lock().expect("lock").len() == 5
    })
    .await;
    assert_eq!(
        *publisher.published.lock().expect("lock"),
        expected,
        "commit order kept"
    );
    wait_until("marked", || true).await;
    stop.cancel();
    task.await.expect("relay stops");
    assert_eq!(outbox::backlog(&db).await.expect("backlog"), 0);
    assert_eq!(
        outbox::rows(&db).await.expect("rows"),
        5,
        "kept for the retention"
    );

    // A replay (the broker lost data) republishes what was published since; retention deletes.
    let since = Utc::now() - chrono::Duration::minutes(1);
    assert_eq!(outbox::replay_since(&db, since).await.expect("replay"), 5);
    assert_eq!(outbox::backlog(&db).await.expect("backlog"), 5);
    relay::drain("test", &db, publisher.as_ref())
        .await
        .expect("drain");
    assert_eq!(
        publisher.published.lock().expect("lock").len(),
        10,
        "sent again"
    );
    assert_eq!(
        outbox::prune(&db, Duration::from_secs(3600))
            .await
            .expect("prune"),
        0
    );
    assert_eq!(outbox::prune(&db, Duration::ZERO).await.expect("prune"), 5);
    assert_eq!(outbox::rows(&db).await.expect("rows"), 0);
}

mod kafka_mock {
    use rdkafka::mocking::MockCluster;

    use super::*;
    use crate::config::KafkaSettings;

    fn kafka_settings(bootstrap: String) -> KafkaSettings {
        KafkaSettings {
            brokers: bootstrap,
            client_id: "pms-test".into(),
            partitions: 2,
            session_timeout: Duration::from_millis(6000),
            message_timeout: Duration::from_millis(3000),
            // Tansu 0.6.0 (see `kafka.batch_max_messages`).
            batch_max_messages: 1,
            ..KafkaSettings::default()
        }
    }

    #[tokio::test]
    async fn security_settings_reach_every_client() {
        use rdkafka::producer::FutureProducer;
        let settings = KafkaSettings {
            brokers: "127.0.0.1:9".into(),
            security_protocol: "SASL_SSL".into(),
            sasl_mechanism: "SCRAM-SHA-512".into(),
            sasl_username: "pms".into(),
            sasl_password: Some(SecretString::from("hunter2hunter2")),
            ..KafkaSettings::default()
        };
        let config = kafka::base_config(&settings);
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("pms"));
        assert_eq!(config.get("sasl.password"), Some("hunter2hunter2"));
        // librdkafka accepts it (built with TLS and SCRAM support).
        let _producer: FutureProducer = config.create().expect("a SASL_SSL client");
        assert!(
            !format!("{settings:?}").contains("hunter2"),
            "the password is redacted"
        );
    }

    #[tokio::test]
    async fn round_trip_through_a_broker_outage() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        for topic in TOPICS {
            cluster.create_topic(topic, 2, 1).expect("topic");
        }
        let bg = background();
        let kafka = Arc::new(
            kafka::KafkaTransport::connect(&kafka_settings(cluster.bootstrap_servers()), &bg)
                .await
                .expect("connect"),
        );
        let transport = Transport::Kafka(kafka.clone());
        let recorder = Arc::new(Recorder {
            fail_first: StdMutex::new(1),
            ..Default::default()
        });
        let group = format!("g-{}", Uuid::new_v4().simple());
        transport.spawn_consumer(&group, &[TOPIC_PATIENT], recorder.clone(), &bg);

        let first: Vec<EventRecord> = (0..5).map(|n| event(TOPIC_PATIENT, "p1", n)).collect();
        for e in &first {
            kafka.publish(e).await.expect("publish");
        }
        wait_until("first batch", || recorder.ids().len() == 5).await;
        let got = recorder.seen.lock().expect("lock").clone();
        assert_eq!(
            got.iter().map(|e| e.id).collect::<Vec<_>>(),
            first.iter().map(|e| e.id).collect::<Vec<_>>(),
            "same key: same order"
        );
        assert_eq!(
            (
                got[2].key.as_str(),
                got[2].event_type.as_str(),
                got[2].payload.as_slice()
            ),
            (
                id_of("p1").as_str(),
                first[2].event_type.as_str(),
                first[2].payload.as_slice()
            )
        );

        // Broker down: publishing fails within the message timeout (the relay would keep the
        // event in the outbox); back up: it goes through and is consumed exactly once.
        cluster.broker_down(1).expect("down");
        let during = event(TOPIC_PATIENT, "p1", 7);
        assert!(
            kafka.publish(&during).await.is_err(),
            "no silent success while the broker is down"
        );
        cluster.broker_up(1).expect("up");
        let mut published = false;
        for _ in 0..20 {
            if kafka.publish(&during).await.is_ok() {
                published = true;
                break;
            }
        }
        assert!(published, "publishing works again after the outage");
        wait_until("event after outage", || recorder.ids().contains(&during.id)).await;
        assert_eq!(
            recorder.ids().iter().filter(|id| **id == during.id).count(),
            1
        );
        assert_eq!(bg.failure(), None);
        bg.shutdown().cancel();
    }

    /// The sum of `group`'s committed offsets on the patient topic's two partitions (read by a
    /// client that does not join the group, created and dropped off the runtime).
    async fn committed_offsets(settings: &KafkaSettings, group: &str) -> i64 {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{Offset, TopicPartitionList};
        let config = kafka::base_config(settings).set("group.id", group).clone();
        tokio::task::spawn_blocking(move || {
            let probe: BaseConsumer = config.create().expect("probe");
            let mut partitions = TopicPartitionList::new();
            for partition in 0..2 {
                partitions.add_partition(TOPIC_PATIENT, partition);
            }
            probe
                .committed_offsets(partitions, Duration::from_secs(5))
                .map(|list| {
                    list.elements()
                        .iter()
                        .map(|e| match e.offset() {
                            Offset::Offset(n) => n,
                            _ => 0,
                        })
                        .sum()
                })
                .unwrap_or(-1)
        })
        .await
        .expect("probe task")
    }

    /// A backlog reaches the handler in batches, in order per key, and the batches' offsets are
    /// committed: a second member of the group started later gets only what came after.
    #[tokio::test]
    async fn a_backlog_is_handled_in_batches_and_committed() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        for topic in TOPICS {
            cluster.create_topic(topic, 2, 1).expect("topic");
        }
        let bg = background();
        let settings = kafka_settings(cluster.bootstrap_servers());
        let kafka = Arc::new(
            kafka::KafkaTransport::connect(&settings, &bg)
                .await
                .expect("connect"),
        );
        let transport = Transport::Kafka(kafka.clone());
        let backlog: Vec<EventRecord> = (0..60)
            .map(|n| event(TOPIC_PATIENT, ["a", "b", "c"][usize::from(n % 3)], n))
            .collect();
        for e in &backlog {
            kafka.publish(e).await.expect("publish");
        }
        let group = format!("g-{}", Uuid::new_v4().simple());
        let first = Arc::new(Recorder::default());
        let stop_first = CancellationToken::new();
        let first_bg = crate::supervise::Background::new(stop_first.clone());
        transport.spawn_consumer(&group, &[TOPIC_PATIENT], first.clone(), &first_bg);
        wait_until("the backlog", || first.ids().len() == backlog.len()).await;
        let seen = first.seen.lock().expect("lock").clone();
        for key in ["a", "b", "c"] {
            let order = |events: &[EventRecord]| -> Vec<Uuid> {
                events
                    .iter()
                    .filter(|e| e.key == id_of(key))
                    .map(|e| e.id)
                    .collect()
            };
            assert_eq!(order(&seen), order(&backlog), "key {key}: same order");
        }
        let batches = first.batches.lock().expect("lock").clone();
        println!("batch sizes: {batches:?}");
        assert_eq!(batches.iter().sum::<usize>(), backlog.len(), "{batches:?}");
        assert!(
            batches.iter().any(|&n| n > 1),
            "60 waiting events, one at a time: {batches:?}"
        );
        // The offsets of the batches were committed: a later member starts after them.
        let mut committed = 0;
        for _ in 0..100 {
            committed = committed_offsets(&settings, &group).await;
            if committed == backlog.len() as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(committed, backlog.len() as i64, "committed offsets");
        stop_first.cancel();
        let second = Arc::new(Recorder::default());
        transport.spawn_consumer(&group, &[TOPIC_PATIENT], second.clone(), &bg);
        let after = event(TOPIC_PATIENT, "a", 99);
        kafka.publish(&after).await.expect("publish");
        wait_until("the event after", || second.ids().contains(&after.id)).await;
        assert_eq!(second.ids(), [after.id], "nothing redelivered");
        assert_eq!(bg.failure(), None);
        bg.shutdown().cancel();
    }
}

/// Publishes, and on the first publish commits a transaction that was left open: the window in
/// which an event with a lower seq commits after the relay read a higher one.
struct CommitsDuringPublish {
    pending: tokio::sync::Mutex<Option<sqlx::Transaction<'static, sqlx::Postgres>>>,
    published: StdMutex<Vec<Uuid>>,
}

#[async_trait::async_trait]
impl Publisher for CommitsDuringPublish {
    async fn publish(&self, e: &EventRecord) -> Result<(), PublishError> {
        if let Some(tx) = self.pending.lock().await.take() {
            tx.commit().await.expect("commit the slow transaction");
        }
        self.published.lock().expect("lock").push(e.id);
        Ok(())
    }
}

#[tokio::test]
async fn relay_never_marks_an_event_committed_after_it_read_a_later_one() {
    use outbox::Enqueue;
    let url = store::testing::fresh_postgres_url().await;
    let pool = store::connect_postgres("public", &url, 4)
        .await
        .expect("pool");
    sqlx::raw_sql(include_str!(
        "../../migrations/postgres/patient/0002_outbox.sql"
    ))
    .execute(&pool)
    .await
    .expect("ddl");
    let db = Db::Postgres(pool.clone());
    let (early, late) = (event(TOPIC_PATIENT, "a", 1), event(TOPIC_PATIENT, "b", 2));
    // `early` takes the lower seq but commits only while the relay publishes `late`.
    let mut slow = pool.begin().await.expect("tx");
    slow.enqueue(&early).await.expect("enqueue early");
    let mut fast = pool.begin().await.expect("tx");
    fast.enqueue(&late).await.expect("enqueue late");
    fast.commit().await.expect("commit late");
    let publisher = CommitsDuringPublish {
        pending: tokio::sync::Mutex::new(Some(slow)),
        published: StdMutex::new(Vec::new()),
    };
    relay::drain("test", &db, &publisher).await.expect("drain");
    assert_eq!(*publisher.published.lock().expect("lock"), [late.id]);
    assert_eq!(
        outbox::backlog(&db).await.expect("backlog"),
        1,
        "the early event is still pending, not marked"
    );
    relay::drain("test", &db, &publisher).await.expect("drain");
    assert_eq!(
        *publisher.published.lock().expect("lock"),
        [late.id, early.id],
        "published, not lost"
    );
}
