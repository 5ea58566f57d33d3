//! A `pms-server` process under test: started with its own data (a temporary directory or a fresh
//! PostgreSQL database), timed from exec to ready, its memory read from `/proc`, stopped with
//! SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A running server.
pub struct Server {
    child: Child,
    /// Gateway base URL, e.g. `http://127.0.0.1:41234`.
    pub gateway: String,
    /// The patient service's own (loopback) base URL, for the gateway-vs-direct comparison.
    pub patient: String,
    /// Milliseconds from exec until `/health/ready` first answered 200.
    pub ready_ms: f64,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The admin account every benchmark server is started with (a fresh random password per run).
pub struct Admin {
    pub email: String,
    pub password: String,
}

impl Admin {
    /// `bench-admin@bench.test` with a fresh random password.
    pub fn random() -> Admin {
        Admin {
            email: "bench-admin@bench.test".into(),
            password: format!("Bench-{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl Server {
    /// Starts `bin` all-in-one with `env` on a free gateway port and waits until it is ready.
    pub async fn start(bin: &Path, admin: &Admin, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary data dir")?;
        let port = free_port()?;
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log)?;
        let started = Instant::now();
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("all")
            .env("PMS_GATEWAY__PORT", port.to_string())
            // Any free port for billing's gRPC: another PMS may hold 9001.
            .env("PMS_BILLING__GRPC_PORT", "0")
            .env("PMS_ADMIN_EMAIL", &admin.email)
            .env("PMS_ADMIN_PASSWORD", &admin.password)
            .env("PMS_LOG__FORMAT", "json")
            .env("PMS_LOG__LEVEL", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let gateway = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            gateway,
            patient: String::new(),
            ready_ms: 0.0,
            log,
            _dir: dir,
        };
        server.ready_ms = server.wait_ready(started).await?;
        server.patient = server.listening_addr("patient")?;
        Ok(server)
    }

    async fn wait_ready(&mut self, started: Instant) -> anyhow::Result<f64> {
        let client = reqwest::Client::new();
        let url = format!("{}/health/ready", self.gateway);
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                anyhow::bail!("pms-server exited with {status}:\n{}", self.log_text());
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(started.elapsed().as_secs_f64() * 1000.0);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        anyhow::bail!("pms-server not ready after 60 s:\n{}", self.log_text())
    }

    /// The address a service logged as `listening` (JSON log lines, `log.format = json`).
    fn listening_addr(&self, service: &str) -> anyhow::Result<String> {
        for line in self.log_text().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            // `flatten_event`: the event's fields sit at the top level.
            let fields = &v;
            if fields["message"] == "listening"
                && fields["service"] == service
                && let Some(addr) = fields["addr"].as_str()
            {
                return Ok(format!("http://{addr}"));
            }
        }
        anyhow::bail!("no `listening` line for {service} in the server log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident set size and its high-water mark, in kB (`/proc/<pid>/status`).
    pub fn memory_kb(&self) -> anyhow::Result<(u64, u64)> {
        proc_memory_kb(self.child.id())
    }

    /// SIGTERM, then wait (graceful shutdown is part of the product).
    pub fn stop(mut self) -> anyhow::Result<()> {
        terminate(&mut self.child)
    }
}

/// Resident set size and its high-water mark of process `pid`, in kB (`/proc/<pid>/status`).
pub fn proc_memory_kb(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("{name} missing from /proc status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// SIGTERM `child`, then wait up to 20 s (SIGKILL and an error after that).
pub fn terminate(child: &mut Child) -> anyhow::Result<()> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    let _ = child.wait();
    anyhow::bail!("the process did not stop within 20 s of SIGTERM")
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
