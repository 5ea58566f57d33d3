//! [`BillingClient`]: the gRPC client of the billing service (used by the patient service to
//! create a patient's billing account).
//!
//! Built to never hold up its caller for long, because billing being down must not fail or slow
//! patient registration (DESIGN §8):
//! - the connection is lazy ([`Endpoint::connect_lazy`]): constructing the client never blocks
//!   and never fails because billing is down; it reconnects on its own;
//! - every attempt has a deadline (sent to the server as `grpc-timeout` too), and the whole call,
//!   retries and backoff included, is bounded by [`BillingClientConfig::total_timeout`];
//! - only `UNAVAILABLE` is retried (nothing else is known to be safe and useful to repeat), with
//!   jittered exponential backoff, and only while the retry budget allows: a token bucket that
//!   every call fills by `retry_ratio` and every retry drains by one, so during an outage retries
//!   stay at about `retry_ratio` of calls instead of multiplying the load.
//!
//! The all-in-one server calls billing's gRPC service in process ([`InProcessBilling`]): the same
//! protobuf messages, metadata, deadlines and retries, without HTTP/2 over a loopback socket.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use pms_proto::billing::billing_service_client::BillingServiceClient;
use pms_proto::billing::get_billing_account_request::Key;
use pms_proto::billing::{BillingAccount, BillingRequest, GetBillingAccountRequest};
use pms_proto::rest::AccountStatus;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use tonic::body::Body;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Endpoint;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Status};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceExt};
use uuid::Uuid;

/// Timeouts, retries and the retry budget of a [`BillingClient`].
#[derive(Debug, Clone)]
pub struct BillingClientConfig {
    /// Deadline of one attempt. Default 1 s.
    pub attempt_timeout: Duration,
    /// Bound on the whole call, retries and backoff included. Default 1.5 s.
    pub total_timeout: Duration,
    /// Timeout of establishing a connection. Default 500 ms.
    pub connect_timeout: Duration,
    /// Attempts per call, the first included. Default 3.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles per retry up to `max_backoff`, with jitter (half
    /// fixed, half random). Default 50 ms.
    pub base_backoff: Duration,
    /// Default 400 ms.
    pub max_backoff: Duration,
    /// Retries earned per call. Default 0.2: retries are at most ~20% of calls.
    pub retry_ratio: f64,
    /// Retries available up front and the most that can be saved up. Default 10.
    pub retry_burst: u32,
}

impl Default for BillingClientConfig {
    fn default() -> Self {
        BillingClientConfig {
            attempt_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_millis(1500),
            connect_timeout: Duration::from_millis(500),
            max_attempts: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            retry_ratio: 0.2,
            retry_burst: 10,
        }
    }
}

/// Per-call metadata: the caller's bearer token (forwarded as `authorization`) and request id
/// (`x-request-id`). `CallContext::default()` sends neither.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    bearer: Option<SecretString>,
    request_id: Option<String>,
}

impl CallContext {
    /// Forwards the user's access token.
    pub fn bearer(token: &str) -> Self {
        CallContext {
            bearer: Some(SecretString::from(token.to_owned())),
            request_id: None,
        }
    }

    /// Propagates the request id of the request being served.
    pub fn with_request_id(mut self, request_id: Option<&str>) -> Self {
        self.request_id = request_id.map(str::to_owned);
        self
    }

    fn apply(&self, metadata: &mut MetadataMap) {
        if let Some(token) = &self.bearer {
            match MetadataValue::try_from(format!("Bearer {}", token.expose_secret())) {
                Ok(value) => {
                    metadata.insert("authorization", value);
                }
                Err(_) => tracing::warn!("bearer token is not valid metadata; not forwarded"),
            }
        }
        if let Some(value) = self
            .request_id
            .as_deref()
            .and_then(|id| MetadataValue::try_from(id).ok())
        {
            metadata.insert("x-request-id", value);
        }
    }
}

/// The account `CreateBillingAccount` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedAccount {
    pub account_id: Uuid,
    pub status: AccountStatus,
}

/// Why a billing call failed.
#[derive(Debug, thiserror::Error)]
pub enum BillingClientError {
    /// The configured URL is not a valid gRPC endpoint URL.
    #[error("invalid billing gRPC URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// Billing could not be reached (connection refused, reset, …), also after retrying.
    #[error("the billing service is unavailable ({attempts} attempt(s)): {message}")]
    Unavailable { attempts: u32, message: String },
    /// No answer within the deadline (not retried: the call may have taken effect).
    #[error("the billing service did not answer within {0:?}")]
    DeadlineExceeded(Duration),
    /// Billing answered with an error (invalid argument, unauthenticated, …).
    #[error("the billing service refused the call ({code:?}): {message}")]
    Rejected { code: Code, message: String },
    /// Billing answered with something this client does not understand.
    #[error("the billing service answered with an invalid response: {0}")]
    InvalidResponse(String),
}

impl BillingClientError {
    /// The gRPC code this error corresponds to.
    pub fn code(&self) -> Code {
        match self {
            BillingClientError::InvalidUrl { .. } => Code::InvalidArgument,
            BillingClientError::Unavailable { .. } => Code::Unavailable,
            BillingClientError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            BillingClientError::Rejected { code, .. } => *code,
            BillingClientError::InvalidResponse(_) => Code::Internal,
        }
    }
}

/// Token bucket limiting retries to a fraction of calls.
#[derive(Debug)]
struct RetryBudget {
    ratio: f64,
    max: f64,
    tokens: Mutex<f64>,
}

impl RetryBudget {
    fn new(ratio: f64, burst: u32) -> Self {
        let max = f64::from(burst.max(1));
        RetryBudget {
            ratio: ratio.clamp(0.0, 1.0),
            max,
            tokens: Mutex::new(max),
        }
    }

    /// A call was made: it earns `ratio` of a retry.
    fn deposit(&self) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        *tokens = (*tokens + self.ratio).min(self.max);
    }

    /// May we retry? Spends one token if so.
    fn try_withdraw(&self) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What carries a [`BillingClient`]'s calls: a gRPC channel, or the service in this process.
type Transport = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// A channel's failure to carry a call (connection refused, reset, …). A concrete type rather
/// than a boxed error: the generated client's `Into<StdError>` bound then holds for every
/// lifetime the handlers' futures need. Its source is the channel's error, where tonic finds
/// what makes a call `UNAVAILABLE`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(#[source] BoxError);

/// Billing's gRPC service running in this process, for [`BillingClient::in_process`]: bound once
/// billing is built (the all-in-one server builds billing and patient at the same time); a call
/// before that answers `UNAVAILABLE` like a billing that is not up yet. What the network server
/// added is covered by the client: its deadline (`tokio::time::timeout` per attempt) drops the
/// call's future, and a panic answers `INTERNAL`.
#[derive(Debug, Clone, Default)]
pub struct InProcessBilling(Arc<OnceLock<Transport>>);

impl InProcessBilling {
    /// Binds billing's gRPC service (e.g. `BillingServiceServer`); later binds are ignored.
    pub fn bind<S>(&self, service: S)
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let service = service.map_err(|never: Infallible| -> TransportError { match never {} });
        if self.0.set(BoxCloneSyncService::new(service)).is_err() {
            tracing::warn!("billing's in-process gRPC service was bound twice; kept the first");
        }
    }

    /// The transport calling the bound service. Requests carry a loopback peer address, as a
    /// call over the loopback listener did (billing audits the caller's address).
    fn transport(&self) -> Transport {
        let slot = Arc::clone(&self.0);
        BoxCloneSyncService::new(tower::service_fn(
            move |mut request: http::Request<Body>| {
                let slot = Arc::clone(&slot);
                async move {
                    let Some(service) = slot.get().cloned() else {
                        return Ok(Status::unavailable("billing is not running yet").into_http());
                    };
                    request.extensions_mut().insert(TcpConnectInfo {
                        local_addr: None,
                        remote_addr: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
                    });
                    // Billing runs inside the patient's request here: a panic in it must fail
                    // the call (as a server task's panic did over the network), not unwind
                    // into a create that has already committed.
                    match AssertUnwindSafe(service.oneshot(request))
                        .catch_unwind()
                        .await
                    {
                        Ok(answer) => answer,
                        Err(_) => {
                            tracing::error!("billing's gRPC handler panicked");
                            Ok(Status::internal("billing failed").into_http())
                        }
                    }
                }
            },
        ))
    }
}

/// The billing service's gRPC client. Cheap to clone (clones share the connection and budget).
#[derive(Debug, Clone)]
pub struct BillingClient {
    grpc: BillingServiceClient<Transport>,
    config: Arc<BillingClientConfig>,
    budget: Arc<RetryBudget>,
}

impl BillingClient {
    /// A client of the billing gRPC API at `grpc_url` (`http://host:9001`) with the default
    /// [`BillingClientConfig`]. Never connects here; must be called inside a Tokio runtime.
    pub fn new(grpc_url: &str) -> Result<Self, BillingClientError> {
        Self::with_config(grpc_url, BillingClientConfig::default())
    }

    /// [`BillingClient::new`] with explicit timeouts and retry settings.
    pub fn with_config(
        grpc_url: &str,
        config: BillingClientConfig,
    ) -> Result<Self, BillingClientError> {
        let invalid = |reason: String| BillingClientError::InvalidUrl {
            url: grpc_url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(grpc_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(invalid("expected http://host:port".to_owned()));
        }
        let endpoint = Endpoint::from_shared(grpc_url.to_owned())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true);
        let channel = endpoint
            .connect_lazy()
            .map_err(|e| TransportError(BoxError::from(e)));
        Ok(Self::over(BoxCloneSyncService::new(channel), config))
    }

    /// A client of billing's gRPC service in this process, with the default
    /// [`BillingClientConfig`] (deadlines and retries as over the network).
    pub fn in_process(billing: &InProcessBilling) -> Self {
        Self::over(billing.transport(), BillingClientConfig::default())
    }

    fn over(transport: Transport, config: BillingClientConfig) -> Self {
        BillingClient {
            grpc: BillingServiceClient::new(transport),
            budget: Arc::new(RetryBudget::new(config.retry_ratio, config.retry_burst)),
            config: Arc::new(config),
        }
    }

    /// The patient's billing account, created ACTIVE if it does not exist yet (idempotent on
    /// `patient_id`). `name` and `email` are kept with the account (never logged).
    #[tracing::instrument(name = "billing.create_billing_account", skip_all, fields(%patient_id))]
    pub async fn create_billing_account(
        &self,
        patient_id: Uuid,
        name: &str,
        email: &str,
        ctx: &CallContext,
    ) -> Result<CreatedAccount, BillingClientError> {
        let message = BillingRequest {
            patient_id: patient_id.to_string(),
            name: name.to_owned(),
            email: email.to_owned(),
        };
        let response = self
            .call(message, ctx, |mut grpc, request| async move {
                grpc.create_billing_account(request).await
            })
            .await?;
        let account_id = Uuid::parse_str(&response.account_id).map_err(|_| {
            BillingClientError::InvalidResponse(format!(
                "accountId `{}` is not a UUID",
                response.account_id
            ))
        })?;
        let status = AccountStatus::parse(&response.status).ok_or_else(|| {
            BillingClientError::InvalidResponse(format!("unknown status `{}`", response.status))
        })?;
        Ok(CreatedAccount { account_id, status })
    }

    /// A billing account with its balance, by account id or patient id. Needs a bearer token.
    pub async fn get_billing_account(
        &self,
        key: Key,
        ctx: &CallContext,
    ) -> Result<BillingAccount, BillingClientError> {
        let message = GetBillingAccountRequest { key: Some(key) };
        self.call(message, ctx, |mut grpc, request| async move {
            grpc.get_billing_account(request).await
        })
        .await
    }

    /// One call with deadlines, retries on `UNAVAILABLE` and the retry budget.
    async fn call<M, R, F, Fut>(
        &self,
        message: M,
        ctx: &CallContext,
        mut send: F,
    ) -> Result<R, BillingClientError>
    where
        M: Clone,
        F: FnMut(BillingServiceClient<Transport>, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let config = &self.config;
        let deadline = Instant::now() + config.total_timeout;
        self.budget.deposit();
        let mut attempt = 1;
        loop {
            let timeout = config
                .attempt_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let mut request = tonic::Request::new(message.clone());
            request.set_timeout(timeout);
            ctx.apply(request.metadata_mut());
            let status = match tokio::time::timeout(timeout, send(self.grpc.clone(), request)).await
            {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => return Err(BillingClientError::DeadlineExceeded(timeout)),
            };
            match status.code() {
                Code::Unavailable => {}
                // A tonic server answers CANCELLED when our `grpc-timeout` runs out first.
                Code::DeadlineExceeded | Code::Cancelled => {
                    return Err(BillingClientError::DeadlineExceeded(timeout));
                }
                code => {
                    return Err(BillingClientError::Rejected {
                        code,
                        message: status.message().to_owned(),
                    });
                }
            }
            let unavailable = || BillingClientError::Unavailable {
                attempts: attempt,
                message: status.message().to_owned(),
            };
            let backoff = self.backoff(attempt);
            // Give up when out of attempts, when the backoff would leave no time for another
            // attempt, or when the budget says retries are already too many.
            if attempt >= config.max_attempts
                || Instant::now() + backoff + config.base_backoff >= deadline
                || !self.budget.try_withdraw()
            {
                return Err(unavailable());
            }
            tracing::debug!(attempt, ?backoff, "billing unavailable; retrying");
            tokio::time::sleep(backoff).await;
            attempt += 1;
        }
    }

    /// Exponential backoff before retry number `attempt`, half fixed and half random.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .config
            .base_backoff
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(self.config.max_backoff);
        let half = exp / 2;
        let jitter = rand::thread_rng().gen_range(0..=half.as_micros() as u64);
        half + Duration::from_micros(jitter)
    }
}

#[cfg(test)]
#[path = "billing_tests.rs"]
mod tests;
