//! Two replicas each of patient, billing and analytics, one auth and two gateways (gateway A →
//! the A replicas, gateway B → the B replicas; patient A calls billing A over gRPC), on one fresh
//! PostgreSQL database and a real Kafka-protocol broker, with docker/compose.yml's commands and
//! environment. Both replicas of each service start at the same moment on the fresh database
//! (concurrent migrations). Creates and payments run through both gateways at once; one replica
//! of each service is killed with SIGKILL mid-load and started again. Afterwards: every patient
//! has exactly one PATIENT_CREATED in analytics and exactly one billing account, every
//! acknowledged payment exists exactly once (ledger and analytics), and an SSE client on each
//! analytics replica saw every stored event. Every process then stops cleanly on SIGTERM.
//! Bounded: 30–45 s here (debug build); the convergence waits below bound a failing run to about
//! 5 min.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pms_e2e::{Broker, ServerProcess, free_port, fresh_postgres_url};
use serde_json::{Value, json};

use crate::compose::pms_services;
use crate::distributed::{all_patients, converge, create};
use crate::scenario::Api;

const READY: Duration = Duration::from_secs(90);
/// Instances: (name, role). A name's suffix picks the replicas its URLs point at.
const INSTANCES: [(&str, &str); 9] = [
    ("auth", "auth"),
    ("billing-a", "billing"),
    ("billing-b", "billing"),
    ("patient-a", "patient"),
    ("patient-b", "patient"),
    ("analytics-a", "analytics"),
    ("analytics-b", "analytics"),
    ("gateway-a", "gateway"),
    ("gateway-b", "gateway"),
];
const KILLED: [&str; 3] = ["patient-a", "billing-a", "analytics-a"];

struct Replicas {
    env: HashMap<&'static str, Vec<(String, String)>>,
    base: HashMap<&'static str, String>,
    processes: HashMap<&'static str, ServerProcess>,
    data: tempfile::TempDir,
}

impl Replicas {
    /// Each instance gets its role's compose environment with its own ports, and URLs rewritten
    /// to its side's replicas (auth is shared).
    fn new(db: &str, broker: &str) -> (Replicas, String, String) {
        let services = pms_services();
        let role_env = |role: &str| {
            services
                .iter()
                .find(|s| s.role == role)
                .unwrap_or_else(|| panic!("compose has no {role}"))
                .env
                .clone()
        };
        // (instance, compose port) → loopback port.
        let mut ports: HashMap<(&str, String), u16> = HashMap::new();
        for (name, role) in INSTANCES {
            for (key, value) in role_env(role) {
                if key.ends_with("__PORT") || key.ends_with("__GRPC_PORT") {
                    ports.insert((name, value), free_port());
                }
            }
        }
        let mut replicas = Replicas {
            env: HashMap::new(),
            base: HashMap::new(),
            processes: HashMap::new(),
            data: tempfile::tempdir().expect("dir"),
        };
        let (mut email, mut password) = (String::new(), String::new());
        for (name, role) in INSTANCES {
            let side = name.rsplit_once('-').map(|(_, s)| s);
            let mut env = Vec::new();
            for (key, value) in role_env(role) {
                let value = if key == "PMS_DATABASE__URL" {
                    db.to_owned()
                } else if key == "PMS_KAFKA__BROKERS" {
                    broker.to_owned()
                } else if key.ends_with("__BIND") {
                    "127.0.0.1".to_owned()
                } else if key.ends_with("__PORT") || key.ends_with("__GRPC_PORT") {
                    ports[&(name, value)].to_string()
                } else if let Some(rest) = value.strip_prefix("http://") {
                    let (host, port) = rest.split_once(':').expect("host:port");
                    let target = INSTANCES
                        .iter()
                        .map(|(n, _)| *n)
                        .find(|n| side.is_some_and(|s| *n == format!("{host}-{s}")))
                        .unwrap_or(host);
                    let target = INSTANCES
                        .iter()
                        .map(|(n, _)| *n)
                        .find(|n| *n == target)
                        .expect("known instance");
                    format!("http://127.0.0.1:{}", ports[&(target, port.to_owned())])
                } else {
                    value
                };
                match key.as_str() {
                    "PMS_ADMIN_EMAIL" => email = value.clone(),
                    "PMS_ADMIN_PASSWORD" => password = value.clone(),
                    _ => {}
                }
                env.push((key, value));
            }
            // Short consumer sessions: a killed member's partitions move on within seconds.
            env.push(("PMS_KAFKA__SESSION_TIMEOUT_MS".into(), "6000".into()));
            env.push(("PMS_KAFKA__MESSAGE_TIMEOUT_MS".into(), "5000".into()));
            // The suite's broker is Tansu 0.6.0 (see `kafka.batch_max_messages`).
            env.push(("PMS_KAFKA__BATCH_MAX_MESSAGES".into(), "1".into()));
            let port = env
                .iter()
                .find(|(k, _)| k.ends_with("__PORT") && !k.contains("GRPC"))
                .map(|(_, v)| v.clone())
                .expect("port");
            replicas
                .base
                .insert(name, format!("http://127.0.0.1:{port}"));
            replicas.env.insert(name, env);
        }
        (replicas, email, password)
    }

    fn spawn(&mut self, name: &'static str) {
        let role = INSTANCES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .expect("instance");
        let env: Vec<(&str, String)> = self.env[name]
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let data = self.data.path().join(name);
        let process =
            ServerProcess::spawn(name, &[role, "--data-dir", &data.to_string_lossy()], &env);
        self.processes.insert(name, process);
    }

    /// Spawns every instance in `names` at once, then waits until each is ready.
    async fn start(&mut self, names: &[&'static str]) {
        for name in names {
            self.spawn(name);
        }
        for name in names {
            let base = self.base[name].clone();
            let process = self.processes.get_mut(name).expect("spawned");
            process.wait_ready(&base, READY).await;
        }
    }

    fn gateway(&self, side: &str) -> Api {
        Api::new(self.base[format!("gateway-{side}").as_str()].clone())
    }
}

/// What the load saw acknowledged.
#[derive(Default)]
struct Acknowledged {
    patients: Mutex<Vec<String>>,
    /// payment id → (invoice id, amount).
    payments: Mutex<BTreeMap<String, (String, i64)>>,
    failures: AtomicUsize,
}

async fn post(api: &Api, token: &str, path: &str, key: Option<&str>, body: Value) -> Option<Value> {
    let mut request = api
        .client
        .post(api.url(path))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

async fn get(api: &Api, token: &str, path: &str) -> Option<Value> {
    let response = api
        .client
        .get(api.url(path))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    response.json().await.ok()
}

/// Retries `step` (a replica may be down; a restart takes long on a loaded machine) for up to
/// 60 s.
async fn retried<F, Fut>(mut step: F) -> Option<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(v) = step().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Creates patients through `api` until `stop`.
async fn create_load(
    api: Api,
    token: String,
    tag: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Acknowledged>,
) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        match create(&api, &token, &format!("{tag}-{n}")).await {
            Ok(r) if r.status() == 201 => {
                let body: Value = r.json().await.expect("json");
                let id = body["id"].as_str().expect("id").to_owned();
                acked.patients.lock().expect("lock").push(id);
            }
            _ => {
                acked.failures.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Pays invoices of recently created patients through `api` until `stop`: invoice 1000, issue,
/// pay 300 with an Idempotency-Key, each step retried through outages (the same key for the
/// payment, so a retry never pays twice).
async fn payment_load(api: Api, token: String, stop: Arc<AtomicBool>, acked: Arc<Acknowledged>) {
    while !stop.load(Ordering::SeqCst) {
        let patient = acked.patients.lock().expect("lock").last().cloned();
        let Some(patient) = patient else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // A patient created while its side's billing replica was down gets its account from the
        // PATIENT_CREATED event, which may take a consumer-group recovery (see
        // events/kafka/stall.rs): that every patient gets one is asserted after the load.
        let Some(account) = retried(|| async {
            let accounts = get(
                &api,
                &token,
                &format!("/api/billing/accounts?patientId={patient}"),
            )
            .await?;
            accounts.as_array()?.first().cloned()
        })
        .await
        else {
            continue;
        };
        let (account_id, currency) = (
            account["id"].as_str().expect("id").to_owned(),
            // An account without invoices has no currency yet.
            account["currency"].as_str().unwrap_or("USD").to_owned(),
        );
        let invoices = format!("/api/billing/accounts/{account_id}/invoices");
        let draft = json!({ "currency": currency, "lines": [{ "description": "Visit", "quantity": 1, "unitPrice": 1000 }] });
        let Some(invoice) = retried(|| post(&api, &token, &invoices, None, draft.clone())).await
        else {
            continue;
        };
        let invoice_id = invoice["id"].as_str().expect("id").to_owned();
        let issue = format!("/api/billing/invoices/{invoice_id}/issue");
        if retried(|| post(&api, &token, &issue, None, json!(null)))
            .await
            .is_none()
        {
            continue;
        }
        let key = format!("pay-{}", uuid::Uuid::new_v4().simple());
        let pay = format!("/api/billing/invoices/{invoice_id}/payments");
        let body = json!({ "amount": 300, "method": "CARD" });
        let payment = retried(|| post(&api, &token, &pay, Some(&key), body.clone()))
            .await
            .expect("a payment retried with its key is acknowledged once the replica is back");
        acked.payments.lock().expect("lock").insert(
            payment["id"].as_str().expect("id").to_owned(),
            (invoice_id, payment["amount"].as_i64().expect("amount")),
        );
    }
}

/// An SSE client of one analytics replica (through its gateway) that reconnects with
/// `Last-Event-ID`, collecting the event ids it received.
struct Watcher {
    seen: Arc<Mutex<HashSet<String>>>,
    reconnects: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    fn start(api: &Api, token: &str) -> Watcher {
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let reconnects = Arc::new(AtomicUsize::new(0));
        let (url, token) = (
            api.url("/api/analytics/events/stream?after=0"),
            token.to_owned(),
        );
        let task = {
            let (seen, reconnects) = (seen.clone(), reconnects.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut last = 0_i64;
                loop {
                    let mut request = client.get(&url).bearer_auth(&token);
                    if last > 0 {
                        request = request.header("Last-Event-ID", last.to_string());
                    }
                    if let Ok(mut response) = request.send().await
                        && response.status() == 200
                    {
                        let mut buffer = String::new();
                        while let Ok(Some(chunk)) = response.chunk().await {
                            buffer.push_str(&String::from_utf8_lossy(&chunk));
                            while let Some(end) = buffer.find("\n\n") {
                                let block: String = buffer.drain(..end + 2).collect();
                                for line in block.lines() {
                                    if let Some(id) = line.strip_prefix("id:") {
                                        last = id.trim().parse().unwrap_or(last);
                                    } else if let Some(data) = line.strip_prefix("data:")
                                        && let Ok(event) =
                                            serde_json::from_str::<Value>(data.trim())
                                        && let Some(id) = event["eventId"].as_str()
                                    {
                                        seen.lock().expect("lock").insert(id.to_owned());
                                    }
                                }
                            }
                        }
                    }
                    reconnects.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        Watcher {
            seen,
            reconnects,
            task,
        }
    }
}

/// Every stored analytics event: id → (type, data).
async fn stored_events(api: &Api, token: &str) -> BTreeMap<String, (String, Value)> {
    let mut events = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = get(
            api,
            token,
            &format!("/api/analytics/events?after={after}&limit=1000"),
        )
        .await
        .expect("stored events");
        let page = page.as_array().expect("array").clone();
        for e in &page {
            events.insert(
                e["eventId"].as_str().expect("eventId").to_owned(),
                (
                    e["type"].as_str().unwrap_or_default().to_owned(),
                    e["data"].clone(),
                ),
            );
            after = e["seq"].as_i64().expect("seq");
        }
        if page.len() < 1000 {
            return events;
        }
    }
}

#[tokio::test]
async fn two_replicas_of_each_service_lose_and_double_nothing_through_sigkill() {
    let started = Instant::now();
    let broker = Broker::start().await;
    let db = fresh_postgres_url().await;
    let (mut replicas, email, password) = Replicas::new(&db, &broker.bootstrap());
    replicas.start(&["auth"]).await;
    // Both replicas of every service at once, on the fresh database: concurrent migrations.
    replicas
        .start(&[
            "billing-a",
            "billing-b",
            "patient-a",
            "patient-b",
            "analytics-a",
            "analytics-b",
        ])
        .await;
    replicas.start(&["gateway-a", "gateway-b"]).await;
    println!("replicas: 9 processes ready after {:?}", started.elapsed());
    let (a, b) = (replicas.gateway("a"), replicas.gateway("b"));
    let token = a.login(&email, &password).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let watchers = [Watcher::start(&a, &token), Watcher::start(&b, &token)];

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Acknowledged::default());
    let mut load = Vec::new();
    for (side, api) in [("a", &a), ("b", &b)] {
        for n in 0..2 {
            load.push(tokio::spawn(create_load(
                Api::new(api.base.clone()),
                token.clone(),
                format!("replica-{side}{n}"),
                stop.clone(),
                acked.clone(),
            )));
        }
        load.push(tokio::spawn(payment_load(
            Api::new(api.base.clone()),
            token.clone(),
            stop.clone(),
            acked.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    for name in KILLED {
        replicas.processes.get_mut(name).expect("running").kill();
    }
    println!("replicas: SIGKILL {KILLED:?} after {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(3)).await;
    replicas.start(&KILLED).await;
    println!("replicas: {KILLED:?} back after {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.expect("load task");
    }
    let patients = acked.patients.lock().expect("lock").clone();
    let payments = acked.payments.lock().expect("lock").clone();
    println!(
        "replicas: {} creates and {} payments acknowledged, {} creates refused during the kill",
        patients.len(),
        payments.len(),
        acked.failures.load(Ordering::SeqCst)
    );
    assert!(patients.len() >= 40, "a steady load: {}", patients.len());
    assert!(
        payments.len() >= 5,
        "payments under load: {}",
        payments.len()
    );

    // Every patient (acknowledged or committed just before a kill): one event, one account.
    let everyone = all_patients(&b, &token).await;
    for id in &patients {
        assert!(everyone.contains(id), "acknowledged patient {id} is listed");
    }
    converge(&b, &token, &everyone, "two replicas after SIGKILL").await;

    // Every acknowledged payment exactly once in the ledger and once in analytics.
    let mut by_invoice: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (payment, (invoice, _)) in &payments {
        by_invoice.entry(invoice).or_default().push(payment);
    }
    for (invoice, acknowledged) in &by_invoice {
        let listed = get(
            &a,
            &token,
            &format!("/api/billing/invoices/{invoice}/payments"),
        )
        .await
        .expect("payments");
        let mut ids: Vec<&str> = listed
            .as_array()
            .expect("array")
            .iter()
            .map(|p| p["id"].as_str().expect("id"))
            .collect();
        ids.sort_unstable();
        let mut expected = acknowledged.clone();
        expected.sort_unstable();
        assert_eq!(
            ids, expected,
            "invoice {invoice}: each acknowledged payment once"
        );
        let detail = get(&a, &token, &format!("/api/billing/invoices/{invoice}"))
            .await
            .expect("invoice");
        assert_eq!(
            detail["paid"].as_i64(),
            Some(300 * expected.len() as i64),
            "{detail}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let stored = stored_events(&b, &token).await;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (kind, data) in stored.values() {
            if kind == "PAYMENT_RECEIVED"
                && let Some(id) = data["paymentId"].as_str()
            {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        assert!(
            counts.values().all(|n| *n == 1),
            "a payment counted twice: {counts:?}"
        );
        if payments.keys().all(|p| counts.contains_key(p)) {
            break stored;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = payments
                .iter()
                .filter(|(p, _)| !counts.contains_key(*p))
                .collect();
            let kinds: BTreeMap<&str, usize> =
                stored.values().fold(BTreeMap::new(), |mut m, (k, _)| {
                    *m.entry(k.as_str()).or_default() += 1;
                    m
                });
            panic!(
                "{} of {} acknowledged payments missing from analytics after 60 s (stored: {kinds:?}): {:?}",
                missing.len(),
                payments.len(),
                &missing[..missing.len().min(3)]
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // Both analytics replicas' SSE clients saw every stored event.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (watcher, side) in watchers.iter().zip(["a (killed and restarted)", "b"]) {
        loop {
            let missing = {
                let seen = watcher.seen.lock().expect("lock");
                stored.keys().filter(|id| !seen.contains(*id)).count()
            };
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the SSE client on analytics {side} misses {missing} of {} events",
                stored.len()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!(
            "replicas: SSE client on analytics {side} saw all {} events ({} reconnects)",
            stored.len(),
            watcher.reconnects.load(Ordering::SeqCst)
        );
    }
    assert_eq!(
        watchers[1].reconnects.load(Ordering::SeqCst),
        0,
        "the client on the surviving replica kept its stream"
    );
    for watcher in &watchers {
        watcher.task.abort();
    }

    // Which members had to rejoin because the coordinator left partitions to nobody.
    for (name, process) in &replicas.processes {
        let rejoins = process
            .stderr()
            .matches("no consumer; rejoining the group")
            .count();
        if rejoins > 0 {
            println!(
                "replicas: {name} rejoined its consumer group {rejoins} time(s) (stalled partitions)"
            );
        }
    }

    // SIGTERM: every process drains and exits 0.
    for (name, _) in INSTANCES.iter().rev() {
        let mut process = replicas.processes.remove(name).expect("running");
        let status = process.terminate(Duration::from_secs(30)).await;
        assert!(
            status.success(),
            "{name} stops cleanly:\n{}",
            process.stderr()
        );
    }
    println!("replicas: done in {:?}", started.elapsed());
}
