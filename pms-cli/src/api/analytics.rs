//! Analytics endpoints (`/api/analytics/*`): the summary, registrations per day/week/month, the
//! stored events (paged by `seq`) and the live event stream (SSE).
//!
//! The stream follows DESIGN §7: `GET /api/analytics/events/stream?type=`, `id:` = the event's
//! `seq`, `data:` = a `StoredEvent`, `Last-Event-ID` to resume. `--since` sends
//! `since=<RFC 3339>`; `--from-beginning` sends `Last-Event-ID: 0` (everything after seq 0).

use chrono::{DateTime, SecondsFormat, Utc};
use pms_proto::rest::{AnalyticsSummary, RegistrationBucket, StoredEvent};
use reqwest::Method;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderName};

use super::{ApiClient, ApiRequest, Page};
use crate::error::Result;

/// Path of the live event stream.
pub const EVENT_STREAM_PATH: &str = "/api/analytics/events/stream";

/// Where a stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStart {
    /// Only events of this type (`PATIENT_CREATED`, …).
    pub event_type: Option<String>,
    /// Resume after this event id (sent as `Last-Event-ID`).
    pub last_event_id: Option<String>,
    /// Replay events that occurred at or after this time (ignored when resuming by id).
    pub since: Option<DateTime<Utc>>,
}

impl ApiClient {
    /// `GET /api/analytics/summary`.
    pub async fn analytics_summary(&self) -> Result<AnalyticsSummary> {
        self.send(ApiRequest::new(Method::GET, "/api/analytics/summary"))
            .await?
            .json()
            .await
    }

    /// `GET /api/analytics/registrations`: patients registered per bucket (`day`, `week`,
    /// `month`) between two days (inclusive; server defaults: the last 30 days, by day).
    pub async fn analytics_registrations(
        &self,
        from: Option<chrono::NaiveDate>,
        to: Option<chrono::NaiveDate>,
        bucket: Option<&str>,
    ) -> Result<Vec<RegistrationBucket>> {
        let mut request = ApiRequest::new(Method::GET, "/api/analytics/registrations");
        if let Some(from) = from {
            request = request.query("from", from);
        }
        if let Some(to) = to {
            request = request.query("to", to);
        }
        if let Some(bucket) = bucket {
            request = request.query("bucket", bucket);
        }
        self.send(request).await?.json().await
    }

    /// `GET /api/analytics/events`: stored events after `seq` `after` (oldest first), filtered
    /// by type (comma-separated); every page when `all`.
    pub async fn analytics_events(
        &self,
        after: Option<i64>,
        limit: Option<u32>,
        types: Option<&str>,
        all: bool,
    ) -> Result<Page<StoredEvent>> {
        let mut request = ApiRequest::new(Method::GET, "/api/analytics/events");
        if let Some(after) = after {
            request = request.query("after", after);
        }
        if let Some(limit) = limit {
            request = request.query("limit", limit);
        }
        if let Some(types) = types {
            request = request.query("type", types);
        }
        self.pages(request, all).await
    }

    /// Opens the event stream; the body is `text/event-stream`.
    pub async fn open_event_stream(&self, start: &StreamStart) -> Result<reqwest::Response> {
        let mut request = ApiRequest::new(Method::GET, EVENT_STREAM_PATH)
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        request.streaming = true;
        if let Some(kind) = &start.event_type {
            request = request.query("type", kind);
        }
        match (&start.last_event_id, start.since) {
            (Some(id), _) => {
                request = request.header(HeaderName::from_static("last-event-id"), id.clone());
            }
            (None, Some(since)) => {
                request = request.query("since", since.to_rfc3339_opts(SecondsFormat::Secs, true));
            }
            (None, None) => {}
        }
        Ok(self.send(request).await?.into_inner())
    }
}
