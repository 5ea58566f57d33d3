//! Supervision of background tasks (outbox relays, event consumers, the Kafka topic keeper, key
//! refreshers): nothing a service starts in the background may silently disappear.
//!
//! [`spawn`] runs a task under a supervisor. When the task ends by itself — an error, a panic, or
//! returning while the process is not shutting down — the supervisor logs it by name and starts
//! it again after a growing delay. A task that fails [`Policy::max_failures`] times within
//! [`Policy::window`] is given up: the [`Background`] records the failure, naming the task, and
//! `app::Running::wait` stops the whole process with that error (a replica that cannot do its job
//! is better restarted by its orchestrator than left half-working).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The background context every service receives: the process's shutdown token and the place
/// where a task that keeps failing reports it.
#[derive(Clone, Debug)]
pub struct Background {
    shutdown: CancellationToken,
    fatal: Arc<Fatal>,
}

#[derive(Debug, Default)]
struct Fatal {
    /// The first task given up: its error message (naming it).
    error: Mutex<Option<String>>,
    /// Fires when a task was given up.
    token: CancellationToken,
}

impl Background {
    /// A background context stopped by `shutdown`.
    pub fn new(shutdown: CancellationToken) -> Background {
        Background {
            shutdown,
            fatal: Arc::default(),
        }
    }

    /// Fires when the process shuts down: tasks finish their work and return `Ok`.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Identifies this context (clones share it): state shared per process run is keyed by it.
    pub fn identity(&self) -> *const () {
        Arc::as_ptr(&self.fatal).cast()
    }

    /// Waits until a supervised task was given up; returns its error (which names the task).
    pub async fn failed(&self) -> String {
        self.fatal.token.cancelled().await;
        self.failure()
            .unwrap_or_else(|| "a background task failed".to_owned())
    }

    /// The error of the task given up, if any.
    pub fn failure(&self) -> Option<String> {
        // A poisoned lock only means another thread panicked while writing the message.
        let slot = match self.fatal.error.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        slot.clone()
    }

    fn give_up(&self, message: String) {
        {
            let mut slot = match self.fatal.error.lock() {
                Ok(slot) => slot,
                Err(poisoned) => poisoned.into_inner(),
            };
            slot.get_or_insert(message);
        }
        self.fatal.token.cancel();
    }
}

impl From<&CancellationToken> for Background {
    fn from(shutdown: &CancellationToken) -> Background {
        Background::new(shutdown.clone())
    }
}

impl From<&Background> for Background {
    fn from(background: &Background) -> Background {
        background.clone()
    }
}

/// When to restart and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Delay before the first restart; doubled after each failure, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// This many failures within `window` → the task is given up and the process stops.
    pub max_failures: usize,
    pub window: Duration,
    /// At shutdown the task gets this long to finish its work (a relay's last drain), then it
    /// is aborted.
    pub shutdown_grace: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_failures: 10,
            window: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Runs `task` (a fresh future from the factory for each run) under supervision with the default
/// [`Policy`]. The handle completes when the process shuts down or the task was given up.
pub fn spawn<F, Fut>(background: &Background, name: impl Into<String>, task: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    spawn_with(background, name, Policy::default(), task)
}

/// [`spawn`] with an explicit policy.
pub fn spawn_with<F, Fut>(
    background: &Background,
    name: impl Into<String>,
    policy: Policy,
    mut task: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let background = background.clone();
    let name = name.into();
    tokio::spawn(async move {
        let mut failures: Vec<Instant> = Vec::new();
        let mut backoff = policy.initial_backoff;
        loop {
            let started = Instant::now();
            // Its own task, so a panic is caught here as a JoinError instead of unwinding us.
            let mut running = tokio::spawn(task());
            let outcome = tokio::select! {
                outcome = &mut running => outcome,
                _ = background.shutdown.cancelled() => {
                    match tokio::time::timeout(policy.shutdown_grace, &mut running).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            tracing::warn!(task = %name, "background task did not stop in time; aborted");
                            running.abort();
                            return;
                        }
                    }
                }
            };
            let shutting_down = background.shutdown.is_cancelled();
            let error = match outcome {
                Ok(Ok(())) if shutting_down => return,
                Ok(Ok(())) => "stopped unexpectedly".to_owned(),
                Ok(Err(e)) => format!("failed: {e:#}"),
                Err(join) if join.is_panic() => {
                    format!("panicked: {}", panic_message(join.into_panic()))
                }
                Err(join) => format!("was cancelled: {join}"),
            };
            if shutting_down {
                tracing::warn!(task = %name, "background task {error} while shutting down");
                return;
            }
            metrics::counter!("background_task_failures_total", "task" => name.clone())
                .increment(1);
            let now = Instant::now();
            failures.retain(|at| now.duration_since(*at) < policy.window);
            failures.push(now);
            if failures.len() >= policy.max_failures {
                let message = format!(
                    "background task `{name}` {error} ({} failures within {:?}); giving up",
                    failures.len(),
                    policy.window
                );
                tracing::error!(task = %name, "{message}");
                background.give_up(message);
                return;
            }
            // A task that ran well for a while starts again with a short delay.
            if started.elapsed() > policy.window {
                backoff = policy.initial_backoff;
            }
            tracing::error!(task = %name, restart_in_ms = backoff.as_millis() as u64, "background task {error}; restarting");
            tokio::select! {
                _ = background.shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    })
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn fast(max_failures: usize) -> Policy {
        Policy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_failures,
            window: Duration::from_secs(60),
            shutdown_grace: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn a_task_that_panics_is_restarted() {
        let background = Background::new(CancellationToken::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let handle = spawn_with(&background, "flaky", fast(10), move || {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom");
                }
                // The third run works until shutdown.
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while runs.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "restarted twice after two panics");
        assert_eq!(background.failure(), None, "not given up");
        background.shutdown().cancel();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("stops on shutdown")
            .expect("supervisor itself never panics");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_task_that_keeps_failing_is_given_up_with_its_name() {
        let background = Background::new(CancellationToken::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let handle = spawn_with(&background, "outbox relay (patient)", fast(3), move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err(anyhow::anyhow!("database unreachable")) }
        });
        let message = tokio::time::timeout(Duration::from_secs(10), background.failed())
            .await
            .expect("given up");
        assert!(message.contains("outbox relay (patient)"), "{message}");
        assert!(message.contains("database unreachable"), "{message}");
        handle.await.expect("supervisor ends");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "tried max_failures times");
    }

    #[tokio::test]
    async fn a_task_returning_early_counts_as_a_failure_but_not_at_shutdown() {
        let background = Background::new(CancellationToken::new());
        let handle = spawn_with(&background, "quitter", fast(2), || async { Ok(()) });
        let message = tokio::time::timeout(Duration::from_secs(10), background.failed())
            .await
            .expect("given up");
        assert!(
            message.contains("`quitter` stopped unexpectedly"),
            "{message}"
        );
        handle.await.expect("ends");

        let background = Background::new(CancellationToken::new());
        let stop = background.shutdown().clone();
        let handle = spawn_with(&background, "polite", fast(2), move || {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                Ok(())
            }
        });
        background.shutdown().cancel();
        handle.await.expect("ends");
        assert_eq!(background.failure(), None);
    }
}
