//! Long-lived responses (Server-Sent Events) end with the session that opened them: when the
//! token expires or is revoked the stream sends one `event: reauthenticate` with data
//! `{"reason":"expired"|"revoked"}` and closes. Clients refresh their token and reconnect with
//! `Last-Event-ID`, so nothing is missed. [`UserStreams`] caps the open streams per user.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::sse::Event;
use chrono::Utc;
use futures::Stream;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{AuthUser, Verifier};

/// How often an open stream re-checks its token's revocation (the verifier's denylist is local:
/// this costs no request).
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Expired,
    Revoked,
}

impl SessionEnd {
    fn reason(self) -> &'static str {
        match self {
            SessionEnd::Expired => "expired",
            SessionEnd::Revoked => "revoked",
        }
    }

    /// The SSE event that tells the client to re-authenticate.
    pub fn event(self) -> Event {
        Event::default()
            .event("reauthenticate")
            .data(format!(r#"{{"reason":"{}"}}"#, self.reason()))
    }
}

/// Resolves when `user`'s token expires or is revoked.
pub async fn session_end(verifier: Arc<Verifier>, user: AuthUser) -> SessionEnd {
    loop {
        let left = (user.expires_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return SessionEnd::Expired;
        }
        tokio::time::sleep(left.min(CHECK_INTERVAL)).await;
        // An unreachable revocation source is not a revocation: the stream goes on until expiry.
        if verifier.is_revoked(&user.session).await.unwrap_or(false) {
            return SessionEnd::Revoked;
        }
    }
}

/// Open streams per user, capped.
#[derive(Debug)]
pub struct UserStreams {
    max_per_user: usize,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// One open stream; frees its slot when dropped.
#[derive(Debug)]
pub struct StreamSlot {
    user: Uuid,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl UserStreams {
    pub fn new(max_per_user: usize) -> UserStreams {
        UserStreams {
            max_per_user,
            open: Arc::default(),
        }
    }

    /// A slot for one more stream of `user`, or `None` when they have the maximum open.
    pub fn open(&self, user: Uuid) -> Option<StreamSlot> {
        // Counts only; a poisoned lock still holds usable numbers.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(user).or_insert(0);
        if *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            user,
            open: self.open.clone(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// The events of `rx` until the session ends; then one `reauthenticate` event and the end.
/// Dropping it (client gone or session over) drops `rx`, which stops the producer.
pub struct SessionStream {
    rx: mpsc::Receiver<Event>,
    end: Pin<Box<dyn Future<Output = SessionEnd> + Send>>,
    done: bool,
    _slot: StreamSlot,
}

impl SessionStream {
    pub fn new(
        rx: mpsc::Receiver<Event>,
        verifier: Arc<Verifier>,
        user: AuthUser,
        slot: StreamSlot,
    ) -> SessionStream {
        SessionStream {
            rx,
            end: Box::pin(session_end(verifier, user)),
            done: false,
            _slot: slot,
        }
    }
}

impl Stream for SessionStream {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(end) = self.end.as_mut().poll(cx) {
            self.done = true;
            metrics::counter!("stream_sessions_ended_total", "reason" => end.reason()).increment(1);
            return Poll::Ready(Some(Ok(end.event())));
        }
        self.rx.poll_recv(cx).map(|event| event.map(Ok))
    }
}

/// Seconds a client over its stream cap should wait (streams end at the latest with their token).
pub const STREAM_CAP_RETRY_SECS: u64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_user_and_freed_on_drop() {
        let streams = UserStreams::new(2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = streams.open(a).expect("slot");
        let _second = streams.open(a).expect("slot");
        assert!(streams.open(a).is_none(), "third stream refused");
        assert!(streams.open(b).is_some(), "other users unaffected");
        drop(first);
        assert!(streams.open(a).is_some());
    }

    #[test]
    fn the_reauthenticate_event_names_the_reason() {
        assert_eq!(SessionEnd::Revoked.reason(), "revoked");
        assert_eq!(SessionEnd::Expired.reason(), "expired");
    }
}
