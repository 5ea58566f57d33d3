//! The one error type of the client library: typed, with the HTTP status, the server's
//! problem+json body and the underlying causes kept.
//!
//! The library decides *what* went wrong, never how to tell a user: `Display` is a short,
//! neutral line. Advice ("run `pms login`") and exit codes belong to the front ends — the `pms`
//! binary (`commands/present.rs`) and `pms-tui` render their own messages from these variants.

use std::sync::Arc;
use std::time::Duration;

use pms_proto::rest::Problem;
pub use reqwest::StatusCode;

/// Where the access token of a request came from (it decides the advice on a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `PMS_TOKEN`.
    Environment,
    /// The stored session of a profile.
    Session,
    /// No token (login, refresh, public endpoints).
    None,
}

/// Everything that can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be made (refused, DNS, TLS, timeout).
    #[error("cannot reach {url} ({reason})")]
    Unreachable {
        /// The origin tried.
        url: String,
        /// The innermost cause, phrased by the transport ("Connection refused").
        reason: String,
        #[source]
        source: Option<Arc<reqwest::Error>>,
    },

    /// The server answered with an error status.
    #[error("{}", api_summary(*.status, .problem.as_deref()))]
    Api {
        status: StatusCode,
        /// The problem+json body, when the server sent one.
        problem: Option<Box<Problem>>,
        /// What was being done ("patient 4f0c…"), for 404 messages.
        context: Option<String>,
        /// Which token the request carried.
        source_kind: TokenSource,
        /// `Retry-After` of a 429/503, when the server sent one.
        retry_after: Option<Duration>,
    },

    /// No stored session for the profile and no `PMS_TOKEN`.
    #[error("not logged in{}", profile_suffix(.profile))]
    NotLoggedIn {
        profile: String,
        server: Option<String>,
    },

    /// The refresh token was refused: the session is over.
    #[error("session expired or revoked")]
    SessionExpired,

    /// The stored session belongs to another server than the one asked for.
    #[error("profile `{profile}` is logged in to {session_server}, not {requested}")]
    ServerMismatch {
        profile: String,
        session_server: String,
        requested: String,
    },

    /// Bad input the caller must fix (a flag, a file, a setting).
    #[error("{0}")]
    Usage(String),

    /// A local lookup found nothing.
    #[error("{0}")]
    NotFound(String),

    /// The OS keyring could not be used and a file is not allowed.
    #[error("{0}")]
    Keyring(String),

    /// A request body could not be serialised (a bug in the caller's type, never sent).
    #[error("cannot encode the body of {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: Arc<serde_json::Error>,
    },

    /// The answer could not be understood.
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },

    /// Local file and terminal I/O.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this is a closed stdout (`pms … | head`): not an error for the user.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's problem body, for API errors that carried one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Api { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: the server is unreachable or failed (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Api { status, .. } => status.is_server_error(),
            _ => false,
        }
    }

    /// Whether the user has to log in (again) to go on.
    pub fn needs_login(&self) -> bool {
        match self {
            Error::NotLoggedIn { .. } | Error::SessionExpired => true,
            Error::Api {
                status,
                source_kind,
                ..
            } => *status == StatusCode::UNAUTHORIZED && *source_kind == TokenSource::Session,
            _ => false,
        }
    }
}

/// Crate-wide result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn profile_suffix(profile: &str) -> String {
    if profile == "default" {
        String::new()
    } else {
        format!(" (profile `{profile}`)")
    }
}

/// Why the server refused: its detail and per-field errors, else its title, else the reason
/// phrase of the status. Front ends build their sentences around this.
pub fn problem_reason(status: StatusCode, problem: Option<&Problem>) -> String {
    let detail = problem
        .and_then(|p| p.detail.clone())
        .filter(|d| !d.is_empty());
    let fields = problem
        .map(|p| {
            p.errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    match (detail, fields.is_empty()) {
        (Some(d), true) => d,
        // One bad field: the server's detail already is `field: message`; say it once.
        (Some(d), false) if d.contains(&fields) => d,
        (Some(d), false) if fields.contains(&d) => fields,
        (Some(d), false) => format!("{d} ({fields})"),
        (None, false) => fields,
        (None, true) => problem
            .map(|p| p.title.clone())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("HTTP error").to_owned()),
    }
}

fn api_summary(status: StatusCode, problem: Option<&Problem>) -> String {
    format!(
        "HTTP {}: {}",
        status.as_u16(),
        problem_reason(status, problem)
    )
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let left = when.to_utc() - chrono::Utc::now();
    Some(left.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pms_proto::rest::FieldError;

    #[test]
    fn api_errors_keep_status_and_problem_and_read_neutrally() {
        let problem = Problem {
            type_: "about:blank".into(),
            title: "Bad Request".into(),
            status: 400,
            detail: Some("invalid patient".into()),
            errors: vec![FieldError {
                field: "email".into(),
                message: "not a valid email".into(),
            }],
            request_id: None,
        };
        let e = Error::Api {
            status: StatusCode::BAD_REQUEST,
            problem: Some(Box::new(problem)),
            context: None,
            source_kind: TokenSource::Session,
            retry_after: None,
        };
        assert_eq!(e.status(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(e.problem().map(|p| p.errors.len()), Some(1));
        assert_eq!(
            e.to_string(),
            "HTTP 400: invalid patient (email: not a valid email)"
        );
        assert!(!e.to_string().contains("pms login"));
        assert!(!e.is_transient());
    }

    #[test]
    fn a_single_field_error_is_said_once() {
        let message = "1990-02-30 is not a valid calendar date";
        let problem = Problem {
            type_: "about:blank".into(),
            title: "Bad Request".into(),
            status: 400,
            detail: Some(format!("dateOfBirth: {message}")),
            errors: vec![FieldError {
                field: "dateOfBirth".into(),
                message: message.into(),
            }],
            request_id: None,
        };
        assert_eq!(
            problem_reason(StatusCode::BAD_REQUEST, Some(&problem)),
            format!("dateOfBirth: {message}")
        );
    }

    #[test]
    fn transient_and_login_classification() {
        let down = Error::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "Connection refused".into(),
            source: None,
        };
        assert!(down.is_transient());
        let api = |status, source_kind| Error::Api {
            status,
            problem: None,
            context: None,
            source_kind,
            retry_after: None,
        };
        assert!(api(StatusCode::BAD_GATEWAY, TokenSource::Session).is_transient());
        assert!(!api(StatusCode::NOT_FOUND, TokenSource::Session).is_transient());
        assert!(api(StatusCode::UNAUTHORIZED, TokenSource::Session).needs_login());
        assert!(!api(StatusCode::UNAUTHORIZED, TokenSource::Environment).needs_login());
        assert!(Error::SessionExpired.needs_login());
        assert_eq!(
            api(StatusCode::NOT_FOUND, TokenSource::None).to_string(),
            "HTTP 404: Not Found"
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        let later = (chrono::Utc::now() + chrono::TimeDelta::seconds(120)).to_rfc2822();
        let left = parse_retry_after(&later).unwrap();
        assert!(left > Duration::from_secs(100) && left <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
