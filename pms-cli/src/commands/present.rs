//! How `pms` tells a user about an [`Error`]: the one actionable line printed after `error: `
//! and the process exit code. The library's errors are typed and neutral; this module is the
//! only place that adds CLI advice ("run `pms login`") and decides exit statuses.

use pms_cli::Error;
use pms_cli::error::{StatusCode, TokenSource, problem_reason};

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
    pub fn from_status(status: StatusCode) -> ExitCode {
        match status.as_u16() {
            401 | 403 => ExitCode::Auth,
            404 | 410 => ExitCode::NotFound,
            400 | 409 | 412 | 422 | 428 | 429 => ExitCode::Rejected,
            502..=504 => ExitCode::Unavailable,
            _ => ExitCode::Error,
        }
    }
}

/// The process exit code for an error.
pub fn exit_code(e: &Error) -> ExitCode {
    match e {
        Error::Unreachable { .. } => ExitCode::Unavailable,
        Error::Api { status, .. } => ExitCode::from_status(*status),
        Error::NotLoggedIn { .. } | Error::SessionExpired | Error::ServerMismatch { .. } => {
            ExitCode::Auth
        }
        Error::Usage(_) => ExitCode::Usage,
        Error::NotFound(_) => ExitCode::NotFound,
        Error::Keyring(_)
        | Error::Encode { .. }
        | Error::Decode { .. }
        | Error::Io { .. }
        | Error::Other(_) => ExitCode::Error,
    }
}

/// The one line printed after `error: `: what happened, why, and what to do.
pub fn message(e: &Error) -> String {
    match e {
        Error::Unreachable { url, reason, .. } => format!(
            "cannot reach {url} ({reason}): is the server running? Start it with `pms-server`, or point --server / PMS_SERVER at it"
        ),
        Error::Api {
            status,
            problem,
            context,
            source_kind,
            retry_after,
        } => api_message(
            *status,
            problem.as_deref(),
            context.as_deref(),
            *source_kind,
            *retry_after,
        ),
        Error::NotLoggedIn { server, .. } => {
            let hint = match server {
                Some(server) => format!(" --server {server}, or set PMS_TOKEN"),
                None => " (or set PMS_TOKEN)".to_owned(),
            };
            format!("{e}: run `pms login`{hint}")
        }
        Error::SessionExpired => format!("{e}: run `pms login`"),
        Error::ServerMismatch { requested, .. } => {
            format!("{e}: run `pms login --server {requested}` (or use --profile)")
        }
        other => other.to_string(),
    }
}

fn api_message(
    status: StatusCode,
    problem: Option<&pms_proto::rest::Problem>,
    context: Option<&str>,
    source: TokenSource,
    retry_after: Option<std::time::Duration>,
) -> String {
    let why = problem_reason(status, problem);
    match status.as_u16() {
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
        429 => match retry_after {
            Some(wait) => format!(
                "too many requests: {why} (try again in {} s)",
                wait.as_secs().max(1)
            ),
            None => format!("too many requests: {why} (wait and try again)"),
        },
        502..=504 => format!("server unavailable ({}): {why}", status.as_u16()),
        400 => format!("invalid request: {why}"),
        422 => format!("rejected: {why}"),
        _ => format!("server error {}: {why}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use pms_proto::rest::{FieldError, Problem};

    fn api(status: u16, problem: Option<Problem>, source: TokenSource) -> Error {
        Error::Api {
            status: StatusCode::from_u16(status).unwrap(),
            problem: problem.map(Box::new),
            context: None,
            source_kind: source,
            retry_after: None,
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
            let e = api(status, None, TokenSource::Session);
            assert_eq!(exit_code(&e).code(), code, "status {status}");
        }
    }

    #[test]
    fn local_errors_map_to_their_exit_codes() {
        let unreachable = Error::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
            source: None,
        };
        assert_eq!(exit_code(&unreachable), ExitCode::Unavailable);
        assert_eq!(exit_code(&Error::SessionExpired), ExitCode::Auth);
        let not_logged_in = Error::NotLoggedIn {
            profile: "default".into(),
            server: None,
        };
        assert_eq!(exit_code(&not_logged_in), ExitCode::Auth);
        assert_eq!(exit_code(&Error::Usage("x".into())), ExitCode::Usage);
        assert_eq!(exit_code(&Error::NotFound("x".into())), ExitCode::NotFound);
        assert_eq!(exit_code(&Error::Keyring("x".into())), ExitCode::Error);
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
            message(&api(400, Some(problem), TokenSource::Session)),
            "invalid request: invalid patient (email: not a valid email; dateOfBirth: must not be in the future)"
        );
        assert_eq!(
            message(&api(401, None, TokenSource::Session)),
            "session expired or missing: run `pms login`"
        );
        assert_eq!(
            message(&api(401, None, TokenSource::Environment)),
            "the token in PMS_TOKEN was rejected (Unauthorized): set a valid access token"
        );
        let missing = Error::Api {
            status: StatusCode::NOT_FOUND,
            problem: None,
            context: Some("patient 42".into()),
            source_kind: TokenSource::Session,
            retry_after: None,
        };
        assert_eq!(message(&missing), "patient 42 not found");
        let unreachable = Error::Unreachable {
            url: "http://127.0.0.1:4004".into(),
            reason: "connection refused".into(),
            source: None,
        };
        assert!(message(&unreachable).starts_with(
            "cannot reach http://127.0.0.1:4004 (connection refused): is the server running?"
        ));
        for e in [unreachable, Error::SessionExpired] {
            assert!(!message(&e).contains('\n'));
        }
        assert_eq!(
            message(&Error::SessionExpired),
            "session expired or revoked: run `pms login`"
        );
        assert_eq!(
            message(&Error::NotLoggedIn {
                profile: "staging".into(),
                server: None
            }),
            "not logged in (profile `staging`): run `pms login` (or set PMS_TOKEN)"
        );
        assert_eq!(
            message(&Error::ServerMismatch {
                profile: "default".into(),
                session_server: "http://a".into(),
                requested: "http://b".into(),
            }),
            "profile `default` is logged in to http://a, not http://b: run `pms login --server http://b` (or use --profile)"
        );
    }

    #[test]
    fn too_many_requests_says_when_to_retry() {
        let throttled = |retry_after| Error::Api {
            status: StatusCode::TOO_MANY_REQUESTS,
            problem: None,
            context: None,
            source_kind: TokenSource::None,
            retry_after,
        };
        assert_eq!(
            message(&throttled(Some(Duration::from_secs(30)))),
            "too many requests: Too Many Requests (try again in 30 s)"
        );
        assert_eq!(
            message(&throttled(None)),
            "too many requests: Too Many Requests (wait and try again)"
        );
        assert_eq!(exit_code(&throttled(None)), ExitCode::Rejected);
    }
}
