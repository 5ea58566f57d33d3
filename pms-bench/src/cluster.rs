//! The distributed target: the five services as five `pms-server` processes on one PostgreSQL
//! database and a Kafka-protocol broker (Tansu, in-memory storage), as docker/compose.yml runs
//! them, on free loopback ports. Time to ready runs from the first exec until the gateway is
//! ready; memory is the sum over the five processes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::target::{Admin, free_port, proc_memory_kb, terminate};

/// A service to start: its name, HTTP port and own environment.
type Service = (&'static str, u16, Vec<(&'static str, String)>);

/// A running cluster.
pub struct Cluster {
    broker: Child,
    /// `(service, process)`, in start order.
    services: Vec<(&'static str, Child)>,
    /// Gateway base URL.
    pub gateway: String,
    /// The patient service's own base URL.
    pub patient: String,
    /// Milliseconds from the first exec until the gateway's `/health/ready` answered 200.
    pub ready_ms: f64,
    logs: tempfile::TempDir,
}

impl Cluster {
    /// Starts the broker (`tansu`), then auth, billing, patient, analytics and the gateway.
    pub async fn start(
        bin: &Path,
        tansu: &Path,
        admin: &Admin,
        database_url: &str,
    ) -> anyhow::Result<Cluster> {
        let logs = tempfile::tempdir().context("creating a temporary dir")?;
        let broker_port = free_port()?;
        let broker_url = format!("tcp://127.0.0.1:{broker_port}");
        let broker = Command::new(tansu)
            .args(["broker", "--listener-url", &broker_url])
            .args(["--advertised-listener-url", &broker_url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(logs.path().join("tansu.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", tansu.display()))?;
        let waited = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", broker_port)).is_err() {
            anyhow::ensure!(
                waited.elapsed() < Duration::from_secs(20),
                "tansu is not listening after 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let (auth, billing, grpc, patient, analytics, gateway) = (
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
        );
        let url = |p: u16| format!("http://127.0.0.1:{p}");
        let common = [
            ("PMS_DATABASE__URL", database_url.to_owned()),
            ("PMS_KAFKA__BROKERS", format!("127.0.0.1:{broker_port}")),
            // The broker is Tansu 0.6.0 (see `kafka.batch_max_messages`).
            ("PMS_KAFKA__BATCH_MAX_MESSAGES", "1".to_owned()),
            ("PMS_AUTH__URL", url(auth)),
            ("PMS_LOG__FORMAT", "json".to_owned()),
            ("PMS_LOG__LEVEL", "info".to_owned()),
        ];
        let own: [Service; 5] = [
            (
                "auth",
                auth,
                vec![
                    ("PMS_AUTH__PORT", auth.to_string()),
                    ("PMS_ADMIN_EMAIL", admin.email.clone()),
                    ("PMS_ADMIN_PASSWORD", admin.password.clone()),
                ],
            ),
            (
                "billing",
                billing,
                vec![
                    ("PMS_BILLING__PORT", billing.to_string()),
                    ("PMS_BILLING__GRPC_PORT", grpc.to_string()),
                ],
            ),
            (
                "patient",
                patient,
                vec![
                    ("PMS_PATIENT__PORT", patient.to_string()),
                    ("PMS_PATIENT__BILLING_GRPC_URL", url(grpc)),
                ],
            ),
            (
                "analytics",
                analytics,
                vec![("PMS_ANALYTICS__PORT", analytics.to_string())],
            ),
            (
                "gateway",
                gateway,
                vec![
                    ("PMS_GATEWAY__PORT", gateway.to_string()),
                    ("PMS_GATEWAY__PATIENT_URL", url(patient)),
                    ("PMS_GATEWAY__BILLING_URL", url(billing)),
                    ("PMS_GATEWAY__ANALYTICS_URL", url(analytics)),
                ],
            ),
        ];
        let mut cluster = Cluster {
            broker,
            services: Vec::new(),
            gateway: url(gateway),
            patient: url(patient),
            ready_ms: 0.0,
            logs,
        };
        let started = Instant::now();
        let client = reqwest::Client::new();
        for (service, port, env) in own {
            let log = std::fs::File::create(cluster.logs.path().join(format!("{service}.log")))?;
            let child = Command::new(bin)
                .arg("--data-dir")
                .arg(cluster.logs.path().join(service))
                .arg(service)
                .envs(common.iter().chain(&env).map(|(k, v)| (*k, v.as_str())))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {} {service}", bin.display()))?;
            cluster.services.push((service, child));
            cluster.wait_ready(&client, service, &url(port)).await?;
        }
        cluster.ready_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(cluster)
    }

    async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        service: &str,
        base: &str,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{base}/health/ready");
        while started.elapsed() < Duration::from_secs(60) {
            let exited = self
                .services
                .iter_mut()
                .find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                anyhow::bail!("{name} exited with {status}:\n{}", self.log(name));
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("{service} not ready after 60 s:\n{}", self.log(service))
    }

    fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self.logs.path().join(format!("{service}.log"))).unwrap_or_default()
    }

    /// Resident set size and high-water mark summed over the five processes, in kB.
    pub fn memory_kb(&self) -> anyhow::Result<(u64, u64)> {
        let mut total = (0, 0);
        for (_, child) in &self.services {
            let (rss, hwm) = proc_memory_kb(child.id())?;
            total = (total.0 + rss, total.1 + hwm);
        }
        Ok(total)
    }

    /// SIGTERM to every service (the gateway first), then the broker.
    pub fn stop(mut self) -> anyhow::Result<()> {
        while let Some((service, mut child)) = self.services.pop() {
            terminate(&mut child).with_context(|| format!("stopping {service}"))?;
        }
        let _ = self.broker.kill();
        let _ = self.broker.wait();
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.services {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.broker.kill();
        let _ = self.broker.wait();
    }
}
