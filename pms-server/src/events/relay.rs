//! The outbox relay: a background task per producing service that publishes committed outbox
//! rows strictly in commit order and marks them published. A failed publish stops the batch and
//! is retried with backoff, so order per key is kept and nothing is skipped (at-least-once: a
//! crash between publish and mark republishes, and consumers deduplicate). Published rows are
//! deleted after `events.outbox_retention_secs` (they may carry personal data).
//!
//! Every replica runs a relay, but only the holder of the outbox's [`Lease`] publishes; the others
//! wait to take over (within a second or so of the holder's death). Batches: up to [`BATCH`] rows
//! are handed to the transport at once ([`Publisher::publish_batch`]) and marked in one
//! statement. The holder is woken by its own process's commits and polls for other replicas'
//! rows, backing off from [`POLL_MIN`] to [`POLL_MAX`] while the outbox stays empty.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::lease::Lease;
use super::{Publisher, outbox};
use crate::store::Db;
use crate::supervise::{self, Background};

/// How often the lease holder looks at the outbox without being woken (covers other replicas'
/// writes): soon after it found rows, then less and less often while there are none.
const POLL_MIN: Duration = Duration::from_millis(200);
const POLL_MAX: Duration = Duration::from_secs(2);
/// Rows read, published and marked per round.
const BATCH: i64 = 500;
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
    let mut lease = Lease::acquire(service, &db);
    let mut replays = publisher.replays();
    let mut backoff = Duration::from_millis(100);
    let mut last_prune: Option<Instant> = None;
    let mut idle = POLL_MIN;
    loop {
        let holding = lease.held();
        if holding {
            match drain_while(service, &db, publisher.as_ref(), &|| lease.held()).await {
                Ok(sent) => {
                    backoff = Duration::from_millis(100);
                    idle = if sent > 0 {
                        POLL_MIN
                    } else {
                        (idle * 2).min(POLL_MAX)
                    };
                }
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
                if lease.held()
                    && let Err(e) = drain_while(service, &db, publisher.as_ref(), &|| lease.held()).await
                {
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
            // A commit in this process: its rows go out now (by the holder; a standby has
            // nothing to do, the holder polls).
            _ = notify.notified() => {
                idle = POLL_MIN;
                tokio::time::sleep(super::LINGER).await;
            }
            _ = lease.changed() => {}
            _ = tokio::time::sleep(idle), if holding => {}
        }
    }
    // Free the lease before the flush: a standby may start publishing at once.
    drop(lease);
    publisher.flush().await;
    Ok(())
}

/// Publishes everything pending, batch by batch, in order; returns how many events went out.
#[cfg(test)]
pub(crate) async fn drain(
    service: &'static str,
    db: &Db,
    publisher: &dyn Publisher,
) -> anyhow::Result<usize> {
    drain_while(service, db, publisher, &|| true).await
}

/// [`drain`], checking `keep_going` (the lease is still held) before each batch.
async fn drain_while(
    service: &'static str,
    db: &Db,
    publisher: &dyn Publisher,
    keep_going: &(dyn Fn() -> bool + Sync),
) -> anyhow::Result<usize> {
    let mut total = 0;
    while keep_going() {
        let batch = outbox::pending(db, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        let full = batch.len() as i64 == BATCH;
        let (seqs, events): (Vec<i64>, Vec<_>) = batch.into_iter().unzip();
        // Published in order; on failure only the events before it count as sent.
        let (sent, failure) = publisher.publish_batch(&events).await;
        if sent > 0 {
            outbox::mark_published(db, &seqs[..sent]).await?;
            metrics::counter!("events_published_total", "service" => service)
                .increment(sent as u64);
            total += sent;
        }
        if let Some(e) = failure {
            return Err(e.into());
        }
        if !full {
            break;
        }
    }
    Ok(total)
}
