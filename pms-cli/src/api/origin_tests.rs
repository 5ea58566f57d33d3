//! Credentials stay on the configured origin, proven with real local listeners that record
//! every request they get: next-page links and redirects to another port (one whose number
//! merely starts with the server's) or another host name for the same machine receive nothing.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::Value;

use super::{ApiClient, ApiRequest, Credentials};

const TOKEN: &str = "secret-token-4f0c";

/// What one request looked like: path and query, and its `Authorization` header.
type Seen = (String, Option<String>);

/// A listener that records every request and answers by `respond(path_and_query)`.
#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    respond: Arc<dyn Fn(&str) -> Response + Send + Sync>,
}

impl Recorder {
    fn start(
        listener: StdListener,
        respond: impl Fn(&str) -> Response + Send + Sync + 'static,
    ) -> Recorder {
        let recorder = Recorder {
            seen: Arc::default(),
            respond: Arc::new(respond),
        };
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let app = Router::new().fallback(record).with_state(recorder.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        recorder
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn record(State(recorder): State<Recorder>, request: Request) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    recorder.seen.lock().unwrap().push((target.clone(), auth));
    (recorder.respond)(&target)
}

/// Two listeners where the second's port starts with the first's digits (4004 → 40041): the
/// string-prefix bug's exact shape.
fn prefix_ports() -> (StdListener, StdListener) {
    for first in 1100u16..6553 {
        let Ok(a) = StdListener::bind(("127.0.0.1", first)) else {
            continue;
        };
        for digit in 0..10u16 {
            if let Ok(b) = StdListener::bind(("127.0.0.1", first * 10 + digit)) {
                return (a, b);
            }
        }
    }
    panic!("no free pair of ports");
}

fn port(listener: &StdListener) -> u16 {
    listener.local_addr().unwrap().port()
}

fn page(next: Option<String>) -> Response {
    let mut response =
        (StatusCode::OK, [("content-type", "application/json")], "[]").into_response();
    if let Some(next) = next {
        response.headers_mut().insert(
            "link",
            HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")).unwrap(),
        );
    }
    response
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::TEMPORARY_REDIRECT,
        [("location", to.to_owned())],
    )
        .into_response()
}

fn client(port: u16) -> ApiClient {
    ApiClient::new(
        &format!("http://127.0.0.1:{port}"),
        Credentials::Token(TOKEN.into()),
    )
    .unwrap()
}

fn bearer() -> Option<String> {
    Some(format!("Bearer {TOKEN}"))
}

#[tokio::test]
async fn a_next_page_link_to_another_port_or_host_gets_no_token() {
    let (a, b) = prefix_ports();
    let (pa, pb) = (port(&a), port(&b));
    let links = [
        format!("http://127.0.0.1:{pb}/api/patients?cursor=2"),
        format!("http://localhost:{pa}/api/patients?cursor=2"),
        format!("//localhost:{pa}/api/patients?cursor=2"),
        format!("https://127.0.0.1:{pa}/api/patients?cursor=2"),
    ];
    let next = Arc::new(Mutex::new(String::new()));
    let shown = next.clone();
    let server = Recorder::start(a, move |_| page(Some(shown.lock().unwrap().clone())));
    let other = Recorder::start(b, |_| page(None));
    let client = client(pa);
    for (i, link) in links.iter().enumerate() {
        *next.lock().unwrap() = link.clone();
        let err = client
            .pages::<Value>(ApiRequest::new(Method::GET, "/api/patients"), true)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("refusing to follow a next-page link to another origin"),
            "{link}: {err}"
        );
        assert_eq!(
            server.seen(),
            vec![("/api/patients".to_owned(), bearer()); i + 1],
            "{link}: only the first page was asked for (a link to localhost would land here)"
        );
    }
    assert_eq!(other.seen(), vec![], "the prefix-sharing port got nothing");
}

#[tokio::test]
async fn next_page_links_on_the_same_origin_are_followed_with_the_token() {
    let (a, _) = prefix_ports();
    let pa = port(&a);
    let server = Recorder::start(a, move |target| match target {
        "/api/patients" => page(Some("/api/patients?cursor=2".into())),
        "/api/patients?cursor=2" => {
            page(Some(format!("http://127.0.0.1:{pa}/api/patients?cursor=3")))
        }
        _ => page(None),
    });
    client(pa)
        .pages::<Value>(ApiRequest::new(Method::GET, "/api/patients"), true)
        .await
        .unwrap();
    assert_eq!(
        server.seen(),
        vec![
            ("/api/patients".to_owned(), bearer()),
            ("/api/patients?cursor=2".to_owned(), bearer()),
            ("/api/patients?cursor=3".to_owned(), bearer()),
        ]
    );
}

#[tokio::test]
async fn redirects_to_another_origin_are_not_followed() {
    let (a, b) = prefix_ports();
    let (pa, pb) = (port(&a), port(&b));
    let server = Recorder::start(a, move |target| match target {
        "/to-other-port" => redirect(&format!("http://127.0.0.1:{pb}/api/patients")),
        "/to-other-host" => redirect(&format!("http://localhost:{pa}/api/patients")),
        "/same-origin" => redirect("/api/patients"),
        _ => page(None),
    });
    let other = Recorder::start(b, |_| page(None));
    let client = client(pa);
    for target in ["/to-other-port", "/to-other-host"] {
        let err = client
            .page::<Value>(ApiRequest::new(Method::GET, target))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("another origin: not followed"),
            "{target}: {err}"
        );
        assert!(matches!(err, crate::Error::Other(_)), "{target}: {err:?}");
    }
    // `pms request` sends through the same client: the 3xx is its answer, nothing follows.
    let raw = client
        .execute_raw(
            Method::GET,
            &format!("http://127.0.0.1:{pa}/to-other-port"),
            &[("authorization".into(), format!("Bearer {TOKEN}"))],
            None,
        )
        .await
        .unwrap();
    assert_eq!(raw.status, 307);
    assert_eq!(other.seen(), vec![], "the other port got no request at all");
    // A redirect within the origin is followed, token and all.
    client
        .page::<Value>(ApiRequest::new(Method::GET, "/same-origin"))
        .await
        .unwrap();
    assert_eq!(
        server.seen(),
        vec![
            ("/to-other-port".to_owned(), bearer()),
            ("/to-other-host".to_owned(), bearer()),
            ("/to-other-port".to_owned(), bearer()),
            ("/same-origin".to_owned(), bearer()),
            ("/api/patients".to_owned(), bearer()),
        ],
        "the localhost redirect (same listener, other host name) was not followed"
    );
}

#[tokio::test]
async fn requests_aimed_at_another_origin_are_refused_before_sending() {
    let (a, b) = prefix_ports();
    let (pa, pb) = (port(&a), port(&b));
    let server = Recorder::start(a, |_| page(None));
    let other = Recorder::start(b, |_| page(None));
    let err = client(pa)
        .send(ApiRequest::new(
            Method::GET,
            format!("http://127.0.0.1:{pb}/api/patients"),
        ))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("refusing to send a request"),
        "{err}"
    );
    assert_eq!(server.seen(), vec![]);
    assert_eq!(other.seen(), vec![]);
}
