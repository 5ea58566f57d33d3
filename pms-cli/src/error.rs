//! The one error type of the client library and the CLI, and the exit code each error maps to.
//!
//! Every failure a command can meet ends up as an [`Error`]; [`Error::exit_code`] is the only
//! place that decides the process exit status, and `Display` is the one actionable line printed
//! after `error: `.

use pms_proto::rest::Problem;

/// Process exit codes of `pms` (documented in `pms help exit-codes` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// Any other error (I/O, unexpected server answer, failed request-file assertion, keyring).
    Error = 1,
    /// Bad command line: unknown flag, missing argument, invalid value.
    Usage = 2,
    /// The thing asked for does not exist (HTTP 404).
    NotFound = 3,
    /// Not logged in, session expired, token rejected, or forbidden (HTTP 401/403).
    Auth = 4,
    /// The server rejected the request: validation, conflict, precondition (HTTP 400/409/412/422/429).
    Rejected = 5,
    /// The server is unreachable or unavailable (connection refused, timeout, HTTP 502/503/504).
    Unavailable = 6,
}

impl ExitCode {
    /// Every code with its one-line meaning, in order (for `pms help exit-codes`).
    pub const ALL: [(ExitCode, &'static str); 7] = [
        (ExitCode::Ok, "success"),
        (
            ExitCode::Error,
            "error (unexpected answer, I/O, keyring, failed request-file assertion)",
        ),
        (
            ExitCode::Usage,
            "usage: unknown command or flag, missing or invalid argument",
        ),
        (ExitCode::NotFound, "not found (HTTP 404)"),
        (
            ExitCode::Auth,
            "not authenticated or forbidden: no session, session expired, bad token (HTTP 401/403)",
        ),
        (
            ExitCode::Rejected,
            "rejected: validation, conflict, precondition failed (HTTP 400/409/412/422/429)",
        ),
        (
            ExitCode::Unavailable,
            "server unreachable or unavailable (connection refused, timeout, HTTP 502/503/504)",
        ),
    ];

    /// The numeric status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code an HTTP error status maps to.
    pub fn from_status(status: u16) -> ExitCode {
        match status {
            401 | 403 => ExitCode::Auth,
            404 | 410 => ExitCode::NotFound,
            400 | 409 | 412 | 422 | 428 | 429 => ExitCode::Rejected,
            502..=504 => ExitCode::Unavailable,
            _ => ExitCode::Error,
        }
    }
}

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
    #[error(
        "cannot reach {url} ({reason}): is the server running? Start it with `pms-server`, or point --server / PMS_SERVER at it"
    )]
    Unreachable { url: String, reason: String },

    /// The server answered with an error status.
    #[error("{}", api_message(*.status, .problem.as_deref(), .context.as_deref(), *.source_kind))]
    Api {
        status: u16,
        problem: Option<Box<Problem>>,
        /// What was being done ("patient 4f0c…"), for 404 messages.
        context: Option<String>,
        source_kind: TokenSource,
    },

    /// No stored session for the profile and no `PMS_TOKEN`.
    #[error("not logged in{}: run `pms login`{}", profile_suffix(.profile), server_hint(.server.as_deref()))]
    NotLoggedIn {
        profile: String,
        server: Option<String>,
    },

    /// The refresh token was refused: the session is over.
    #[error("session expired or revoked: run `pms login`")]
    SessionExpired,

    /// The stored session belongs to another server than the one asked for.
    #[error(
        "profile `{profile}` is logged in to {session_server}, not {requested}: run `pms login --server {requested}` (or use --profile)"
    )]
    ServerMismatch {
        profile: String,
        session_server: String,
        requested: String,
    },

    /// Bad command line or input the user must fix (exit 2).
    #[error("{0}")]
    Usage(String),

    /// A local lookup found nothing (exit 3).
    #[error("{0}")]
    NotFound(String),

    /// The OS keyring could not be used and a file is not allowed.
    #[error("{0}")]
    Keyring(String),

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
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Unreachable { .. } => ExitCode::Unavailable,
            Error::Api { status, .. } => ExitCode::from_status(*status),
            Error::NotLoggedIn { .. } | Error::SessionExpired | Error::ServerMismatch { .. } => {
                ExitCode::Auth
            }
            Error::Usage(_) => ExitCode::Usage,
            Error::NotFound(_) => ExitCode::NotFound,
            Error::Keyring(_) | Error::Decode { .. } | Error::Io { .. } | Error::Other(_) => {
                ExitCode::Error
            }
        }
    }

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
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
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

fn server_hint(server: Option<&str>) -> String {
    match server {
        Some(server) => format!(" --server {server}, or set PMS_TOKEN"),
        None => " (or set PMS_TOKEN)".to_owned(),
    }
}

/// One line for an error status: what happened, why (the problem's detail and field errors),
/// and what to do where there is something to do.
fn api_message(
    status: u16,
    problem: Option<&Problem>,
    context: Option<&str>,
    source: TokenSource,
) -> String {
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
    let title = problem
        .map(|p| p.title.clone())
        .unwrap_or_else(|| default_title(status).to_owned());
    let why = match (detail, fields.is_empty()) {
        (Some(d), true) => d,
        (Some(d), false) => format!("{d} ({fields})"),
        (None, false) => fields,
        (None, true) => title.clone(),
    };
    match status {
        401 => match source {
            TokenSource::Environment => {
                format!("the token in PMS_TOKEN was rejected ({why}): set a valid access token")
            }
            TokenSource::Session => "session expired or missing: run `pms login`".to_owned(),
            TokenSource::None => format!("not authenticated: {why}"),
        },
        403 => format!("forbidden: {why}"),
        404 => match context {
            Some(what) => format!("{what} not found"),
            None => format!("not found: {why}"),
        },
        409 => format!("conflict: {why}"),
        412 => format!(
            "precondition failed: {why} (the record changed since you read it: fetch it again)"
        ),
        429 => format!("too many requests: {why} (wait and try again)"),
        502..=504 => format!("server unavailable ({status}): {why}"),
        400 => format!("invalid request: {why}"),
        422 => format!("rejected: {why}"),
        _ => format!("server error {status}: {why}"),
    }
}

fn default_title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "HTTP error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pms_proto::rest::FieldError;

    fn api(status: u16, problem: Option<Problem>, source: TokenSource) -> Error {
        Error::Api {
            status,
            problem: problem.map(Box::new),
            context: None,
            source_kind: source,
        }
    }

    #[test]
    fn every_status_maps_to_its_exit_code() {
        let cases = [
            (400, 5),
            (401, 4),
            (403, 4),
            (404, 3),
            (409, 5),
            (412, 5),
            (422, 5),
            (429, 5),
            (500, 1),
            (502, 6),
            (503, 6),
            (504, 6),
        ];
        for (status, code) in cases {
            assert_eq!(
                api(status, None, TokenSource::Session).exit_code().code(),
                code,
                "status {status}"
            );
        }
    }

    #[test]
    fn local_errors_map_to_their_exit_codes() {
        let unreachable = Error::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(unreachable.exit_code(), ExitCode::Unavailable);
        assert_eq!(Error::SessionExpired.exit_code(), ExitCode::Auth);
        assert_eq!(
            Error::NotLoggedIn {
                profile: "default".into(),
                server: None
            }
            .exit_code(),
            ExitCode::Auth
        );
        assert_eq!(Error::Usage("x".into()).exit_code(), ExitCode::Usage);
        assert_eq!(Error::NotFound("x".into()).exit_code(), ExitCode::NotFound);
        assert_eq!(Error::Keyring("x".into()).exit_code(), ExitCode::Error);
        assert_eq!(
            ExitCode::ALL.map(|(c, _)| c.code()),
            [0, 1, 2, 3, 4, 5, 6],
            "documented table is complete and ordered"
        );
    }

    #[test]
    fn messages_are_one_actionable_line() {
        let problem = Problem {
            type_: "about:blank".into(),
            title: "Bad Request".into(),
            status: 400,
            detail: Some("invalid patient".into()),
            errors: vec![
                FieldError {
                    field: "email".into(),
                    message: "not a valid email".into(),
                },
                FieldError {
                    field: "dateOfBirth".into(),
                    message: "must not be in the future".into(),
                },
            ],
            request_id: None,
        };
        assert_eq!(
            api(400, Some(problem), TokenSource::Session).to_string(),
            "invalid request: invalid patient (email: not a valid email; dateOfBirth: must not be in the future)"
        );
        assert_eq!(
            api(401, None, TokenSource::Session).to_string(),
            "session expired or missing: run `pms login`"
        );
        assert_eq!(
            api(401, None, TokenSource::Environment).to_string(),
            "the token in PMS_TOKEN was rejected (Unauthorized): set a valid access token"
        );
        let missing = Error::Api {
            status: 404,
            problem: None,
            context: Some("patient 42".into()),
            source_kind: TokenSource::Session,
        };
        assert_eq!(missing.to_string(), "patient 42 not found");
        let unreachable = Error::Unreachable {
            url: "http://127.0.0.1:4004".into(),
            reason: "connection refused".into(),
        };
        assert!(unreachable.to_string().starts_with(
            "cannot reach http://127.0.0.1:4004 (connection refused): is the server running?"
        ));
        for e in [unreachable, Error::SessionExpired] {
            assert!(!e.to_string().contains('\n'));
        }
        assert_eq!(
            Error::NotLoggedIn {
                profile: "staging".into(),
                server: None
            }
            .to_string(),
            "not logged in (profile `staging`): run `pms login` (or set PMS_TOKEN)"
        );
    }
}
