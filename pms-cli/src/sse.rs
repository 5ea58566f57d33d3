//! Server-Sent Events: an incremental parser (WHATWG "event stream interpretation") and the
//! tail loop that keeps a stream alive — reconnect with jittered exponential backoff, resume with
//! `Last-Event-ID`, and tell the caller about every disconnect and reconnect.
//!
//! A stream ends with the session: when its access token expires or is revoked the server sends
//! `event: reauthenticate` (`data: {"reason":"expired"|"revoked"}`) and closes it. The loop then
//! refreshes the session and reconnects at once after the last event it delivered (gap-free); a
//! refresh the server refuses ends the tail with the not-authenticated error (exit 4).

use std::time::Duration;

use futures::StreamExt;

use crate::api::{ApiClient, StreamStart};
use crate::error::{Error, Result};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event's id (`id:`), or the last one seen on the stream.
    pub id: Option<String>,
    /// `event:` (default `message`).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser: feed it bytes as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    data: String,
    has_data: bool,
    event: String,
    last_id: Option<String>,
    /// The server's `retry:` (milliseconds), if it sent one.
    pub retry: Option<u64>,
    /// A lone `\r` ended the previous chunk: a `\n` starting this one belongs to it.
    skip_lf: bool,
}

impl SseParser {
    /// Parses a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut bytes = chunk;
        if self.skip_lf {
            self.skip_lf = false;
            if bytes.first() == Some(&b'\n') {
                bytes = &bytes[1..];
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' | b'\r' => {
                    self.pending.extend_from_slice(&bytes[start..i]);
                    let line =
                        String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
                    if let Some(event) = self.line(&line) {
                        events.push(event);
                    }
                    if bytes[i] == b'\r' {
                        if i + 1 == bytes.len() {
                            self.skip_lf = true;
                        } else if bytes[i + 1] == b'\n' {
                            i += 1;
                        }
                    }
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        self.pending.extend_from_slice(&bytes[start..]);
        events
    }

    /// The id of the last event seen (sent back as `Last-Event-ID`).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None; // comment (heartbeat)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = value.to_owned(),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the last "\n"
        Some(SseEvent {
            id: self.last_id.clone(),
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
        })
    }
}

/// The event a server sends before closing a stream whose token expired or was revoked.
pub const REAUTHENTICATE: &str = "reauthenticate";

/// What happened to the connection, for the marker lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailNotice {
    /// Connected again after a loss; resuming after this event id.
    Reconnected { attempt: u32, after: Option<String> },
    /// Lost (or could not open) the stream; trying again after `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
}

/// Backoff between reconnects.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Delay before attempt `n` (1-based): doubling from `initial`, capped at `max`, ±20% jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let capped = base.min(self.max);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 401) as f64 / 1000.0 - 0.2;
        capped.mul_f64(1.0 + jitter)
    }
}

/// Whether a failure to open the stream is worth retrying (the server is restarting or
/// unreachable) rather than final (bad token, no such endpoint, bad filter).
fn retryable(e: &Error) -> bool {
    e.is_transient()
}

/// Follows the event stream until `on_event` fails (e.g. stdout closed) or a final error.
/// Never returns on its own otherwise: the caller stops it (Ctrl-C).
pub async fn tail(
    client: &ApiClient,
    mut start: StreamStart,
    backoff: Backoff,
    mut on_event: impl FnMut(&SseEvent) -> Result<()>,
    mut on_notice: impl FnMut(&TailNotice),
) -> Result<()> {
    let mut parser = SseParser::default();
    let mut attempt: u32 = 0;
    let mut had_connection = false;
    // Re-authentications in a row with no event between them (a server that rejects every
    // fresh token must not be hammered).
    let mut reauth_streak: u32 = 0;
    loop {
        if let Some(id) = parser.last_id() {
            start.last_event_id = Some(id.to_owned());
        }
        let ended = match client.open_event_stream(&start).await {
            Ok(response) => {
                if had_connection || attempt > 0 {
                    on_notice(&TailNotice::Reconnected {
                        attempt,
                        after: start.last_event_id.clone(),
                    });
                }
                had_connection = true;
                attempt = 0;
                // Bytes of a half-read event belong to a connection that is gone.
                let retry = parser.retry;
                let last = parser.last_id.clone();
                parser = SseParser {
                    retry,
                    last_id: last,
                    ..SseParser::default()
                };
                let mut body = response.bytes_stream();
                'read: loop {
                    match body.next().await {
                        Some(Ok(chunk)) => {
                            // The id to resume after: the last event actually delivered.
                            let mut delivered = parser.last_id.clone();
                            for event in parser.push(&chunk) {
                                if event.event == REAUTHENTICATE {
                                    parser.last_id = delivered;
                                    break 'read Ended::Reauthenticate(reauth_reason(&event.data));
                                }
                                on_event(&event)?;
                                reauth_streak = 0;
                                delivered = event.id.clone();
                            }
                        }
                        Some(Err(e)) => break Ended::Lost(format!("stream error: {e}")),
                        None => break Ended::Lost("the server closed the stream".to_owned()),
                    }
                }
            }
            Err(e) if retryable(&e) => Ended::Lost(e.to_string()),
            Err(e) => return Err(e),
        };
        let (reason, delay) = match ended {
            Ended::Reauthenticate(why) => {
                client.reauthenticate().await?;
                reauth_streak += 1;
                let delay = if reauth_streak > 1 {
                    backoff.delay(reauth_streak - 1)
                } else {
                    Duration::ZERO
                };
                (format!("the server asked to re-authenticate: {why}"), delay)
            }
            Ended::Lost(reason) => {
                attempt += 1;
                let mut delay = backoff.delay(attempt);
                if let Some(ms) = parser.retry {
                    delay = delay
                        .max(Duration::from_millis(ms))
                        .min(backoff.max.max(Duration::from_millis(ms)));
                }
                (reason, delay)
            }
        };
        on_notice(&TailNotice::Disconnected {
            reason,
            retry_in: delay,
        });
        tokio::time::sleep(delay).await;
    }
}

/// How a connection ended.
enum Ended {
    /// Lost (or could not be opened): retry with backoff.
    Lost(String),
    /// The server ended it for the token (`expired`, `revoked`): refresh, then resume at once.
    Reauthenticate(String),
}

/// The `reason` of a `reauthenticate` event's data, for the marker line.
fn reauth_reason(data: &str) -> String {
    let reason = serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned));
    match reason.as_deref() {
        Some("expired") => "the access token expired".to_owned(),
        Some("revoked") => "the access token was revoked".to_owned(),
        Some(other) => other.to_owned(),
        None => "no reason given".to_owned(),
    }
}

#[cfg(test)]
mod tests;
