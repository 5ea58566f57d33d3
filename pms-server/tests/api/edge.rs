//! The edge of every listener: header-read, idle and request timeouts, the connection cap, the
//! request-head size limit, path normalization at the gateway, a non-public `/metrics`, and
//! security headers. Raw sockets where a client library would tidy the request up first.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pms_proto::rest::Role;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

/// Far above every configured timeout in this module: a test that reaches it has failed.
const PATIENCE: Duration = Duration::from_secs(20);

fn gateway_addr(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("gateway address")
}

/// Reads until the server closes the connection (EOF or reset); panics after [`PATIENCE`].
async fn read_until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the server closes the connection")
        {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` verbatim (it should say `Connection: close`) and returns the whole answer.
async fn raw_exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    read_until_closed(&mut stream).await
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

fn short_timeouts(settings: &mut pms_server::config::Settings) {
    settings.http.header_read_timeout = Duration::from_secs(1);
    settings.http.request_timeout = Duration::from_secs(1);
}

#[tokio::test]
async fn a_connection_trickling_header_lines_is_closed() {
    let app = spawn_app_with(Backend::Sqlite, short_timeouts).await;
    for addr in [gateway_addr(&app), app.patient_addr] {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut read, mut write) = stream.into_split();
        let started = Instant::now();
        let trickle = tokio::spawn(async move {
            // One header line every 200 ms, never the blank line that ends the head.
            let mut line: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: pms\r\n";
            while write.write_all(line).await.is_ok() {
                line = b"X-Slow: 1\r\n";
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let answer = read_until_closed(&mut read).await;
        let lasted = started.elapsed();
        trickle.abort();
        assert!(
            lasted >= Duration::from_millis(900),
            "{addr}: closed by the header-read timeout, not before it: {lasted:?}"
        );
        assert!(
            answer.is_empty() || !(200..300).contains(&status_of(&answer)),
            "{addr}: no request was served: {answer:?}"
        );
        println!("{addr}: slow-loris connection closed after {lasted:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(Backend::Sqlite, short_timeouts).await;
    let mut stream = TcpStream::connect(gateway_addr(&app))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: pms\r\n\r\n")
        .await
        .expect("send");
    // The response first (keep-alive: the connection stays open after it)…
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains(r#"{"status":"UP"}"#) {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed before the response");
        received.extend_from_slice(&buf[..n]);
    }
    assert_eq!(status_of(&String::from_utf8_lossy(&received)), 200);
    let idle_since = Instant::now();
    // …then nothing: the server closes the idle connection.
    let rest = read_until_closed(&mut stream).await;
    assert_eq!(rest, "", "nothing more was sent");
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(900),
        "kept while within the limit: {idle:?}"
    );
    println!("idle keep-alive connection closed after {idle:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_request_body_that_never_ends_gets_503_within_the_request_timeout() {
    let app = spawn_app_with(Backend::Sqlite, short_timeouts).await;
    let token = app.admin_token().await;
    let request = format!(
        "POST /api/patients HTTP/1.1\r\nHost: pms\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    let answer = raw_exchange(gateway_addr(&app), &request).await;
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(
        answer.contains("application/problem+json"),
        "problem+json: {answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_at_once() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.max_connections = 3;
    })
    .await;
    let addr = gateway_addr(&app);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Accepted in order: the fourth is over the cap, answered 503 and closed without a request.
    let mut fourth = TcpStream::connect(addr).await.expect("connect");
    let answer = read_until_closed(&mut fourth).await;
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(answer.contains("too many open connections"), "{answer}");

    // A connection that closes frees its place.
    drop(held.pop());
    let mut served = None;
    for _ in 0..100 {
        let answer = raw_exchange(
            addr,
            "GET /health/live HTTP/1.1\r\nHost: pms\r\nConnection: close\r\n\r\n",
        )
        .await;
        // Empty: refused and reset before the answer could be read.
        if answer.starts_with("HTTP/1.1 200") {
            served = Some(answer);
            break;
        }
        // The server has not seen the close yet.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served.is_some(), "a place became free");
    drop(held);
    app.stop().await;
}

#[tokio::test]
async fn normal_requests_and_live_streams_are_unaffected_by_the_timeouts() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        short_timeouts(s);
        s.analytics.heartbeat = Duration::from_secs(1);
    })
    .await;
    let token = app.admin_token().await;
    let listed = app
        .client
        .get(app.url("/api/patients"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(listed.status(), 200);

    let stream = app
        .client
        .get(app.url("/api/analytics/events/stream"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let opened = Instant::now();
    let mut chunks = stream.bytes_stream();
    let mut heartbeats_after_the_timeouts = 0;
    // Well past both 1 s timeouts, heartbeats keep arriving on the same stream.
    while opened.elapsed() < Duration::from_millis(3500) {
        let chunk = tokio::time::timeout(PATIENCE, chunks.next())
            .await
            .expect("a heartbeat in time")
            .expect("the stream stays open")
            .expect("chunk");
        if opened.elapsed() > Duration::from_secs(2)
            && String::from_utf8_lossy(&chunk).contains("heartbeat")
        {
            heartbeats_after_the_timeouts += 1;
        }
    }
    assert!(
        heartbeats_after_the_timeouts >= 1,
        "the stream outlived the request and header-read timeouts"
    );
    drop(chunks);
    app.stop().await;
}

#[tokio::test]
async fn oversized_request_heads_get_431_problems() {
    let app = spawn_app().await;
    let limit = app.settings.http.max_header_bytes;
    for base in [app.base.clone(), format!("http://{}", app.patient_addr)] {
        let fits = app
            .client
            .get(format!("{base}/health/live"))
            .header("x-filler", "a".repeat(limit - 1024))
            .send()
            .await
            .expect("send");
        assert_eq!(fits.status(), 200, "{base}: a head within the limit");
        let too_big = app
            .client
            .get(format!("{base}/health/live"))
            .header("x-filler", "a".repeat(limit))
            .send()
            .await
            .expect("send");
        assert_eq!(too_big.status(), 431, "{base}");
        assert_eq!(
            too_big
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{base}"
        );
        let body: serde_json::Value = too_big.json().await.expect("json");
        assert_eq!(body["status"], 431);
    }
    app.stop().await;
}

#[tokio::test]
async fn encoded_dot_segments_and_slashes_are_refused_at_the_gateway() {
    let app = spawn_app().await;
    let (_, _, viewer) = app.user_with_role(Role::Viewer).await;
    for path in [
        "/api/patients/%2e%2e/metrics",
        "/api/billing/%2e%2e/openapi.json",
        "/api/patients/%2E./metrics",
        "/api/patients/.%2e/openapi.json",
        "/api/patients/../metrics",
        "/api/analytics/%2e%2e/%2e%2e/metrics",
        "/api/patients/x%2f..%2fmetrics",
        "/api/patients/x%5c..%5cmetrics",
    ] {
        // Sent as is: an HTTP client library would resolve the dots before sending.
        let answer = raw_exchange(
            gateway_addr(&app),
            &format!(
                "GET {path} HTTP/1.1\r\nHost: pms\r\nAuthorization: Bearer {viewer}\r\n\
                 Connection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status_of(&answer), 400, "{path}: {answer}");
        assert!(
            answer.contains("application/problem+json"),
            "{path}: {answer}"
        );
        assert!(!answer.contains("http_requests_total"), "{path}: {answer}");
    }
    // Unreserved characters may be encoded: the same route, normalized.
    let answer = raw_exchange(
        gateway_addr(&app),
        &format!(
            "GET /api/%70atients HTTP/1.1\r\nHost: pms\r\nAuthorization: Bearer {viewer}\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(
        status_of(&answer),
        404,
        "not a route of the gateway: {answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn gateway_metrics_need_the_metrics_token_or_admin() {
    let metrics_token = format!("metrics-{}", uuid::Uuid::new_v4().simple());
    let configured = metrics_token.clone();
    let app = spawn_app_with(Backend::Sqlite, move |s| {
        s.http.metrics_token = Some(SecretString::from(configured));
    })
    .await;
    let metrics = app.url("/metrics");
    let anonymous = app.client.get(&metrics).send().await.expect("send");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().get("www-authenticate").is_some());
    let wrong = app
        .client
        .get(&metrics)
        .bearer_auth(format!("{metrics_token}x"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    let (_, _, viewer) = app.user_with_role(Role::Viewer).await;
    let as_viewer = app
        .client
        .get(&metrics)
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("send");
    assert_eq!(as_viewer.status(), 403);

    let admin = app.admin_token().await;
    for token in [metrics_token.as_str(), admin.as_str()] {
        let allowed = app
            .client
            .get(&metrics)
            .bearer_auth(token)
            .send()
            .await
            .expect("send");
        assert_eq!(allowed.status(), 200);
        assert_eq!(
            allowed
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/plain; version=0.0.4")
        );
        let text = allowed.text().await.expect("text");
        assert!(text.contains("http_requests_total"), "{text}");
    }
    // A service's own (internal) port keeps serving it to its scraper.
    let internal = app
        .client
        .get(format!("http://{}/metrics", app.patient_addr))
        .send()
        .await
        .expect("send");
    assert_eq!(internal.status(), 200);
    app.stop().await;
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for path in [
        "/api/patients",
        "/api/billing/accounts",
        "/auth/me",
        "/api/audit",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            header(&response, "cache-control"),
            Some("no-store"),
            "{path}"
        );
        assert_eq!(
            header(&response, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    let refused = app
        .client
        .get(app.url("/api/patients"))
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "cache-control"), Some("no-store"));
    assert_eq!(header(&refused, "x-content-type-options"), Some("nosniff"));
    let direct = app
        .client
        .get(format!("http://{}/patients", app.patient_addr))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(direct.status(), 200);
    assert_eq!(header(&direct, "cache-control"), Some("no-store"));
    assert_eq!(header(&direct, "x-content-type-options"), Some("nosniff"));

    let docs = app.client.get(app.url("/docs")).send().await.expect("send");
    assert_eq!(docs.status(), 200);
    assert_eq!(header(&docs, "x-content-type-options"), Some("nosniff"));
    let csp = header(&docs, "content-security-policy")
        .expect("CSP on /docs")
        .to_owned();
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "only this origin: {csp}"
    );
    let page = docs.text().await.expect("page");
    // Everything the page loads is allowed by the CSP: the assets and its own init script.
    for src in page
        .split(['"', '\''])
        .filter(|s| s.starts_with("http") || s.starts_with('/'))
    {
        assert!(src.starts_with("/docs"), "{src} is allowed by the CSP");
    }
    assert!(!page.contains("<script>"), "no inline script: {page}");
    let init = app
        .client
        .get(app.url("/docs/swagger-init.js"))
        .send()
        .await
        .expect("send");
    assert_eq!(init.status(), 200);
    assert_eq!(
        header(&init, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let script = init.text().await.expect("script");
    assert!(script.contains("persistAuthorization: false"), "{script}");
    assert!(script.contains("url: '/api-docs/' + api"), "{script}");
    app.stop().await;
}
