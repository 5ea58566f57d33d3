//! The outbox relay: a background task per producing service that publishes committed outbox
//! rows strictly in commit order and marks them published. A failed publish stops the batch and
//! is retried with backoff, so order per key is kept and nothing is skipped (at-least-once: a
//! crash between publish and mark republishes, and consumers deduplicate). Published rows are
//! deleted after `events.outbox_retention_secs` (they may carry personal data).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Publisher, outbox};
use crate::store::Db;
use crate::supervise::{self, Background};

/// How often the relay looks at the outbox without being woken (covers other replicas' writes).
const POLL: Duration = Duration::from_millis(500);
const BATCH: i64 = 200;
/// How often published rows past their retention are deleted (at once when the retention is 0).
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// Wakes the relay right after a commit, so events go out without waiting for the poll.
#[derive(Clone, Default)]
pub struct RelayWaker(Arc<Notify>);

impl RelayWaker {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Starts the relay of `db`'s outbox onto `publisher`, supervised in `background`. It stops when
/// the process shuts down, after a last drain and a flush of the publisher. Published rows are
/// deleted `retention` after publication; when the transport asks for a replay (a broker lost
/// its data), rows published since then are published again.
pub fn spawn(
    service: &'static str,
    db: Db,
    publisher: Arc<dyn Publisher>,
    retention: Duration,
    background: &Background,
) -> (RelayWaker, tokio::task::JoinHandle<()>) {
    let waker = RelayWaker::default();
    let notify = waker.0.clone();
    let shutdown = background.shutdown().clone();
    let handle = supervise::spawn(background, format!("outbox relay ({service})"), move || {
        run(
            service,
            db.clone(),
            publisher.clone(),
            retention,
            notify.clone(),
            shutdown.clone(),
        )
    });
    (waker, handle)
}

async fn run(
    service: &'static str,
    db: Db,
    publisher: Arc<dyn Publisher>,
    retention: Duration,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut replays = publisher.replays();
    let mut backoff = Duration::from_millis(100);
    let mut last_prune: Option<Instant> = None;
    loop {
        match drain(service, &db, publisher.as_ref()).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(service, error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay: publish failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        }
        if retention.is_zero() || last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            match outbox::prune(&db, retention).await {
                Ok(n) if n > 0 => tracing::debug!(service, deleted = n, "outbox pruned"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(service, error = %e, "outbox relay: cannot prune published events")
                }
            }
            last_prune = Some(Instant::now());
        }
        let replay = async {
            match replays.as_mut() {
                Some(rx) => rx
                    .changed()
                    .await
                    .map(|()| *rx.borrow_and_update())
                    .ok()
                    .flatten(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {
                // One last drain so events committed by draining requests go out now.
                if let Err(e) = drain(service, &db, publisher.as_ref()).await {
                    tracing::warn!(service, error = %e, "outbox relay: final drain incomplete; the rest goes out at next start");
                }
                break;
            }
            since = replay => {
                if let Some(since) = since {
                    let n = outbox::replay_since(&db, since).await?;
                    tracing::info!(service, events = n, %since, "outbox relay: republishing events the broker may have lost");
                }
            }
            _ = notify.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    publisher.flush().await;
    Ok(())
}

/// Publishes everything pending, batch by batch, in order.
pub(crate) async fn drain(
    service: &'static str,
    db: &Db,
    publisher: &dyn Publisher,
) -> anyhow::Result<()> {
    loop {
        let batch = outbox::pending(db, BATCH).await?;
        if batch.is_empty() {
            return Ok(());
        }
        let full = batch.len() as i64 == BATCH;
        let mut sent = Vec::with_capacity(batch.len());
        let mut failure = None;
        for (seq, event) in &batch {
            match publisher.publish(event).await {
                Ok(()) => sent.push(*seq),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if !sent.is_empty() {
            outbox::mark_published(db, &sent).await?;
            metrics::counter!("events_published_total", "service" => service)
                .increment(sent.len() as u64);
        }
        if let Some(e) = failure {
            return Err(e.into());
        }
        if !full {
            return Ok(());
        }
    }
}
