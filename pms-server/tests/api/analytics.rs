//! Analytics through the gateway: events flow patient → outbox → log → analytics; summary,
//! registrations, stored events and the live SSE stream with `Last-Event-ID` resume.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{BACKENDS, TestApp, spawn_app_on};

async fn create_patient(app: &TestApp, token: &str) -> String {
    let response = app
        .client
        .post(app.url("/api/patients"))
        .bearer_auth(token)
        .json(&json!({
            "name": "Stream Sam",
            "email": format!("sam-{}@example.com", uuid::Uuid::new_v4().simple()),
            "address": "1 Main St",
            "dateOfBirth": "1985-05-05",
            "registeredDate": "2024-01-01"
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Reads Server-Sent Events from a streaming response.
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

#[derive(Debug)]
struct SseEvent {
    id: String,
    event: String,
    data: Value,
}

impl SseReader {
    fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (heartbeat comments skipped), or None after `wait`.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(SseEvent {
                    id,
                    event,
                    data: serde_json::from_str(&data).expect("json data"),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??
                .expect("stream chunk");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn open_stream(
    app: &TestApp,
    token: &str,
    query: &str,
    last_event_id: Option<&str>,
) -> SseReader {
    let mut request = app
        .client
        .get(app.url(&format!("/api/analytics/events/stream{query}")))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("stream");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    SseReader::new(response)
}

#[tokio::test]
async fn live_stream_delivers_new_events_and_resumes_without_gaps() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let token = app.admin_token().await;
        let mut live = open_stream(&app, &token, "?type=PATIENT_CREATED", None).await;
        let started = tokio::time::Instant::now();
        let first = create_patient(&app, &token).await;
        let event = live
            .next(Duration::from_secs(5))
            .await
            .expect("event for the create");
        println!("{backend:?}: create → SSE event in {:?}", started.elapsed());
        assert_eq!(event.event, "PATIENT_CREATED");
        assert_eq!(event.data["data"]["patientId"], first.as_str());
        assert_eq!(
            event.data["seq"].to_string(),
            event.id,
            "the SSE id is the seq"
        );
        assert!(
            !event.data.to_string().contains("Stream Sam"),
            "no names in analytics"
        );
        drop(live);

        // Missed while disconnected: exactly these come back on resume, in order.
        let missed = [
            create_patient(&app, &token).await,
            create_patient(&app, &token).await,
        ];
        let mut resumed = open_stream(&app, &token, "?type=PATIENT_CREATED", Some(&event.id)).await;
        for id in &missed {
            let e = resumed
                .next(Duration::from_secs(5))
                .await
                .expect("replayed event");
            assert_eq!(e.data["data"]["patientId"], id.as_str());
        }
        assert!(
            resumed.next(Duration::from_millis(500)).await.is_none(),
            "no duplicates after the replay"
        );
        // Shutdown ends open streams instead of waiting for clients to leave.
        app.stop().await;
        assert!(
            resumed.next(Duration::from_secs(5)).await.is_none(),
            "the stream ends at shutdown"
        );
    }
}

async fn eventually_json(
    app: &TestApp,
    token: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let body: Value = app
            .client
            .get(app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never reached the expected state");
}

#[tokio::test]
async fn summary_registrations_and_stored_events_match_what_was_done() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let token = app.admin_token().await;
        let ids = [
            create_patient(&app, &token).await,
            create_patient(&app, &token).await,
            create_patient(&app, &token).await,
        ];
        let deleted = app
            .client
            .delete(app.url(&format!("/api/patients/{}", ids[0])))
            .bearer_auth(&token)
            .send()
            .await
            .expect("delete");
        assert_eq!(deleted.status(), 204);

        let summary = eventually_json(&app, &token, "/api/analytics/summary", |s| {
            s["patients"]["total"] == 3 && s["patients"]["active"] == 2
        })
        .await;
        assert_eq!(summary["patients"]["newToday"], 3);
        assert_eq!(summary["patients"]["new7d"], 3);

        let today = chrono::Utc::now().date_naive();
        let path = format!(
            "/api/analytics/registrations?from={}&to={today}&bucket=day",
            today - chrono::Duration::days(2)
        );
        let buckets: Value = app
            .client
            .get(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let counts: Vec<i64> = buckets
            .as_array()
            .expect("array")
            .iter()
            .map(|b| b["count"].as_i64().expect("count"))
            .collect();
        assert_eq!(counts, [0, 0, 3]);
        let bad = app
            .client
            .get(app.url("/api/analytics/registrations?bucket=year"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(bad.status(), 400);

        // Paged by `after`, every stored patient event exactly once.
        let mut seen = Vec::new();
        let mut next =
            Some("/api/analytics/events?limit=2&type=PATIENT_CREATED,PATIENT_DELETED".to_owned());
        while let Some(path) = next {
            let response = app
                .client
                .get(app.url(&path))
                .bearer_auth(&token)
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 200);
            next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| {
                    l.strip_prefix('<')
                        .and_then(|l| l.split_once('>'))
                        .map(|(u, _)| u.to_owned())
                });
            let page: Vec<Value> = response.json().await.expect("json");
            seen.extend(page.into_iter().map(|e| {
                (
                    e["type"].as_str().unwrap_or("").to_owned(),
                    e["key"].as_str().unwrap_or("").to_owned(),
                )
            }));
        }
        let mut expected: Vec<(String, String)> = ids
            .iter()
            .map(|id| ("PATIENT_CREATED".to_owned(), id.clone()))
            .collect();
        expected.push(("PATIENT_DELETED".to_owned(), ids[0].clone()));
        assert_eq!(seen, expected);
        app.stop().await;
    }
}

#[tokio::test]
async fn analytics_needs_a_token() {
    let app = spawn_app_on(BACKENDS[0]).await;
    for path in [
        "/api/analytics/summary",
        "/api/analytics/events",
        "/api/analytics/events/stream",
    ] {
        assert_eq!(
            app.client
                .get(app.url(path))
                .send()
                .await
                .expect("send")
                .status(),
            401,
            "{path}"
        );
    }
    app.stop().await;
}
