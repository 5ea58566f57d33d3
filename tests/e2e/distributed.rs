//! The five services as five processes on PostgreSQL and a real Kafka-protocol broker, started
//! with docker/compose.yml's own commands and environment (hosts and ports rewritten to loopback),
//! then driven through faults: the broker killed and restarted, billing stopped and restarted, the
//! patient service killed with SIGKILL under load. Counted afterwards: nothing lost, nothing
//! duplicated.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use pms_e2e::{Broker, ServerProcess, free_port, fresh_postgres_url};
use serde_json::{Value, json};

use crate::compose::pms_services;
use crate::scenario::{Api, auth_checks, patient_lifecycle};

const READY: Duration = Duration::from_secs(60);
pub(crate) const START_ORDER: [&str; 5] = ["auth", "billing", "patient", "analytics", "gateway"];

pub(crate) struct Cluster {
    env: HashMap<String, Vec<(String, String)>>,
    pub(crate) processes: HashMap<String, ServerProcess>,
    ready_url: HashMap<String, String>,
    data: tempfile::TempDir,
}

impl Cluster {
    /// Rewrites each compose service's environment for this machine.
    pub(crate) fn from_compose(db: &str, broker: &str) -> (Cluster, String, String, String) {
        let services = pms_services();
        // compose host:port → loopback port.
        let mut ports: HashMap<(String, String), u16> = HashMap::new();
        for s in &services {
            for (key, value) in &s.env {
                if key.ends_with("__PORT") || key.ends_with("__GRPC_PORT") {
                    ports.insert((s.name.clone(), value.clone()), free_port());
                }
            }
        }
        let mut cluster = Cluster {
            env: HashMap::new(),
            processes: HashMap::new(),
            ready_url: HashMap::new(),
            data: tempfile::tempdir().expect("dir"),
        };
        let (mut admin_email, mut admin_password, mut gateway) =
            (String::new(), String::new(), String::new());
        for s in &services {
            let mut env = Vec::new();
            for (key, value) in &s.env {
                let value = if key == "PMS_DATABASE__URL" {
                    db.to_owned()
                } else if key == "PMS_KAFKA__BROKERS" {
                    broker.to_owned()
                } else if key.ends_with("__BIND") {
                    "127.0.0.1".to_owned()
                } else if key.ends_with("__PORT") || key.ends_with("__GRPC_PORT") {
                    ports[&(s.name.clone(), value.clone())].to_string()
                } else if let Some(rest) = value.strip_prefix("http://") {
                    let (host, port) = rest.split_once(':').expect("host:port");
                    format!(
                        "http://127.0.0.1:{}",
                        ports[&(host.to_owned(), port.to_owned())]
                    )
                } else {
                    value.clone()
                };
                match key.as_str() {
                    "PMS_ADMIN_EMAIL" => admin_email = value.clone(),
                    "PMS_ADMIN_PASSWORD" => admin_password = value.clone(),
                    _ => {}
                }
                env.push((key.clone(), value));
            }
            // Short consumer sessions: a restarted consumer rejoins its group quickly.
            env.push((
                "PMS_KAFKA__SESSION_TIMEOUT_MS".to_owned(),
                "6000".to_owned(),
            ));
            // Fail a publish to a dead broker quickly (the outbox keeps the event meanwhile).
            env.push((
                "PMS_KAFKA__MESSAGE_TIMEOUT_MS".to_owned(),
                "5000".to_owned(),
            ));
            // The suite's broker is Tansu 0.6.0 (see `kafka.batch_max_messages`).
            env.push(("PMS_KAFKA__BATCH_MAX_MESSAGES".to_owned(), "1".to_owned()));
            let port = env
                .iter()
                .find(|(k, _)| k.ends_with("__PORT") && !k.contains("GRPC"))
                .map(|(_, v)| v.clone())
                .expect("port");
            if s.role == "gateway" {
                gateway = format!("http://127.0.0.1:{port}");
            }
            cluster
                .ready_url
                .insert(s.role.clone(), format!("http://127.0.0.1:{port}"));
            cluster.env.insert(s.role.clone(), env);
        }
        (cluster, admin_email, admin_password, gateway)
    }

    pub(crate) async fn start(&mut self, role: &str) {
        let env: Vec<(&str, String)> = self.env[role]
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let data = self.data.path().join(role);
        let mut process =
            ServerProcess::spawn(role, &[role, "--data-dir", &data.to_string_lossy()], &env);
        process.wait_ready(&self.ready_url[role], READY).await;
        self.processes.insert(role.to_owned(), process);
    }

    pub(crate) async fn stop(&mut self, role: &str) {
        let mut process = self.processes.remove(role).expect("running");
        let status = process.terminate(Duration::from_secs(30)).await;
        assert!(
            status.success(),
            "{role} stops cleanly:\n{}",
            process.stderr()
        );
    }

    /// Panics if a service that should run has exited.
    pub(crate) fn assert_alive(&mut self) {
        for (role, process) in &mut self.processes {
            if let Some(status) = process.exited() {
                panic!(
                    "{role} exited unexpectedly with {status}:\n{}",
                    process
                        .stderr()
                        .lines()
                        .rev()
                        .take(15)
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
    }

    fn kill(&mut self, role: &str) {
        self.processes.remove(role).expect("running").kill();
    }
}

pub(crate) async fn create(
    api: &Api,
    token: &str,
    tag: &str,
) -> reqwest::Result<reqwest::Response> {
    api.client
        .post(api.url("/api/patients"))
        .bearer_auth(token)
        .json(&json!({
            "name": format!("Fault {tag}"),
            "email": format!("{tag}-{}@example.com", uuid::Uuid::new_v4().simple()),
            "address": "1 Main St",
            "dateOfBirth": "1970-01-01",
            "registeredDate": "2024-01-01"
        }))
        .send()
        .await
}

async fn create_ok(api: &Api, token: &str, tag: &str) -> Value {
    let response = create(api, token, tag).await.expect("send");
    assert_eq!(response.status(), 201, "{tag}");
    response.json().await.expect("json")
}

/// Every live patient id (paging through the Link header).
pub(crate) async fn all_patients(api: &Api, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next = Some("/api/patients?limit=1000".to_owned());
    while let Some(path) = next {
        let response = api
            .client
            .get(api.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .expect("list");
        assert_eq!(response.status(), 200);
        next = link_next(&response);
        let page: Vec<Value> = response.json().await.expect("json");
        ids.extend(
            page.iter()
                .map(|p| p["id"].as_str().expect("id").to_owned()),
        );
    }
    ids
}

fn link_next(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    Some(link.strip_prefix('<')?.split_once('>')?.0.to_owned())
}

/// How many PATIENT_CREATED events analytics stored per patient id.
async fn analytics_created(api: &Api, token: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut next = Some("/api/analytics/events?type=PATIENT_CREATED&limit=1000".to_owned());
    while let Some(path) = next {
        let response = api
            .client
            .get(api.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .expect("events");
        if response.status() != 200 {
            panic!(
                "{path}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        next = link_next(&response);
        let page: Vec<Value> = response.json().await.expect("json");
        for e in page {
            *counts
                .entry(e["key"].as_str().expect("key").to_owned())
                .or_insert(0) += 1;
        }
    }
    counts
}

async fn accounts_of(api: &Api, token: &str, patient: &str) -> usize {
    let response = api
        .client
        .get(api.url(&format!("/api/billing/accounts?patientId={patient}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("accounts");
    assert_eq!(response.status(), 200);
    response.json::<Vec<Value>>().await.expect("json").len()
}

/// Waits until analytics has exactly one creation event and billing exactly one account for
/// every id in `patients`, and checks no other counts (duplicates) appear.
pub(crate) async fn converge(api: &Api, token: &str, patients: &[String], what: &str) {
    let started = Instant::now();
    loop {
        let events = analytics_created(api, token).await;
        let missing_events = patients
            .iter()
            .filter(|p| events.get(*p).copied().unwrap_or(0) == 0)
            .count();
        let duplicated: Vec<_> = events.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            duplicated.is_empty(),
            "{what}: duplicated events {duplicated:?}"
        );
        let mut missing_accounts = 0;
        if missing_events == 0 {
            for p in patients {
                match accounts_of(api, token, p).await {
                    0 => missing_accounts += 1,
                    1 => {}
                    n => panic!("{what}: patient {p} has {n} billing accounts"),
                }
            }
        }
        if missing_events == 0 && missing_accounts == 0 {
            println!(
                "{what}: {} patients converged in {:?}",
                patients.len(),
                started.elapsed()
            );
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{what}: {missing_events} events and {missing_accounts} accounts still missing"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn five_services_on_postgres_and_kafka_lose_nothing_through_faults() {
    let mut broker = Broker::start().await;
    let db = fresh_postgres_url().await;
    let (mut cluster, admin_email, admin_password, gateway) =
        Cluster::from_compose(&db, &broker.bootstrap());
    for role in START_ORDER {
        cluster.start(role).await;
    }
    let api = Api::new(gateway);
    let token = auth_checks(&api, &admin_email, &admin_password).await;
    patient_lifecycle(&api, &token).await;

    // Normal flow: billing answers over gRPC during the create.
    let created = create_ok(&api, &token, "normal").await;
    assert!(
        created["billingAccountId"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "account id in the create response: {created}"
    );
    converge(
        &api,
        &token,
        &all_patients(&api, &token).await,
        "normal flow",
    )
    .await;

    // Broker killed while patients are created; restarted empty.
    broker.down();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.assert_alive();
    for n in 0..5 {
        create_ok(&api, &token, &format!("broker-down-{n}")).await;
    }
    broker.up().await;
    converge(
        &api,
        &token,
        &all_patients(&api, &token).await,
        "after the broker outage",
    )
    .await;

    // Billing stopped: creation still succeeds, quickly; the account appears after restart.
    cluster.stop("billing").await;
    for n in 0..5 {
        let started = Instant::now();
        let response = create_ok(&api, &token, &format!("billing-down-{n}")).await;
        let took = started.elapsed();
        println!("create with billing down: {took:?}");
        assert!(
            took < Duration::from_secs(2),
            "create took {took:?} with billing down"
        );
        assert!(
            response.get("billingAccountId").is_none_or(Value::is_null),
            "no account id while billing is down"
        );
    }
    cluster.start("billing").await;
    converge(
        &api,
        &token,
        &all_patients(&api, &token).await,
        "after the billing outage",
    )
    .await;

    // The patient service killed (SIGKILL) in the middle of a burst of creates.
    let load_api = Api::new(api.base.clone());
    let load_token = token.clone();
    let load = tokio::spawn(async move {
        let mut ok = 0;
        for n in 0..60 {
            match create(&load_api, &load_token, &format!("kill-{n}")).await {
                Ok(r) if r.status() == 201 => ok += 1,
                _ => {}
            }
        }
        ok
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.kill("patient");
    let acknowledged = load.await.expect("load task");
    println!("creates acknowledged before and after the kill: {acknowledged}");
    cluster.start("patient").await;
    let patients = all_patients(&api, &token).await;
    converge(&api, &token, &patients, "after killing the patient service").await;

    for role in ["gateway", "analytics", "patient", "billing", "auth"] {
        cluster.stop(role).await;
    }
}
