//! `pms events tail` against a real server: it prints an event created after it started, keeps
//! following across a server restart (a marker line on stderr for the reconnect) and then prints
//! the event created while it was reconnecting — each event once — and stops on Ctrl-C with exit
//! 0. Delivery, resume and restarts are also covered without a server by `pms_cli::sse`'s tests
//! against a local SSE server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pms_e2e::binary;
use serde_json::Value;

use super::{Backend, Server, patient_json};

struct Tail {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Tail {
    fn start(server: &Server, token: &str, config: &std::path::Path) -> Tail {
        let mut child = Command::new(binary("pms"))
            // `--since` so that an event created before the stream is open is not missed; after
            // a reconnect `Last-Event-ID` takes over (no replayed duplicates).
            .args([
                "events",
                "tail",
                "--type",
                "PATIENT_CREATED",
                "--since",
                "10m",
                "-o",
                "json",
            ])
            .env_remove("PMS_PROFILE")
            .env("PMS_SERVER", &server.base)
            .env("PMS_TOKEN", token)
            .env("PMS_CONFIG_DIR", config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pms events tail");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().expect("lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        Tail {
            child,
            lines,
            stderr,
        }
    }

    /// Waits until stderr contains `text` (panics after `wait`).
    fn wait_stderr(&self, text: &str, wait: Duration) {
        let started = std::time::Instant::now();
        while !self.stderr.lock().expect("lock").contains(text) {
            assert!(
                started.elapsed() < wait,
                "no `{text}` on stderr within {wait:?}:\n{}",
                self.stderr.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The next event line (panics after `wait`, with both sides' logs).
    fn next(&self, wait: Duration, server: &Server) -> Value {
        let line = self.lines.recv_timeout(wait).unwrap_or_else(|_| {
            let log = server.process.stderr();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "no event within {wait:?}; pms stderr:\n{}\nserver log (last 40 lines):\n{}",
                self.stderr.lock().expect("lock"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        });
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not NDJSON ({e}): {line}"))
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn create(server: &Server, name: &str) -> String {
    let client = server.admin_client().await;
    let patient = client
        .create_patient(&serde_json::from_value(patient_json(name)).expect("request"))
        .await
        .expect("create patient");
    patient.id.to_string()
}

#[tokio::test]
async fn tail_follows_across_a_server_restart_and_exits_0_on_ctrl_c() {
    let mut server = Server::start(Backend::Sqlite).await;
    let token = server.admin_token().await;
    let config = tempfile::tempdir().expect("temp dir");
    let mut tail = Tail::start(&server, &token, config.path());
    server.restart().await;
    tail.wait_stderr("-- event stream interrupted", Duration::from_secs(30));
    tail.wait_stderr("-- reconnected", Duration::from_secs(60));
    assert!(
        tail.child.try_wait().expect("try_wait").is_none(),
        "still following"
    );
    let pid = tail.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = tail.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Ctrl-C stops it"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "Ctrl-C exits 0");
    assert!(tail.lines.try_recv().is_err(), "stdout carries events only");
}

#[tokio::test]
async fn tail_sees_new_events_and_survives_a_restart_without_loss_on_sqlite() {
    tail_without_loss(Backend::Sqlite).await;
}

#[tokio::test]
async fn tail_sees_new_events_and_survives_a_restart_without_loss_on_postgres() {
    tail_without_loss(Backend::Postgres).await;
}

async fn tail_without_loss(backend: Backend) {
    let mut server = Server::start(backend).await;
    let token = server.admin_token().await;
    let config = tempfile::tempdir().expect("temp dir");
    let tail = Tail::start(&server, &token, config.path());

    let first = create(&server, "Tail One").await;
    // As long as after the restart below: on a loaded CI machine (every suite at once) the
    // first connection and delivery have taken over 20 s.
    let event = tail.next(Duration::from_secs(60), &server);
    assert_eq!(event["type"], "PATIENT_CREATED");
    assert_eq!(event["data"]["key"], first.as_str(), "{event}");
    let first_seq = event["id"].as_str().expect("id").to_owned();

    server.restart().await;
    // Created while the tail is still backing off: it must arrive after the reconnect.
    let second = create(&server, "Tail Two").await;
    let event = tail.next(Duration::from_secs(60), &server);
    assert_eq!(event["data"]["key"], second.as_str(), "{event}");
    assert_ne!(
        event["id"].as_str(),
        Some(first_seq.as_str()),
        "no duplicate of the first event"
    );
    let stderr = tail.stderr.lock().expect("lock").clone();
    assert!(
        stderr.contains("-- reconnected; resuming after event"),
        "marker line: {stderr}"
    );
    assert!(
        tail.lines.try_recv().is_err(),
        "nothing else (no replayed duplicates)"
    );
}
