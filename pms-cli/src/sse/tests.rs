//! The parser on tricky framings, and the tail loop against a small local SSE server (axum)
//! that drops connections, restarts, and checks `Last-Event-ID`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::*;
use crate::api::{ApiClient, Credentials, EVENT_STREAM_PATH};

fn ev(id: Option<&str>, event: &str, data: &str) -> SseEvent {
    SseEvent {
        id: id.map(str::to_owned),
        event: event.into(),
        data: data.into(),
    }
}

#[test]
fn parses_fields_comments_and_multiline_data() {
    let mut p = SseParser::default();
    let events = p.push(
        b": heartbeat\n\nid: 1\nevent: PATIENT_CREATED\ndata: {\"a\":1}\n\ndata: line one\ndata:line two\n\nretry: 2500\nid: 7\nevent: ping\n\n",
    );
    assert_eq!(
        events,
        vec![
            ev(Some("1"), "PATIENT_CREATED", "{\"a\":1}"),
            ev(Some("1"), "message", "line one\nline two"),
        ],
        "an event without data is not dispatched; the id carries over"
    );
    assert_eq!(p.retry, Some(2500));
    assert_eq!(p.last_id(), Some("7"));
}

#[test]
fn handles_crlf_lone_cr_and_chunk_boundaries() {
    let mut p = SseParser::default();
    let mut events = Vec::new();
    for chunk in [
        &b"id: 4\r"[..],
        b"\ndata: x\r",
        b"\r",
        b"data: y\rdat",
        b"a: z\n\n",
    ] {
        events.extend(p.push(chunk));
    }
    assert_eq!(
        events,
        vec![
            ev(Some("4"), "message", "x"),
            ev(Some("4"), "message", "y\nz")
        ]
    );
}

#[test]
fn backoff_doubles_and_caps_with_jitter() {
    let b = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    for _ in 0..20 {
        let d1 = b.delay(1).as_millis();
        assert!((80..=120).contains(&d1), "{d1}");
        let d3 = b.delay(3).as_millis();
        assert!((320..=480).contains(&d3), "{d3}");
        let d10 = b.delay(10).as_millis();
        assert!((800..=1200).contains(&d10), "{d10}");
    }
}

/// What one connection asked for: (Last-Event-ID, since).
type Seen = (Option<String>, Option<String>);

/// The test server's state: every event ever "stored", and what each connection asked for.
#[derive(Clone, Default)]
struct Hub {
    events: Arc<Mutex<Vec<(u64, String)>>>,
    requests: Arc<Mutex<Vec<Seen>>>,
    /// Each connection sends at most this many events, then closes (0 = no limit, stay open).
    per_connection: usize,
    /// Set to true to kill every open connection (a server crash).
    kill: Option<Arc<tokio::sync::watch::Sender<bool>>>,
}

async fn stream(
    State(hub): State<Hub>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    hub.requests
        .lock()
        .unwrap()
        .push((last.clone(), q.get("since").cloned()));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer good") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let after: u64 = last.and_then(|l| l.parse().ok()).unwrap_or(0);
    let pending: Vec<(u64, String)> = hub
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, _)| *id > after)
        .cloned()
        .collect();
    let take = if hub.per_connection == 0 {
        pending.len()
    } else {
        hub.per_connection
    };
    let mut text = String::from(": hello\n\n");
    for (id, data) in pending.into_iter().take(take) {
        text.push_str(&format!(
            "id: {id}\nevent: PATIENT_CREATED\ndata: {data}\n\n"
        ));
    }
    let body = if hub.per_connection == 0 {
        // Stay open after the backlog (a live stream).
        let head = futures::stream::once(async move { Ok::<_, std::io::Error>(text) });
        let mut killed = hub.kill.as_ref().map(|k| k.subscribe());
        let end = futures::stream::once(async move {
            match killed.as_mut() {
                Some(rx) => {
                    let _ = rx.wait_for(|k| *k).await;
                }
                None => futures::future::pending::<()>().await,
            }
            Err::<String, _>(std::io::Error::other("killed"))
        });
        Body::from_stream(head.chain(end))
    } else {
        Body::from(text)
    };
    ([("content-type", "text/event-stream")], body).into_response()
}

async fn serve(hub: Hub, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route(EVENT_STREAM_PATH, get(stream))
        .with_state(hub);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

fn fast() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn resumes_after_each_drop_with_last_event_id_and_loses_nothing() {
    let hub = Hub {
        per_connection: 2,
        ..Hub::default()
    };
    for id in 1..=5 {
        hub.events
            .lock()
            .unwrap()
            .push((id, format!("{{\"n\":{id}}}")));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = serve(hub.clone(), listener).await;
    let client = ApiClient::new(&base, Credentials::Token("good".into())).unwrap();
    let mut seen = Vec::new();
    let mut notices = Vec::new();
    let result = tail(
        &client,
        StreamStart {
            event_type: Some("PATIENT_CREATED".into()),
            last_event_id: None,
            since: None,
        },
        fast(),
        |e| {
            seen.push(e.id.clone().unwrap());
            if seen.len() == 5 {
                Err(Error::Other("enough".into()))
            } else {
                Ok(())
            }
        },
        |n| notices.push(n.clone()),
    )
    .await;
    assert_eq!(result.unwrap_err().to_string(), "enough");
    assert_eq!(
        seen,
        ["1", "2", "3", "4", "5"],
        "in order, no gap, no duplicate"
    );
    let requests = hub.requests.lock().unwrap().clone();
    let sent_ids: Vec<_> = requests.iter().map(|(last, _)| last.clone()).collect();
    assert_eq!(sent_ids, [None, Some("2".into()), Some("4".into())]);
    let reconnects: Vec<_> = notices
        .iter()
        .filter_map(|n| match n {
            TailNotice::Reconnected { after, .. } => after.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(reconnects, ["2", "4"], "one marker per reconnect");
    assert!(notices.iter().any(
        |n| matches!(n, TailNotice::Disconnected { reason, .. } if reason.contains("closed"))
    ));
    server.abort();
}

#[tokio::test]
async fn survives_a_server_restart_on_the_same_port() {
    let (kill, _) = tokio::sync::watch::channel(false);
    let kill = Arc::new(kill);
    // Live: connections stay open until killed.
    let hub = Hub {
        kill: Some(kill.clone()),
        ..Hub::default()
    };
    hub.events.lock().unwrap().push((1, "{}".into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let first = serve(hub.clone(), listener).await;
    let client =
        ApiClient::new(&format!("http://{addr}"), Credentials::Token("good".into())).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let notices = Arc::new(Mutex::new(Vec::new()));
    let notices_in = notices.clone();
    let tailer = tokio::spawn(async move {
        tail(
            &client,
            StreamStart {
                event_type: None,
                last_event_id: Some("0".into()),
                since: None,
            },
            fast(),
            move |e| {
                let _ = tx.send(e.id.clone().unwrap_or_default());
                Ok(())
            },
            move |n| notices_in.lock().unwrap().push(n.clone()),
        )
        .await
    });
    assert_eq!(rx.recv().await.unwrap(), "1");
    // Stop the server (connections die), store an event while it is down, start it again.
    first.abort();
    let _ = first.await;
    kill.send_replace(true);
    hub.events.lock().unwrap().push((2, "{}".into()));
    tokio::time::sleep(Duration::from_millis(150)).await; // let a few reconnects fail
    kill.send_replace(false);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let second = serve(hub.clone(), listener).await;
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got, "2",
        "the event stored while the server was down arrives after the restart"
    );
    let last_request = hub.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last_request.0.as_deref(),
        Some("1"),
        "resumed after the last event seen"
    );
    assert!(
        notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| matches!(n, TailNotice::Reconnected { after: Some(a), .. } if a == "1"))
    );
    tailer.abort();
    second.abort();
}

#[tokio::test]
async fn a_rejected_token_is_final_not_retried() {
    let hub = Hub::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = serve(hub.clone(), listener).await;
    let client = ApiClient::new(&base, Credentials::Token("bad".into())).unwrap();
    let since = chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
        .unwrap()
        .to_utc();
    let err = tail(
        &client,
        StreamStart {
            event_type: None,
            last_event_id: None,
            since: Some(since),
        },
        fast(),
        |_| Ok(()),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Api {
                status: reqwest::StatusCode::UNAUTHORIZED,
                source_kind: crate::error::TokenSource::Environment,
                ..
            }
        ),
        "{err:?}"
    );
    let requests = hub.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        [(None, Some("2030-01-02T03:04:05Z".into()))],
        "one attempt, since sent"
    );
    server.abort();
}

#[tokio::test]
async fn an_unreachable_server_is_retried() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = ApiClient::new(
        &format!("http://127.0.0.1:{port}"),
        Credentials::Token("good".into()),
    )
    .unwrap();
    let mut notices = Vec::new();
    let run = tail(
        &client,
        StreamStart {
            event_type: None,
            last_event_id: None,
            since: None,
        },
        fast(),
        |_| Ok(()),
        |n| notices.push(n.clone()),
    );
    let _ = tokio::time::timeout(Duration::from_millis(400), run).await;
    assert!(notices.len() >= 2, "kept retrying: {notices:?}");
    match &notices[0] {
        TailNotice::Disconnected { reason, .. } => {
            assert!(reason.contains("cannot reach"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// A server whose tokens expire: each stream delivers what its token may see, then
/// `event: reauthenticate` (with a later event in the same chunk, which must not be lost) and
/// closes; `/auth/refresh` rotates `r<n>` → `t<n+1>`, or refuses when `revoked`.
#[derive(Clone, Default)]
struct Expiring {
    /// (Authorization, Last-Event-ID) of each stream request.
    streams: Arc<Mutex<Vec<Seen>>>,
    refreshes: Arc<Mutex<Vec<String>>>,
    revoked: bool,
}

async fn expiring_stream(State(s): State<Expiring>, headers: HeaderMap) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (auth, last) = (text("authorization"), text("last-event-id"));
    s.streams.lock().unwrap().push((auth.clone(), last.clone()));
    let body = match (auth.as_deref(), last.as_deref()) {
        (Some("Bearer t1"), None) => concat!(
            "id: 1\nevent: PATIENT_CREATED\ndata: {\"n\":1}\n\n",
            "id: 2\nevent: PATIENT_CREATED\ndata: {\"n\":2}\n\n",
            "event: reauthenticate\ndata: {\"reason\":\"expired\"}\n\n",
            "id: 3\nevent: PATIENT_CREATED\ndata: {\"n\":3}\n\n",
        ),
        (Some("Bearer t2"), Some("2")) => concat!(
            "id: 3\nevent: PATIENT_CREATED\ndata: {\"n\":3}\n\n",
            "id: 4\nevent: PATIENT_CREATED\ndata: {\"n\":4}\n\n",
            "event: reauthenticate\ndata: {\"reason\":\"revoked\"}\n\n",
        ),
        (Some("Bearer t3"), Some("4")) => "id: 5\nevent: PATIENT_CREATED\ndata: {\"n\":5}\n\n",
        _ => return StatusCode::UNAUTHORIZED.into_response(),
    };
    ([("content-type", "text/event-stream")], body).into_response()
}

async fn expiring_refresh(
    State(s): State<Expiring>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let presented = body["refreshToken"].as_str().unwrap_or_default().to_owned();
    s.refreshes.lock().unwrap().push(presented.clone());
    if s.revoked {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let n: u32 = presented.trim_start_matches('r').parse().unwrap_or(0);
    axum::Json(serde_json::json!({
        "token": format!("t{}", n + 1),
        "refreshToken": format!("r{}", n + 1),
        "expiresIn": 900,
        "tokenType": "Bearer",
    }))
    .into_response()
}

async fn expiring_server(state: Expiring) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route(EVENT_STREAM_PATH, get(expiring_stream))
        .route("/auth/refresh", axum::routing::post(expiring_refresh))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

fn session_client(base: &str) -> ApiClient {
    let session = crate::credentials::Session {
        server: base.to_owned(),
        email: "a@pms.test".into(),
        role: None,
        access_token: "t1".into(),
        refresh_token: "r1".into(),
        expires_at: chrono::Utc::now() + chrono::TimeDelta::minutes(10),
    };
    ApiClient::new(
        base,
        Credentials::Session {
            session,
            persistence: None,
        },
    )
    .unwrap()
}

fn from_start() -> StreamStart {
    StreamStart {
        event_type: None,
        last_event_id: None,
        since: None,
    }
}

#[tokio::test]
async fn reauthenticate_refreshes_and_resumes_without_a_gap() {
    let state = Expiring::default();
    let base = expiring_server(state.clone()).await;
    let client = session_client(&base);
    let mut ids = Vec::new();
    let mut notices = Vec::new();
    let err = tail(
        &client,
        from_start(),
        fast(),
        |e| {
            ids.push(e.id.clone().unwrap());
            if ids.len() == 5 {
                return Err(Error::Other("enough".into()));
            }
            Ok(())
        },
        |n| notices.push(n.clone()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "enough");
    assert_eq!(ids, ["1", "2", "3", "4", "5"], "each once, in order");
    assert_eq!(
        state.streams.lock().unwrap().clone(),
        [
            (Some("Bearer t1".into()), None),
            (Some("Bearer t2".into()), Some("2".into())),
            (Some("Bearer t3".into()), Some("4".into())),
        ],
        "a fresh token each time, resuming after the last delivered event"
    );
    assert_eq!(state.refreshes.lock().unwrap().clone(), ["r1", "r2"]);
    match &notices[0] {
        TailNotice::Disconnected { reason, retry_in } => {
            assert_eq!(
                reason,
                "the server asked to re-authenticate: the access token expired"
            );
            assert_eq!(*retry_in, Duration::ZERO, "at once");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        notices[1],
        TailNotice::Reconnected {
            attempt: 0,
            after: Some("2".into())
        }
    );
    assert!(
        matches!(&notices[2], TailNotice::Disconnected { reason, .. } if reason.ends_with("the access token was revoked")),
        "{notices:?}"
    );
}

#[tokio::test]
async fn reauthenticate_with_a_revoked_session_ends_with_the_auth_error() {
    let state = Expiring {
        revoked: true,
        ..Expiring::default()
    };
    let base = expiring_server(state.clone()).await;
    let mut ids = Vec::new();
    let err = tail(
        &session_client(&base),
        from_start(),
        fast(),
        |e| {
            ids.push(e.id.clone().unwrap());
            Ok(())
        },
        |_| {},
    )
    .await
    .unwrap_err();
    // The `pms` binary presents this as "… run `pms login`" with the auth exit code.
    assert!(matches!(err, Error::SessionExpired), "{err:?}");
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(state.refreshes.lock().unwrap().len(), 1, "one try, no loop");
    assert_eq!(state.streams.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn reauthenticate_with_pms_token_says_the_token_was_rejected() {
    let base = expiring_server(Expiring::default()).await;
    let client = ApiClient::new(&base, Credentials::Token("t1".into())).unwrap();
    let err = tail(&client, from_start(), fast(), |_| Ok(()), |_| {})
        .await
        .unwrap_err();
    // A rejected PMS_TOKEN: the `pms` binary names it in its message (exit code 4).
    assert!(
        matches!(
            &err,
            Error::Api { status, source_kind: crate::error::TokenSource::Environment, .. }
                if *status == reqwest::StatusCode::UNAUTHORIZED
        ),
        "{err:?}"
    );
}
