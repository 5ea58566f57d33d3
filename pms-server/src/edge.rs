//! The edge of every HTTP listener. Per connection ([`serve`]): a cap on open connections and a
//! deadline for each request head, which also closes idle keep-alive connections. Per request
//! (layers added by [`crate::http::with_common_layers`]): a bound on the head's size, a deadline
//! until the response starts, and security headers.
//!
//! `axum::serve` offers no timeouts or limits, so connections are served here with hyper's
//! HTTP/1.1 connection builder, which is what `axum::serve` runs inside, with the same graceful
//! shutdown: stop accepting, let in-flight requests finish, wait for every connection to close.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::HttpSettings;
use crate::error::{ApiError, problem_response};

/// Connection-level limits of one listener (from `http.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time to deliver a complete request head, from when the connection starts waiting for one.
    pub header_read_timeout: Duration,
    /// Open connections; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// Request heads up to about this size reach the per-request check (which answers 431
    /// problem+json); far larger ones are refused by hyper while parsing.
    pub max_header_bytes: usize,
}

impl From<&HttpSettings> for ConnectionLimits {
    fn from(http: &HttpSettings) -> Self {
        ConnectionLimits {
            header_read_timeout: http.header_read_timeout,
            max_connections: http.max_connections,
            max_header_bytes: http.max_header_bytes,
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::from(&HttpSettings::default())
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` fires, then drains: in-flight
/// requests finish, idle connections close, and this returns once every connection is gone.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        // hyper starts this timer whenever the connection waits for a request head: on accept
        // and again after each response, so it bounds idle keep-alive time as well.
        .header_read_timeout(limits.header_read_timeout)
        // The read buffer bounds what one head can occupy before it is parsed: room for a head
        // somewhat over the limit, so that the 431 comes as problem+json from the layer.
        .max_buf_size((2 * limits.max_header_bytes).max(64 * 1024));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Each connection task holds a receiver; `closed()` resolves when the last one is dropped.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(&stream);
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let http1 = http1.clone();
        let shutdown = shutdown.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut conn = pin!(http1.serve_connection(TokioIo::new(stream), service));
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                // Timeouts, resets and malformed requests: the client's business, not ours.
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// Errors of one `accept` concern one connection, except running out of file descriptors: then
/// pause briefly instead of spinning (what `axum::serve` does too).
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Answers a connection over the cap with 503 and closes it. Best effort and never waiting: a
/// client whose socket cannot take the bytes at once just sees the connection close.
fn refuse(stream: &TcpStream) {
    const BODY: &str = r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"too many open connections; try again shortly"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
    metrics::counter!("http_connections_refused_total").increment(1);
    tracing::debug!("connection refused: too many open connections");
}

/// Refuses a request whose header lines together exceed `max` bytes: 431 problem+json.
pub(crate) async fn bound_header_size(max: usize, request: Request, next: Next) -> Response {
    // As on the wire: `name: value\r\n` per line.
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > max {
        let mut response = problem_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Some(format!(
                "request headers take {size} bytes; at most {max} are accepted"
            )),
            Vec::new(),
        );
        close_connection(&mut response);
        return response;
    }
    next.run(request).await
}

/// Answers 503 problem+json when the response has not started within `limit` (request body
/// upload included). A streamed response has started, so an open event stream is not cut.
pub(crate) async fn request_deadline(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("http_requests_timed_out_total").increment(1);
            let mut response = ApiError::Unavailable(format!(
                "the request took longer than {} s; try again",
                limit.as_secs()
            ))
            .into_response();
            close_connection(&mut response);
            response
        }
    }
}

/// The request may not have been read to its end: the connection cannot carry another one.
fn close_connection(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}
