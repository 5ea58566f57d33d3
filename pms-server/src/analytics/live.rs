//! The live feed behind this replica's SSE clients: it tails the analytics store — shared by
//! every analytics replica — by `seq`, so a client sees every event whichever replica's consumer
//! stored it (the replicas share the consumer group, so each consumes only its partitions).
//!
//! Tailing by `seq` is gap-free only if seq order is commit order; the store makes it so on
//! PostgreSQL (an advisory lock around each event's transaction, see `store.rs`), and SQLite
//! serialises writers anyway. While clients are connected the feed reads when this replica's
//! consumer stored something and polls every [`POLL`] (other replicas' events); with no client it
//! reads nothing.

use std::sync::Arc;
use std::time::Duration;

use pms_proto::rest::StoredEvent;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::store::AnalyticsStore;

/// How often the feed looks for other replicas' events while clients are connected.
const POLL: Duration = Duration::from_millis(250);
const BATCH: i64 = 500;

/// Feeds `live` with every stored event in seq order, from the newest at start, until
/// `shutdown`. `stored` is notified by this replica's consumer after each stored event. Storage
/// errors are retried (the position is kept, so nothing is skipped).
pub(crate) async fn tail(
    store: Arc<dyn AnalyticsStore>,
    live: broadcast::Sender<StoredEvent>,
    stored: Arc<Notify>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(100);
    let mut cursor = loop {
        match store.last_seq().await {
            Ok(seq) => break seq,
            Err(e) => {
                tracing::warn!(error = %e, "live feed: cannot read the store; retrying");
                if pause(&shutdown, &mut backoff).await {
                    return Ok(());
                }
            }
        }
    };
    // Events stored while no client listened are not read (under load the reads cost as much as
    // a consumer's); the first read after that starts at most a batch before the newest.
    let mut behind = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = stored.notified() => {}
            // Only clients need other replicas' events now.
            _ = tokio::time::sleep(POLL) => {}
        }
        if live.receiver_count() == 0 {
            behind = true;
            continue;
        }
        if behind {
            // A client's own stream replays the store from where it started and re-reads it
            // whenever a live event is not the next one it expects, so skipping is gap-free.
            match store.last_seq().await {
                Ok(newest) => {
                    cursor = cursor.max(newest - BATCH);
                    behind = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: cannot read the store; retrying");
                    if pause(&shutdown, &mut backoff).await {
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        loop {
            match store.events_after(cursor, BATCH, &[]).await {
                Ok(batch) => {
                    backoff = Duration::from_millis(100);
                    let full = batch.len() as i64 == BATCH;
                    for event in batch {
                        cursor = event.seq;
                        // No subscriber is fine; lagging ones re-read from the store.
                        let _ = live.send(event);
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: cannot read the store; retrying");
                    if pause(&shutdown, &mut backoff).await {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Sleeps `backoff` (doubling it, capped); `true` when the process shuts down meanwhile.
async fn pause(shutdown: &CancellationToken, backoff: &mut Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => return true,
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
    false
}
