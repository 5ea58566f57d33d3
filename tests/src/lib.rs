//! Harness for the end-to-end suite: locate the built binaries, spawn `pms-server` processes with
//! a given environment on free ports, wait for readiness, stop them with SIGTERM, and make fresh
//! PostgreSQL databases.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary built next to this test executable (`target/<profile>/<name>`).
/// Panics with the fix if it is missing: the suite runs the real binaries.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// A free TCP port on loopback for a process started later.
///
/// Chosen below the kernel's ephemeral range (32768–60999 on Linux): servers that bind port 0 —
/// every in-process test app — never get these, so a port picked here cannot be taken by another
/// test in the seconds before our process binds it. A process-wide counter with a random start
/// keeps this process's picks distinct; each candidate is checked free before it is handed out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let _ = NEXT.compare_exchange(
        0,
        1 + std::process::id() % SPAN + uuid::Uuid::new_v4().as_u128() as u32 % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN)
}

/// A fresh PostgreSQL database per call (the server crate's helper; panics, never skips, without
/// `PMS_TEST_DATABASE_URL`).
pub use pms_server::store::testing::fresh_postgres_url;

/// A running `pms-server` process. Killed on drop if still running.
pub struct ServerProcess {
    child: Child,
    pub name: String,
    stderr_path: PathBuf,
    _logs: tempfile::TempDir,
}

impl ServerProcess {
    /// Spawns `pms-server <args>` with `env` (on top of a clean PMS_* environment).
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)]) -> ServerProcess {
        let logs = tempfile::tempdir().expect("temp dir");
        let stderr_path = logs.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let mut command = Command::new(binary("pms-server"));
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, _) in std::env::vars() {
            if key.starts_with("PMS_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command.env("PMS_LOG__FORMAT", "json");
        // Tests run many servers at once: billing's gRPC (9001 by default, also served by
        // `pms-server all`) on any free port unless the test sets one.
        command.env("PMS_BILLING__GRPC_PORT", "0");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn pms-server");
        ServerProcess {
            child,
            name: name.to_owned(),
            stderr_path,
            _logs: logs,
        }
    }

    /// The operating-system process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Polls `{base}/health/ready` until 200; panics with the process's stderr after `timeout`
    /// or if the process exits.
    pub async fn wait_ready(&mut self, base: &str, timeout: Duration) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status} before becoming ready:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if let Ok(response) = client.get(format!("{base}/health/ready")).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{} not ready after {timeout:?}:\n{}",
                self.name,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status (panics after `timeout`).
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        self.wait_exit(timeout).await
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, no grace.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "{} did not exit within {timeout:?}:\n{}",
                self.name,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// With `PMS_TEST_KEEP_LOGS=<dir>`, copies a process's log there as `<name>.log` before its
/// temporary directory goes (to read a failed run's whole story).
fn keep_log(path: &std::path::Path, name: &str) {
    if let Some(dir) = std::env::var_os("PMS_TEST_KEEP_LOGS") {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(path, dir.join(format!("{name}.log")));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        keep_log(
            &self.stderr_path,
            &format!("{}-{}", self.name, self.child.id()),
        );
        if std::thread::panicking() {
            // The test failed: show what this process said (warnings and errors, and the end).
            let log = self.stderr();
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains("\"level\":\"INFO\"") && !l.contains("\"level\":\"DEBUG\""))
                .collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            eprintln!(
                "---- {} (pid {}) stderr, warnings and errors ----\n{}",
                self.name,
                self.child.id(),
                tail.join("\n")
            );
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A real Kafka-protocol broker (Tansu, in-memory storage) on a free loopback port, for the
/// end-to-end suite. The binary comes from `PMS_TEST_TANSU` (set by scripts/test-services), else
/// `tansu` on the PATH. Panics (never skips) when there is none.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    binary: PathBuf,
    logs: tempfile::TempDir,
}

impl Broker {
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts a broker and waits until it accepts connections.
    pub async fn start() -> Broker {
        let binary = std::env::var_os("PMS_TEST_TANSU").map(PathBuf::from).or_else(|| which("tansu")).unwrap_or_else(|| {
            panic!("no Kafka-protocol broker: set PMS_TEST_TANSU to a tansu binary (scripts/test-services installs one)")
        });
        let mut broker = Broker {
            child: None,
            port: free_port(),
            binary,
            logs: tempfile::tempdir().expect("temp dir"),
        };
        broker.up().await;
        broker
    }

    /// (Re)starts the broker process on the same port. In-memory storage: a restarted broker is
    /// empty, like a broker that lost its disk — the services must re-create topics and resend.
    pub async fn up(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.path().join("tansu.log"))
            .expect("log");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            // The group coordinator's decisions (members joining, missing heartbeats, leaders)
            // are what a failed consumer-group test needs; the rest only at warning level.
            // `PMS_TEST_TANSU_LOG` replaces the filter.
            .env(
                "RUST_LOG",
                std::env::var("PMS_TEST_TANSU_LOG")
                    .unwrap_or_else(|_| "warn,tansu_broker::coordinator=info".to_owned()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            // Tansu logs to stdout.
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tansu did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The broker's log so far (every run of it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("tansu.log")).unwrap_or_default()
    }

    /// Kills the broker (SIGKILL).
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        keep_log(
            &self.logs.path().join("tansu.log"),
            &format!("tansu-{}", self.port),
        );
        if std::thread::panicking() {
            // The test failed: show the coordinator's last decisions.
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "---- tansu broker log (last 60 lines) ----\n{}",
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
        self.down();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
