//! Logging (tracing) and metrics (Prometheus) set-up, once per process.
//!
//! Logs carry ids, never names, emails, addresses, passwords or tokens.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global tracing subscriber. `RUST_LOG` overrides `log.level`.
pub fn init_logging(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init`: a second call (tests building several apps in one process) is a no-op.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

/// Installs the Prometheus recorder (idempotent) and returns its handle.
pub fn init_metrics() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for name in crate::observe::HISTOGRAMS {
            // Histograms (aggregatable across replicas), not the exporter's default summaries.
            // Fails only on an empty bucket list, which a constant is not.
            builder = builder
                .set_buckets_for_metric(
                    Matcher::Full(name.to_owned()),
                    &crate::observe::LATENCY_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first (then ours simply records nothing).
        let _ = metrics::set_global_recorder(recorder);
        crate::observe::describe();
        handle
    })
}

/// How often recorded histogram samples are folded into their buckets (the exporter's own
/// default when it runs its HTTP listener).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Folds the histogram samples recorded since the last upkeep into their buckets, every
/// [`METRICS_UPKEEP`] until `shutdown`. `build_recorder` leaves that to its user: without it every
/// sample (several per request) stayed queued until the next scrape of `/metrics`, so a server
/// nobody scraped grew by about 1 MB a minute under load, for ever. Nothing without
/// [`init_metrics`].
pub fn spawn_metrics_upkeep(shutdown: CancellationToken) {
    let Some(handle) = metrics_handle() else {
        return;
    };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(METRICS_UPKEEP);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => handle.run_upkeep(),
            }
        }
    });
}

/// The process's metrics handle, if [`init_metrics`] ran.
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    METRICS.get()
}
