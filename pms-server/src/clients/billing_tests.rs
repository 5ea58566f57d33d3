//! [`BillingClient`] over real sockets against a scripted fake billing server: what is retried,
//! what is not, deadlines, the retry budget and metadata forwarding. Timings are printed, never
//! asserted tightly (only against the 2 s that patient creation may take at most).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use pms_proto::billing::billing_service_server::{BillingService, BillingServiceServer};
use pms_proto::billing::{BillingResponse, GetBillingAccountRequest};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response};

use super::*;

/// What the fake answers.
#[derive(Clone, Copy)]
enum Script {
    /// UNAVAILABLE for the first `n` calls, then success.
    UnavailableFirst(u32),
    /// Always this error.
    Fail(Code),
    /// Never answers in time.
    Hang,
    /// The handler panics.
    Panic,
}

/// The `authorization` and `x-request-id` metadata of every call the fake received.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

struct Fake {
    script: Script,
    calls: Arc<AtomicU32>,
    seen: Seen,
    /// The peer address of every call.
    peers: Arc<Mutex<Vec<Option<SocketAddr>>>>,
}

#[tonic::async_trait]
impl BillingService for Fake {
    async fn create_billing_account(
        &self,
        request: Request<BillingRequest>,
    ) -> Result<Response<BillingResponse>, Status> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let header = |name| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = (header("authorization"), header("x-request-id"));
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.remote_addr());
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(seen);
        match self.script {
            Script::UnavailableFirst(k) if n <= k => Err(Status::unavailable("warming up")),
            Script::Fail(code) => Err(Status::new(code, "scripted failure")),
            Script::Hang => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Err(Status::internal("unreachable"))
            }
            Script::Panic => panic!("scripted panic"),
            Script::UnavailableFirst(_) => Ok(Response::new(BillingResponse {
                account_id: Uuid::nil().to_string(),
                status: "ACTIVE".to_owned(),
            })),
        }
    }

    async fn get_billing_account(
        &self,
        _: Request<GetBillingAccountRequest>,
    ) -> Result<Response<BillingAccount>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
}

struct Server {
    addr: SocketAddr,
    calls: Arc<AtomicU32>,
    seen: Seen,
}

async fn fake(script: Script) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = Fake {
        script,
        calls: calls.clone(),
        seen: seen.clone(),
        peers: Arc::default(),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(BillingServiceServer::new(service))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    Server { addr, calls, seen }
}

fn client(addr: SocketAddr) -> BillingClient {
    BillingClient::new(&format!("http://{addr}")).expect("client")
}

/// An address nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

#[tokio::test]
async fn a_closed_port_fails_fast_with_unavailable_after_bounded_retries() {
    let client = client(closed_port().await);
    let started = Instant::now();
    let err = client
        .create_billing_account(Uuid::new_v4(), "n", "e", &CallContext::default())
        .await
        .expect_err("nothing listens");
    let elapsed = started.elapsed();
    println!("closed port: {err} after {elapsed:?}");
    assert!(
        matches!(err, BillingClientError::Unavailable { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), Code::Unavailable);
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn unavailable_is_retried_until_it_succeeds() {
    let server = fake(Script::UnavailableFirst(2)).await;
    let started = Instant::now();
    let created = client(server.addr)
        .create_billing_account(Uuid::new_v4(), "n", "e", &CallContext::default())
        .await
        .expect("third attempt succeeds");
    println!("two retries took {:?}", started.elapsed());
    assert_eq!(
        created,
        CreatedAccount {
            account_id: Uuid::nil(),
            status: AccountStatus::Active
        }
    );
    assert_eq!(server.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    for code in [
        Code::InvalidArgument,
        Code::Unauthenticated,
        Code::Internal,
        Code::Unknown,
    ] {
        let server = fake(Script::Fail(code)).await;
        let err = client(server.addr)
            .create_billing_account(Uuid::new_v4(), "n", "e", &CallContext::default())
            .await
            .expect_err("scripted failure");
        assert!(
            matches!(&err, BillingClientError::Rejected { code: c, .. } if *c == code),
            "{err:?}"
        );
        assert_eq!(server.calls.load(Ordering::SeqCst), 1, "{code:?} retried");
    }
}

#[tokio::test]
async fn a_hanging_server_hits_the_deadline_once() {
    let server = fake(Script::Hang).await;
    let config = BillingClientConfig {
        attempt_timeout: Duration::from_millis(300),
        ..BillingClientConfig::default()
    };
    let client =
        BillingClient::with_config(&format!("http://{}", server.addr), config).expect("client");
    let started = Instant::now();
    let err = client
        .create_billing_account(Uuid::new_v4(), "n", "e", &CallContext::default())
        .await
        .expect_err("deadline");
    let elapsed = started.elapsed();
    println!("hanging server: {err} after {elapsed:?}");
    assert!(
        matches!(err, BillingClientError::DeadlineExceeded(_)),
        "{err:?}"
    );
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn the_retry_budget_caps_retries_during_an_outage() {
    let server = fake(Script::Fail(Code::Unavailable)).await;
    let config = BillingClientConfig {
        retry_burst: 2,
        retry_ratio: 0.2,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..BillingClientConfig::default()
    };
    let client =
        BillingClient::with_config(&format!("http://{}", server.addr), config).expect("client");
    for _ in 0..20 {
        let err = client
            .create_billing_account(Uuid::new_v4(), "n", "e", &CallContext::default())
            .await
            .expect_err("outage");
        assert_eq!(err.code(), Code::Unavailable);
    }
    let calls = server.calls.load(Ordering::SeqCst);
    // 20 calls; retries limited to the burst of 2 plus 20% of calls (4), instead of 2 per call.
    println!("20 calls during an outage made {calls} attempts");
    assert!((20..=26).contains(&calls), "{calls} attempts");
}

#[tokio::test]
async fn the_token_and_request_id_are_forwarded() {
    let server = fake(Script::UnavailableFirst(0)).await;
    let ctx = CallContext::bearer("tok.en.value").with_request_id(Some("req-1"));
    client(server.addr)
        .create_billing_account(Uuid::new_v4(), "n", "e", &ctx)
        .await
        .expect("ok");
    let seen = server.seen.lock().unwrap_or_else(PoisonError::into_inner);
    assert_eq!(
        seen.as_slice(),
        [(
            Some("Bearer tok.en.value".to_owned()),
            Some("req-1".to_owned())
        )]
    );
    assert!(
        !format!("{ctx:?}").contains("tok.en.value"),
        "token in Debug"
    );
}

#[tokio::test]
async fn in_process_calls_reach_the_bound_service_as_remote_ones_do() {
    let billing = InProcessBilling::default();
    let client = BillingClient::in_process(&billing);
    // Not bound yet: billing is not running, which is UNAVAILABLE (retried, then given up).
    let err = client
        .create_billing_account(Uuid::new_v4(), "n", "e", &CallContext::default())
        .await
        .expect_err("nothing bound");
    assert!(
        matches!(err, BillingClientError::Unavailable { .. }),
        "{err:?}"
    );
    let (calls, seen, peers) = (Arc::default(), Seen::default(), Arc::default());
    billing.bind(BillingServiceServer::new(Fake {
        script: Script::UnavailableFirst(1),
        calls: Arc::clone(&calls),
        seen: Arc::clone(&seen),
        peers: Arc::clone(&peers),
    }));
    let ctx = CallContext::bearer("tok.en.value").with_request_id(Some("req-2"));
    let created = client
        .create_billing_account(Uuid::new_v4(), "n", "e", &ctx)
        .await
        .expect("the retry succeeds");
    assert_eq!(created.status, AccountStatus::Active);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one UNAVAILABLE, one retry"
    );
    let expected = (
        Some("Bearer tok.en.value".to_owned()),
        Some("req-2".to_owned()),
    );
    assert_eq!(
        seen.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_slice(),
        [expected.clone(), expected]
    );
    let loopback = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    assert_eq!(
        peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_slice(),
        [loopback, loopback],
        "billing audits a loopback caller"
    );
    // Other codes are not retried, as over the network.
    let failing = InProcessBilling::default();
    failing.bind(BillingServiceServer::new(Fake {
        script: Script::Fail(Code::InvalidArgument),
        calls: Arc::default(),
        seen: Seen::default(),
        peers: Arc::default(),
    }));
    let err = BillingClient::in_process(&failing)
        .create_billing_account(Uuid::new_v4(), "n", "e", &CallContext::default())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // A panicking handler fails the call (INTERNAL, not retried); it does not unwind into the
    // caller.
    let panicking = InProcessBilling::default();
    panicking.bind(BillingServiceServer::new(Fake {
        script: Script::Panic,
        calls: Arc::default(),
        seen: Seen::default(),
        peers: Arc::default(),
    }));
    let err = BillingClient::in_process(&panicking)
        .create_billing_account(Uuid::new_v4(), "n", "e", &CallContext::default())
        .await
        .expect_err("panicked");
    assert_eq!(err.code(), Code::Internal, "{err:?}");
}

#[tokio::test]
async fn bad_urls_are_refused_and_good_ones_never_connect_eagerly() {
    for bad in ["", "not a url", "ftp://host:1", "http://"] {
        assert!(
            matches!(
                BillingClient::new(bad),
                Err(BillingClientError::InvalidUrl { .. })
            ),
            "{bad:?}"
        );
    }
    // Lazy: constructing a client for a dead address succeeds at once.
    BillingClient::new("http://127.0.0.1:1").expect("lazy client");
}

#[test]
fn the_budget_allows_a_burst_then_a_fraction_of_calls() {
    let budget = RetryBudget::new(0.25, 2);
    assert!(budget.try_withdraw() && budget.try_withdraw());
    assert!(!budget.try_withdraw());
    for _ in 0..4 {
        budget.deposit();
    }
    assert!(budget.try_withdraw());
    assert!(!budget.try_withdraw());
    for _ in 0..1000 {
        budget.deposit();
    }
    assert!(budget.try_withdraw() && budget.try_withdraw());
    assert!(!budget.try_withdraw(), "savings are capped at the burst");
}

#[tokio::test]
async fn backoff_grows_with_jitter_and_is_capped() {
    let client = BillingClient::new("http://127.0.0.1:1").expect("client");
    for attempt in 1..=10 {
        let exp = Duration::from_millis(50 * (1 << (attempt - 1))).min(Duration::from_millis(400));
        let backoff = client.backoff(attempt);
        assert!(
            backoff >= exp / 2 && backoff <= exp,
            "{attempt}: {backoff:?}"
        );
    }
}
