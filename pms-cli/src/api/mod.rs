//! `ApiClient`: the one REST client of PMS (the CLI, the TUI and the end-to-end tests use it).
//!
//! It knows the gateway's base URL and where the access token comes from: `PMS_TOKEN` (used as
//! is), a stored session (refreshed transparently shortly before it expires and once more on a
//! 401, the rotated tokens handed back to the caller's [`SessionPersistence`]), or none. Every
//! error becomes a typed [`crate::Error`]: the status, the problem+json body and the causes are
//! kept; front ends phrase them.

mod analytics;
mod auth;
mod billing;
mod lookup;
pub mod origin;
mod paging;
mod patients;
mod raw;

pub use analytics::{EVENT_STREAM_PATH, StreamStart};
pub use auth::jwt_expiry;
pub use lookup::{InvoiceKey, PatientKey, UserKey};
pub use paging::{Page, next_link};
pub use patients::{AuditFilter, PatientQuery, Tagged, etag_for};
pub use raw::RawResponse;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pms_proto::rest::{Problem, RefreshRequest, TokenResponse};
use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::credentials::Session;
use crate::error::{Error, Result, TokenSource};

/// Refresh the access token when it has less than this left.
const REFRESH_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(30);
/// Whole-request limit for ordinary calls (event streams have none).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Receives a session whenever its tokens rotate (the refresh token is single use: losing the
/// new one ends the session), and offers the latest stored copy.
pub trait SessionPersistence: Send + Sync {
    /// Stores the refreshed session. Failures are the implementation's to report.
    fn save(&self, session: &Session);
    /// The stored session now (another process may have refreshed it meanwhile).
    fn reload(&self) -> Option<Session>;
}

/// Where the client's access token comes from.
pub enum Credentials {
    /// No token (login, refresh, public endpoints).
    None,
    /// `PMS_TOKEN`: used as is, never refreshed, never stored.
    Token(String),
    /// A logged-in session, refreshed as needed.
    Session {
        session: Session,
        persistence: Option<Arc<dyn SessionPersistence>>,
    },
}

enum Auth {
    None,
    Static(String),
    Session {
        state: Mutex<Session>,
        persistence: Option<Arc<dyn SessionPersistence>>,
    },
}

/// The PMS REST client. Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    /// `base` parsed: the one origin this client's credentials may go to.
    base_url: url::Url,
    auth: Auth,
}

/// One request to the API.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// A path under the base (`/api/patients`) or an absolute URL on the same origin (any
    /// other origin is refused: the client's credentials never leave its server).
    pub target: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Option<Value>,
    /// What the request is about ("patient 0193…"), for a 404 message.
    pub context: Option<String>,
    /// No overall timeout (event streams).
    pub streaming: bool,
    /// Why [`ApiRequest::json`] could not encode the body: [`ApiClient::send`] fails with it.
    pub encode_error: Option<Arc<serde_json::Error>>,
}

impl ApiRequest {
    /// A request with no query, headers or body.
    pub fn new(method: Method, target: impl Into<String>) -> ApiRequest {
        ApiRequest {
            method,
            target: target.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            context: None,
            streaming: false,
            encode_error: None,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: impl ToString) -> ApiRequest {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> ApiRequest {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets a JSON body. A body that cannot be encoded is reported by [`ApiClient::send`]
    /// (as [`Error::Encode`]) instead of silently sending none.
    pub fn json(mut self, body: &impl serde::Serialize) -> ApiRequest {
        match serde_json::to_value(body) {
            Ok(value) => self.body = Some(value),
            Err(e) => self.encode_error = Some(Arc::new(e)),
        }
        self
    }

    /// Names what the request is about, for a 404.
    pub fn about(mut self, what: impl Into<String>) -> ApiRequest {
        self.context = Some(what.into());
        self
    }
}

impl ApiClient {
    /// A client for the gateway at `base` (`http://127.0.0.1:4004`).
    pub fn new(base: &str, credentials: Credentials) -> Result<ApiClient> {
        let base = base.trim_end_matches('/').to_owned();
        let base_url = url::Url::parse(&base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "invalid server URL `{base}`: expected http(s)://host[:port]"
                ))
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(origin::same_origin_redirects())
            // Per read: event streams stay open; the server's heartbeats keep them alive.
            .read_timeout(Duration::from_secs(45))
            .user_agent(concat!("pms-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Other(format!("cannot build the HTTP client: {e}")))?;
        let auth = match credentials {
            Credentials::None => Auth::None,
            Credentials::Token(token) => Auth::Static(token),
            Credentials::Session {
                session,
                persistence,
            } => Auth::Session {
                state: Mutex::new(session),
                persistence,
            },
        };
        Ok(ApiClient {
            inner: Arc::new(Inner {
                http,
                base,
                base_url,
                auth,
            }),
        })
    }

    /// The gateway base URL (no trailing slash).
    pub fn base(&self) -> &str {
        &self.inner.base
    }

    /// The gateway base URL, parsed.
    pub fn base_url(&self) -> url::Url {
        self.inner.base_url.clone()
    }

    /// Where this client's token comes from.
    pub fn token_source(&self) -> TokenSource {
        match self.inner.auth {
            Auth::None => TokenSource::None,
            Auth::Static(_) => TokenSource::Environment,
            Auth::Session { .. } => TokenSource::Session,
        }
    }

    /// The current session (after any refresh), for session clients.
    pub async fn session(&self) -> Option<Session> {
        match &self.inner.auth {
            Auth::Session { state, .. } => Some(state.lock().await.clone()),
            _ => None,
        }
    }

    /// A valid access token, refreshing the session first when it is about to expire.
    pub async fn access_token(&self) -> Result<Option<String>> {
        self.token(None).await
    }

    /// Refreshes the session now, whatever its expiry says: the server ended a stream because
    /// the access token expired or was revoked. A refused refresh is
    /// [`Error::SessionExpired`]; a `PMS_TOKEN` (or no token) cannot be renewed, which is the
    /// 401 it would get.
    pub async fn reauthenticate(&self) -> Result<()> {
        match &self.inner.auth {
            Auth::Session { state, persistence } => {
                let mut session = state.lock().await;
                self.refresh_session(&mut session, persistence.as_ref())
                    .await
            }
            Auth::Static(_) | Auth::None => Err(Error::Api {
                status: reqwest::StatusCode::UNAUTHORIZED,
                problem: None,
                context: None,
                source_kind: self.token_source(),
                retry_after: None,
            }),
        }
    }

    /// `rejected`: the token a 401 came back for (refresh unless it already changed).
    async fn token(&self, rejected: Option<&str>) -> Result<Option<String>> {
        match &self.inner.auth {
            Auth::None => Ok(None),
            Auth::Static(token) => Ok(Some(token.clone())),
            Auth::Session { state, persistence } => {
                let mut session = state.lock().await;
                let stale = match rejected {
                    Some(token) => token == session.access_token,
                    None => session.expires_at - Utc::now() < REFRESH_MARGIN,
                };
                if stale {
                    self.refresh_session(&mut session, persistence.as_ref())
                        .await?;
                }
                Ok(Some(session.access_token.clone()))
            }
        }
    }

    async fn refresh_session(
        &self,
        session: &mut Session,
        persistence: Option<&Arc<dyn SessionPersistence>>,
    ) -> Result<()> {
        if let Some(persistence) = persistence {
            let p = persistence.clone();
            let stored = tokio::task::spawn_blocking(move || p.reload())
                .await
                .ok()
                .flatten();
            if let Some(stored) = stored {
                // Another process already rotated the tokens: use its result, never re-use ours.
                if stored.refresh_token != session.refresh_token
                    && stored.expires_at - Utc::now() >= REFRESH_MARGIN
                {
                    *session = stored;
                    return Ok(());
                }
            }
        }
        let tokens = match self.refresh(&session.refresh_token).await {
            Ok(tokens) => tokens,
            Err(Error::Api { status, .. })
                if status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED =>
            {
                return Err(Error::SessionExpired);
            }
            Err(e) => return Err(e),
        };
        session.access_token = tokens.token;
        session.refresh_token = tokens.refresh_token;
        session.expires_at = expires_at(tokens.expires_in);
        if let Some(persistence) = persistence {
            let p = persistence.clone();
            let copy = session.clone();
            let _ = tokio::task::spawn_blocking(move || p.save(&copy)).await;
        }
        Ok(())
    }

    /// `POST /auth/refresh`: rotates the refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse> {
        let request = ApiRequest::new(Method::POST, "/auth/refresh").json(&RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        });
        self.send_unauthenticated(request).await?.json().await
    }

    /// Whether `url` is on this client's origin (scheme, host and port of the base URL): the
    /// only place its credentials may be sent.
    pub fn is_own_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| origin::same_origin(&u, &self.inner.base_url))
    }

    /// The URL of a request target; anything outside the client's origin is refused.
    fn url(&self, target: &str) -> Result<url::Url> {
        let url = origin::resolve(&self.inner.base_url, target)
            .map_err(|e| Error::Other(format!("invalid request target `{target}`: {e}")))?;
        if !origin::same_origin(&url, &self.inner.base_url) {
            return Err(Error::Other(format!(
                "refusing to send a request to {}: it is not the server this client talks to ({}), and credentials go to no other origin",
                url.origin().ascii_serialization(),
                self.inner.base_url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// Sends a request with the client's token; on a 401 refreshes the session once and
    /// retries. Error statuses become [`Error::Api`].
    pub async fn send(&self, request: ApiRequest) -> Result<ApiResponse> {
        if let Some(source) = &request.encode_error {
            return Err(Error::Encode {
                what: format!("{} {}", request.method, request.target),
                source: source.clone(),
            });
        }
        let token = self.token(None).await?;
        let response = self.execute(&request, token.as_deref()).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && matches!(self.inner.auth, Auth::Session { .. })
        {
            let retry_token = self.token(token.as_deref()).await?;
            let retried = self.execute(&request, retry_token.as_deref()).await?;
            return self.check(retried, &request).await;
        }
        self.check(response, &request).await
    }

    async fn send_unauthenticated(&self, request: ApiRequest) -> Result<ApiResponse> {
        if let Some(source) = &request.encode_error {
            return Err(Error::Encode {
                what: format!("{} {}", request.method, request.target),
                source: source.clone(),
            });
        }
        let response = self.execute(&request, None).await?;
        let mut checked = self.check(response, &request).await;
        if let Err(Error::Api { source_kind, .. }) = &mut checked {
            *source_kind = TokenSource::None;
        }
        checked
    }

    async fn execute(
        &self,
        request: &ApiRequest,
        token: Option<&str>,
    ) -> Result<reqwest::Response> {
        let url = self.url(&request.target)?;
        let mut builder = self.inner.http.request(request.method.clone(), url);
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        if !request.streaming {
            builder = builder.timeout(REQUEST_TIMEOUT);
        }
        builder
            .send()
            .await
            .map_err(|e| transport_error(&self.inner.base, e))
    }

    async fn check(
        &self,
        response: reqwest::Response,
        request: &ApiRequest,
    ) -> Result<ApiResponse> {
        let status = response.status();
        if status.is_success() {
            return Ok(ApiResponse {
                url: response.url().to_string(),
                response,
            });
        }
        if status.is_redirection() {
            // Only a redirect to another origin is left unfollowed (see `origin`).
            let location = header_text(response.headers(), reqwest::header::LOCATION);
            return Err(Error::Other(format!(
                "the server answered {status} with a redirect to {location}, another origin: not followed, so no credentials go there. If that is the server, point --server / PMS_SERVER at it"
            )));
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::error::parse_retry_after);
        // An unreadable error body still leaves the status to report.
        let bytes = response.bytes().await.unwrap_or_default();
        let problem = serde_json::from_slice::<Problem>(&bytes).ok().map(Box::new);
        Err(Error::Api {
            status,
            problem,
            context: request.context.clone(),
            source_kind: self.token_source(),
            retry_after,
        })
    }
}

/// A successful response.
pub struct ApiResponse {
    response: reqwest::Response,
    url: String,
}

impl ApiResponse {
    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The HTTP status (2xx).
    pub fn status(&self) -> reqwest::StatusCode {
        self.response.status()
    }

    /// The underlying response (streaming bodies).
    pub fn into_inner(self) -> reqwest::Response {
        self.response
    }

    /// Decodes a JSON body.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T> {
        let url = self.url;
        let bytes = self
            .response
            .bytes()
            .await
            .map_err(|e| transport_error(&url, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url,
            reason: e.to_string(),
        })
    }
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no Location)")
        .to_owned()
}

/// When a token that lives `expires_in` seconds from now expires.
pub fn expires_at(expires_in: u64) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::TimeDelta::seconds(i64::try_from(expires_in).unwrap_or(i64::MAX / 2))
}

/// A transport failure as an [`Error`]: connection problems and timeouts are "unreachable"
/// and name the innermost cause ("Connection refused").
fn transport_error(url: &str, e: reqwest::Error) -> Error {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        reason = inner.to_string();
        source = inner.source();
    }
    if e.is_timeout() {
        reason = format!("timed out: {reason}");
    }
    if e.is_connect() || e.is_timeout() || e.is_request() {
        let base = url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| url.to_owned());
        Error::Unreachable {
            url: base,
            reason,
            source: Some(Arc::new(e)),
        }
    } else {
        Error::Other(format!("request to {url} failed: {reason}"))
    }
}

#[cfg(test)]
mod origin_tests;
