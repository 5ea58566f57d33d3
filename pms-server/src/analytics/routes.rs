//! Analytics HTTP API (served under `/analytics`; the gateway maps `/api/analytics/*` here):
//! summary, registrations time series, stored events (paged) and the live Server-Sent Events
//! stream, which resumes from `Last-Event-ID` without gaps or duplicates.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc};
use futures::Stream;
use pms_proto::rest::{
    AccountStats, AnalyticsSummary, PatientStats, RegistrationBucket, StoredEvent,
};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};

use super::AnalyticsState;
use super::store::{MAX_TYPES, counter};
use crate::authn::AuthUser;
use crate::authn::streams::{STREAM_CAP_RETRY_SECS, SessionStream};
use crate::error::ApiError;
use crate::http::ApiQuery;

const MAX_PAGE: i64 = 1000;

/// Patients, accounts and money, as of now.
#[utoipa::path(get, path = "/analytics/summary", tag = "analytics", security(("bearer" = [])),
    responses((status = 200, body = AnalyticsSummary), (status = 401, body = pms_proto::rest::Problem)))]
pub(crate) async fn summary(
    State(state): State<AnalyticsState>,
    _user: AuthUser,
) -> Result<Json<AnalyticsSummary>, ApiError> {
    let store = &state.store;
    let now = Utc::now();
    let midnight = Utc.from_utc_datetime(&now.date_naive().and_time(chrono::NaiveTime::MIN));
    let end = now.timestamp_millis() + 1;
    let since =
        |from: DateTime<Utc>| store.count_between("PATIENT_CREATED", from.timestamp_millis(), end);
    let created = store.counter(counter::PATIENTS_CREATED).await?;
    let deleted = store.counter(counter::PATIENTS_DELETED).await?;
    let accounts = store.counter(counter::ACCOUNTS_CREATED).await?;
    let closed = store.counter(counter::ACCOUNTS_CLOSED).await?;
    Ok(Json(AnalyticsSummary {
        patients: PatientStats {
            total: created,
            active: created - deleted,
            new_today: since(midnight).await?,
            new_7d: since(now - ChronoDuration::days(7)).await?,
            new_30d: since(now - ChronoDuration::days(30)).await?,
        },
        accounts: AccountStats {
            total: accounts,
            active: accounts - closed,
            closed,
        },
        billing: store.money().await?,
        events_total: store.events_total().await?,
        generated_at: now,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RegistrationsQuery {
    /// First day (inclusive), `YYYY-MM-DD`, not after `to` and at most 3660 days before it.
    /// Default: 29 days before `to`.
    #[param(value_type = NaiveDate, required = false)]
    from: Option<NaiveDate>,
    /// Last day (inclusive), `YYYY-MM-DD`. Default: today (UTC).
    #[param(value_type = NaiveDate, required = false)]
    to: Option<NaiveDate>,
    /// `day` (default), `week` (ISO, from Monday) or `month`.
    #[param(value_type = BucketParam, inline, required = false)]
    bucket: Option<String>,
}

/// Patient registrations per day, week or month; empty buckets are included with count 0.
#[utoipa::path(get, path = "/analytics/registrations", tag = "analytics", params(RegistrationsQuery), security(("bearer" = [])),
    responses((status = 200, body = [RegistrationBucket]), (status = 400, body = pms_proto::rest::Problem)))]
pub(crate) async fn registrations(
    State(state): State<AnalyticsState>,
    _user: AuthUser,
    ApiQuery(query): ApiQuery<RegistrationsQuery>,
) -> Result<Json<Vec<RegistrationBucket>>, ApiError> {
    let to = query.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = query.from.unwrap_or(to - ChronoDuration::days(29));
    if from > to {
        return Err(ApiError::field("from", "must not be after `to`"));
    }
    if (to - from).num_days() > 3660 {
        return Err(ApiError::field("from", "the range is limited to 10 years"));
    }
    let bucket = Bucket::parse(query.bucket.as_deref().unwrap_or("day"))
        .ok_or_else(|| ApiError::field("bucket", "must be day, week or month"))?;
    let start_ms = day_start_ms(from);
    let end_ms = day_start_ms(to + ChronoDuration::days(1));
    let days = state
        .store
        .daily_counts("PATIENT_CREATED", start_ms, end_ms)
        .await?;
    Ok(Json(bucketize(&days, from, to, bucket)))
}

/// The `bucket` values, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum BucketParam {
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    Day,
    Week,
    Month,
}

impl Bucket {
    fn parse(s: &str) -> Option<Bucket> {
        match s {
            "day" => Some(Bucket::Day),
            "week" => Some(Bucket::Week),
            "month" => Some(Bucket::Month),
            _ => None,
        }
    }

    /// First day of the bucket containing `day`.
    fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Day => day,
            Bucket::Week => {
                day - ChronoDuration::days(i64::from(day.weekday().num_days_from_monday()))
            }
            Bucket::Month => day.with_day(1).unwrap_or(day),
        }
    }

    fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Day => start + ChronoDuration::days(1),
            Bucket::Week => start + ChronoDuration::days(7),
            Bucket::Month => start
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(start + ChronoDuration::days(31)),
        }
    }
}

fn day_start_ms(day: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .timestamp_millis()
}

/// Adds `days` (`(ms since epoch, count)`) into consecutive buckets covering `from..=to`.
pub(crate) fn bucketize(
    days: &[(i64, i64)],
    from: NaiveDate,
    to: NaiveDate,
    bucket: Bucket,
) -> Vec<RegistrationBucket> {
    let mut buckets = Vec::new();
    let mut start = bucket.start_of(from);
    while start <= to {
        buckets.push(RegistrationBucket { start, count: 0 });
        start = bucket.next(start);
    }
    for &(ms, count) in days {
        let Some(day) = DateTime::from_timestamp_millis(ms).map(|t| t.date_naive()) else {
            continue;
        };
        let key = bucket.start_of(day);
        if let Ok(i) = buckets.binary_search_by(|b| b.start.cmp(&key)) {
            buckets[i].count += count;
        }
    }
    buckets
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Only events with `seq` greater than this (default 0: from the beginning).
    #[param(value_type = i64, required = false, minimum = 0)]
    after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Comma-separated event types, e.g. `PATIENT_CREATED,PAYMENT_RECEIVED` (at most 20, each
    /// at most 64 characters).
    #[serde(rename = "type")]
    #[param(value_type = String, required = false, pattern = "^[^,]{0,64}(,[^,]{0,64}){0,19}$")]
    types: Option<String>,
}

/// The `type` filter, bounded: at most [`MAX_TYPES`] types of at most 64 characters.
fn checked_types(types: Option<&str>) -> Result<Vec<String>, ApiError> {
    let types = parse_types(types);
    if types.len() > MAX_TYPES {
        return Err(ApiError::field("type", "at most 20 event types"));
    }
    if types.iter().any(|t| t.len() > 64) {
        return Err(ApiError::field(
            "type",
            "event types are at most 64 characters",
        ));
    }
    Ok(types)
}

fn parse_types(types: Option<&str>) -> Vec<String> {
    types
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_ascii_uppercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn wanted(types: &[String], event: &StoredEvent) -> bool {
    types.is_empty() || types.contains(&event.event_type)
}

/// Stored events, oldest first, paged by `after` (the next page's `after` is the last `seq`).
#[utoipa::path(get, path = "/analytics/events", tag = "analytics", params(EventsQuery), security(("bearer" = [])),
    responses((status = 200, body = [StoredEvent]), (status = 400, body = pms_proto::rest::Problem)))]
pub(crate) async fn events(
    State(state): State<AnalyticsState>,
    _user: AuthUser,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 1000"));
    }
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::field("after", "must not be negative"));
    }
    let types = checked_types(query.types.as_deref())?;
    // One bounded query: the type filter is SQL (index on event type and seq).
    let page = state.store.events_after(after, limit, &types).await?;
    let cursor = page.last().map_or(after, |e| e.seq);
    let mut response = Json(&page).into_response();
    if page.len() as i64 == limit {
        let mut next = format!("</api/analytics/events?after={cursor}&limit={limit}");
        if let Some(t) = &query.types {
            next.push_str(&format!(
                "&type={}",
                url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
            ));
        }
        next.push_str(">; rel=\"next\"");
        if let Ok(value) = next.parse() {
            response
                .headers_mut()
                .insert(axum::http::header::LINK, value);
        }
    }
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamQuery {
    /// Comma-separated event types to receive (default: all; at most 20, each at most 64
    /// characters).
    #[serde(rename = "type")]
    #[param(value_type = String, required = false, pattern = "^[^,]{0,64}(,[^,]{0,64}){0,19}$")]
    types: Option<String>,
    /// Replay events with `seq` greater than this first (0 = everything stored). The
    /// `Last-Event-ID` header, sent by reconnecting clients, takes precedence.
    #[param(value_type = i64, required = false, minimum = 0)]
    after: Option<i64>,
    /// Replay events that occurred at or after this time (RFC 3339) first.
    #[param(value_type = DateTime<Utc>, required = false)]
    since: Option<DateTime<Utc>>,
}

/// One Server-Sent Event of the live stream, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct SseEvent {
    /// The event's `seq` (absent on `reauthenticate`).
    id: Option<String>,
    /// The event type (`PATIENT_CREATED`, …) or `reauthenticate`.
    event: String,
    /// A `StoredEvent` as JSON, or `{"reason":"expired"|"revoked"}` for `reauthenticate`.
    data: String,
}

/// Live events as Server-Sent Events (`id:` = seq, `event:` = type, `data:` = `StoredEvent`).
/// Without `Last-Event-ID`, `after` or `since` it starts with the next event. Heartbeat comments
/// keep idle connections open.
///
/// The stream ends with the session: when the token expires or is revoked it sends
/// `event: reauthenticate` with data `{"reason":"expired"|"revoked"}` and closes; the client
/// refreshes its token and reconnects with `Last-Event-ID`. Each user may have a limited number
/// of streams open (`analytics.max_streams_per_user`).
#[utoipa::path(get, path = "/analytics/events/stream", tag = "analytics", params(StreamQuery), security(("bearer" = [])),
    responses((status = 200, description = "Server-Sent Events: `StoredEvent`s, ended by a `reauthenticate` event",
            content_type = "text/event-stream", body = SseEvent),
        (status = 401, body = pms_proto::rest::Problem),
        (status = 429, description = "Too many open streams for this user", body = pms_proto::rest::Problem)))]
pub(crate) async fn stream(
    State(state): State<AnalyticsState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if query.after.is_some_and(|after| after < 0) {
        return Err(ApiError::field("after", "must not be negative"));
    }
    let slot = state
        .streams
        .open(user.id)
        .ok_or_else(|| ApiError::TooManyRequests {
            detail: "too many open event streams for this user; close one first".to_owned(),
            retry_after_secs: STREAM_CAP_RETRY_SECS,
        })?;
    let last_event_id =
        match headers
            .get("last-event-id")
            .map(|v| v.to_str().map(str::trim))
        {
            Some(Ok(v)) if !v.is_empty() => Some(v.parse::<i64>().map_err(|_| {
                ApiError::bad_request("Last-Event-ID must be an event seq (integer)")
            })?),
            _ => None,
        };
    // Subscribe before reading the position, so nothing committed in between is missed.
    let live = state.live.subscribe();
    let start = match (last_event_id, query.after, query.since) {
        (Some(seq), _, _) | (None, Some(seq), _) => seq.max(0),
        (None, None, Some(since)) => state.store.seq_before(since).await?,
        (None, None, None) => state.store.last_seq().await?,
    };
    let types = checked_types(query.types.as_deref())?;
    let (tx, rx) = mpsc::channel::<Event>(256);
    tokio::spawn(pump(state.clone(), live, start, types, tx));
    let client = crate::observe::SseClient::open("analytics");
    // Ends with the session (expiry or revocation): a `reauthenticate` event, then the end.
    let stream = SessionStream::new(rx, state.verifier.clone(), user, slot);
    Ok(Sse::new(StreamGuard(stream, client))
        .keep_alive(KeepAlive::new().interval(state.heartbeat).text("heartbeat")))
}

/// Feeds one SSE client: replay from the store after `cursor`, then live events; on lag (the
/// client fell too far behind the broadcast) it re-reads the store, so there is never a gap.
async fn pump(
    state: AnalyticsState,
    mut live: broadcast::Receiver<StoredEvent>,
    mut cursor: i64,
    types: Vec<String>,
    tx: mpsc::Sender<Event>,
) {
    let send = |event: &StoredEvent| {
        let data = serde_json::to_string(event).unwrap_or_default();
        Event::default()
            .id(event.seq.to_string())
            .event(event.event_type.clone())
            .data(data)
    };
    'replay: loop {
        loop {
            let batch = match state.store.events_after(cursor, 500, &types).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: cannot read the store; closing the stream");
                    return;
                }
            };
            if batch.is_empty() {
                break;
            }
            for event in batch {
                cursor = event.seq;
                if wanted(&types, &event) && tx.send(send(&event)).await.is_err() {
                    return;
                }
            }
        }
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = state.shutdown.cancelled() => return,
                received = live.recv() => match received {
                    Ok(event) if event.seq <= cursor => {}
                    Ok(event) => {
                        if event.seq != cursor + 1 {
                            // Stored out of our sight (e.g. by another replica): read the store.
                            continue 'replay;
                        }
                        cursor = event.seq;
                        if wanted(&types, &event) && tx.send(send(&event)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue 'replay,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Decrements the connected-clients gauge when the client goes away.
/// The stream with its `sse_clients` count, which ends when the client goes.
struct StreamGuard<S>(S, #[allow(dead_code)] crate::observe::SseClient);

impl<S: Stream + Unpin> Stream for StreamGuard<S> {
    type Item = S::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        std::pin::Pin::new(&mut self.0).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(day: &str) -> i64 {
        day_start_ms(day.parse().expect("date")) + 3_600_000
    }

    #[test]
    fn buckets_cover_the_range_with_zeros() {
        let from: NaiveDate = "2026-01-30".parse().expect("date");
        let to: NaiveDate = "2026-02-02".parse().expect("date");
        let days = bucketize(
            &[(ms("2026-01-30"), 2), (ms("2026-02-02"), 1)],
            from,
            to,
            Bucket::Day,
        );
        let counts: Vec<i64> = days.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 0, 0, 1]);
        let months = bucketize(
            &[(ms("2026-01-30"), 1), (ms("2026-02-02"), 1)],
            from,
            to,
            Bucket::Month,
        );
        assert_eq!(
            months
                .iter()
                .map(|b| (b.start.to_string(), b.count))
                .collect::<Vec<_>>(),
            [("2026-01-01".to_owned(), 1), ("2026-02-01".to_owned(), 1)]
        );
        // 2026-01-30 is a Friday: its ISO week starts Monday 2026-01-26.
        let weeks = bucketize(
            &[(ms("2026-01-30"), 1), (ms("2026-02-02"), 1)],
            from,
            to,
            Bucket::Week,
        );
        assert_eq!(
            weeks
                .iter()
                .map(|b| (b.start.to_string(), b.count))
                .collect::<Vec<_>>(),
            [("2026-01-26".to_owned(), 1), ("2026-02-02".to_owned(), 1)]
        );
    }

    #[test]
    fn type_filter_is_case_insensitive_and_comma_separated() {
        let types = parse_types(Some("patient_created, PAYMENT_RECEIVED,"));
        assert_eq!(types, ["PATIENT_CREATED", "PAYMENT_RECEIVED"]);
    }
}
