//! Soak under broker faults: all-in-one on PostgreSQL + Kafka, and the five services as five
//! processes, each through 10 restarts of the broker *without its data* (in-memory Tansu) during
//! a steady stream of creates. Every process must keep running (same pid, never exited) and every
//! created patient must end with exactly one PATIENT_CREATED in analytics and exactly one billing
//! account — no crash, nothing lost, nothing doubled.
//!
//! Why it exists: before the Kafka client keeper (main at e71210c, librdkafka 2.12.1) this test
//! killed `pms-server all`, and in the five-process run the billing process, with SIGSEGV in the
//! first broker restart (3 of 3 runs); with the keeper every process lives through all 10.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pms_e2e::{Broker, ServerProcess, free_port, fresh_postgres_url};
use serde_json::Value;

use crate::distributed::{Cluster, START_ORDER, all_patients, converge, create};
use crate::scenario::Api;

const RESTARTS: usize = 10;
/// Broker down, then up, per round: creates go on throughout.
const DOWN: Duration = Duration::from_millis(1200);
const UP: Duration = Duration::from_millis(2500);

/// Creates patients one after the other until stopped; remembers every 201 and every failure.
struct Load {
    stop: Arc<AtomicBool>,
    created: Arc<Mutex<Vec<String>>>,
    failures: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(api: &Api, token: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let created = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let (api, token) = (Api::new(api.base.clone()), token.to_owned());
        let task = {
            let (stop, created, failures) = (stop.clone(), created.clone(), failures.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    match create(&api, &token, &format!("soak-{n}")).await {
                        Ok(r) if r.status() == 201 => {
                            let body: Value = r.json().await.expect("json");
                            let id = body["id"].as_str().expect("id").to_owned();
                            created.lock().expect("lock").push(id);
                        }
                        Ok(r) => failures
                            .lock()
                            .expect("lock")
                            .push(format!("create {n}: {}", r.status())),
                        Err(e) => failures
                            .lock()
                            .expect("lock")
                            .push(format!("create {n}: {e}")),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        Load {
            stop,
            created,
            failures,
            task,
        }
    }

    /// Stops the stream; returns the ids created (panics if any create failed).
    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("load task");
        let failures = self.failures.lock().expect("lock").clone();
        assert!(
            failures.is_empty(),
            "creates must succeed while the broker is away (the outbox keeps the events): {failures:?}"
        );
        self.created.lock().expect("lock").clone()
    }
}

/// Restarts the broker empty `RESTARTS` times; after each round every process must still run
/// with the pid it started with.
async fn restart_broker_repeatedly(broker: &mut Broker, mut alive: impl FnMut(usize), what: &str) {
    for round in 0..RESTARTS {
        broker.down();
        tokio::time::sleep(DOWN).await;
        alive(round);
        broker.up().await;
        tokio::time::sleep(UP).await;
        alive(round);
        println!(
            "{what}: broker restart {} of {RESTARTS} survived",
            round + 1
        );
    }
}

fn check_alive(name: &str, process: &mut ServerProcess, pid: u32, round: usize) {
    if let Some(status) = process.exited() {
        let log = process.stderr();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "{name} (pid {pid}) exited with {status} during broker restart {}:\n{}",
            round + 1,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    // Read from outside the handle: the kernel still runs that pid, and it is still pms-server
    // (not a restarted or re-executed process).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap_or_else(|e| panic!("{name}: pid {pid} is gone ({e})"));
    assert!(
        exe.file_name().is_some_and(|n| n == "pms-server"),
        "{name}: pid {pid} now runs {}",
        exe.display()
    );
}

/// Every created patient (and every listed one) converged exactly once.
async fn converged(api: &Api, token: &str, created: &[String], what: &str) {
    let mut everyone = all_patients(api, token).await;
    for id in created {
        assert!(
            everyone.contains(id),
            "{what}: created patient {id} is not listed"
        );
    }
    everyone.sort();
    converge(api, token, &everyone, what).await;
}

#[tokio::test]
async fn all_in_one_survives_ten_empty_broker_restarts_during_creates() {
    let mut broker = Broker::start().await;
    let db = fresh_postgres_url().await;
    let port = free_port();
    let data = tempfile::tempdir().expect("temp dir");
    let (email, password) = (
        format!("soak-{}@pms.test", uuid::Uuid::new_v4().simple()),
        format!("pw-{}", uuid::Uuid::new_v4().simple()),
    );
    let mut server = ServerProcess::spawn(
        "pms-server all",
        &["all", "--data-dir", &data.path().to_string_lossy()],
        &[
            ("PMS_GATEWAY__PORT", port.to_string()),
            ("PMS_DATABASE__URL", db),
            ("PMS_KAFKA__BROKERS", broker.bootstrap()),
            ("PMS_KAFKA__SESSION_TIMEOUT_MS", "6000".to_owned()),
            ("PMS_KAFKA__MESSAGE_TIMEOUT_MS", "5000".to_owned()),
            // Tansu 0.6.0 (see `kafka.batch_max_messages`).
            ("PMS_KAFKA__BATCH_MAX_MESSAGES", "1".to_owned()),
            ("PMS_ADMIN_EMAIL", email.clone()),
            ("PMS_ADMIN_PASSWORD", password.clone()),
        ],
    );
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    server.wait_ready(&api.base, Duration::from_secs(60)).await;
    let pid = server.pid();
    let token = api.login(&email, &password).await["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let load = Load::start(&api, &token);
    restart_broker_repeatedly(
        &mut broker,
        |round| check_alive("pms-server all", &mut server, pid, round),
        "all-in-one",
    )
    .await;
    let created = load.finish().await;
    println!(
        "all-in-one: {} patients created during the restarts",
        created.len()
    );
    assert!(created.len() >= 50, "a steady stream: {}", created.len());
    converged(
        &api,
        &token,
        &created,
        "all-in-one after 10 broker restarts",
    )
    .await;
    check_alive("pms-server all", &mut server, pid, RESTARTS - 1);
    assert!(
        server.terminate(Duration::from_secs(30)).await.success(),
        "graceful exit:\n{}",
        server.stderr()
    );
}

#[tokio::test]
async fn five_processes_survive_ten_empty_broker_restarts_during_creates() {
    let mut broker = Broker::start().await;
    let db = fresh_postgres_url().await;
    let (mut cluster, admin_email, admin_password, gateway) =
        Cluster::from_compose(&db, &broker.bootstrap());
    for role in START_ORDER {
        cluster.start(role).await;
    }
    let pids: HashMap<String, u32> = cluster
        .processes
        .iter()
        .map(|(role, p)| (role.clone(), p.pid()))
        .collect();
    let api = Api::new(gateway);
    let token = api.login(&admin_email, &admin_password).await["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let load = Load::start(&api, &token);
    let mut alive = |round: usize| {
        for (role, process) in &mut cluster.processes {
            check_alive(role, process, pids[role], round);
        }
    };
    restart_broker_repeatedly(&mut broker, &mut alive, "distributed").await;
    let created = load.finish().await;
    println!(
        "distributed: {} patients created during the restarts",
        created.len()
    );
    assert!(created.len() >= 50, "a steady stream: {}", created.len());
    converged(
        &api,
        &token,
        &created,
        "distributed after 10 broker restarts",
    )
    .await;
    alive(RESTARTS - 1);
    for role in ["gateway", "analytics", "patient", "billing", "auth"] {
        cluster.stop(role).await;
    }
}
