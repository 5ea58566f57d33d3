//! The HTTP edge's one error type. Every variant documents its status; every body is RFC 9457
//! problem+json. 5xx log the cause chain and answer with a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pms_proto::rest::{FieldError, PROBLEM_JSON, Problem};

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed or invalid input; `errors` names each bad field.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 401: missing, expired or invalid credentials. Sets `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: conflicts with the current state (duplicate email, …).
    #[error("{0}")]
    Conflict(String),
    /// 412: `If-Match` names a stale version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but semantically refused.
    #[error("{0}")]
    Unprocessable(String),
    /// 429 with `Retry-After`.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    /// 502: an upstream answered with garbage or not at all (gateway).
    #[error("{0}")]
    BadGateway(String),
    /// 503: a dependency is down.
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: the server is saturated (e.g. password hashing) and sheds this
    /// request rather than queueing it without bound.
    #[error("{detail}")]
    Overloaded {
        detail: String,
        retry_after_secs: u64,
    },
    /// 500: a bug or an unexpected failure; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// 400 with one field error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::BadRequest {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        }
    }

    /// 400 with several field errors (empty → plain 400).
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("{}: {}", errors[0].field, errors[0].message),
            n => format!("{n} fields are invalid"),
        };
        ApiError::BadRequest { detail, errors }
    }

    /// 400 without field details.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) | ApiError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Builds a problem+json response (also used by layers that are not handlers).
pub fn problem_response(
    status: StatusCode,
    detail: Option<String>,
    errors: Vec<FieldError>,
) -> Response {
    let problem = Problem {
        type_: "about:blank".to_owned(),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        errors,
        request_id: None,
    };
    let mut response = (status, axum::Json(problem)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (detail, errors) = match self {
            ApiError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                (
                    Some("internal error; see the server log for this request id".to_owned()),
                    Vec::new(),
                )
            }
            ApiError::BadRequest { detail, errors } => (Some(detail), errors),
            ApiError::TooManyRequests {
                ref detail,
                retry_after_secs,
            }
            | ApiError::Overloaded {
                ref detail,
                retry_after_secs,
            } => {
                let mut response = problem_response(status, Some(detail.clone()), Vec::new());
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                return response;
            }
            ApiError::Unauthorized(detail) => {
                let mut response = problem_response(status, Some(detail), Vec::new());
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="pms", error="invalid_token""#),
                );
                return response;
            }
            other => (Some(other.to_string()), Vec::new()),
        };
        problem_response(status, detail, errors)
    }
}

/// Failures of a service's store. Every `sqlx::Error` converts with `?` ([`From`]), which is
/// where database errors are classified, once, for both backends.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint (or a store's own uniqueness rule, such as the last admin) refused the
    /// write; carries the constraint's name on PostgreSQL, and on SQLite (which names none) the
    /// message with the columns (`UNIQUE constraint failed: patients.email_key`). Handlers map it
    /// with [`ResultExt::on_constraint`].
    #[error("constraint `{0}` violated")]
    Conflict(String),
    /// A foreign key refused the write: the row it refers to does not exist (or is still referred
    /// to). Carries the constraint's name (PostgreSQL) or the message (SQLite).
    #[error("foreign key `{0}` violated")]
    ForeignKey(String),
    /// The database gave up on the transaction because of a concurrent one (PostgreSQL:
    /// serialization failure or deadlock; SQLite: the file stayed locked past the busy timeout).
    /// Nothing was written; the whole transaction may be retried.
    #[error("transaction aborted by a concurrent one: {0}")]
    Contention(sqlx::Error),
    #[error(transparent)]
    Other(sqlx::Error),
}

/// PostgreSQL `serialization_failure` and `deadlock_detected`.
const PG_CONTENTION: [&str; 2] = ["40001", "40P01"];
/// SQLite `SQLITE_BUSY` and `SQLITE_LOCKED` with their extended codes (`code()` reports the
/// extended one): the primary code is the low byte.
const SQLITE_CONTENTION: [i32; 2] = [5, 6];

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        let sqlx::Error::Database(db) = &err else {
            return match err {
                sqlx::Error::RowNotFound => StoreError::NotFound,
                other => StoreError::Other(other),
            };
        };
        // PostgreSQL names the constraint; SQLite only says "UNIQUE constraint failed:
        // table.column", so fall back to the message.
        let name = || {
            db.constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned())
        };
        match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => StoreError::Conflict(name()),
            sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::ForeignKey(name()),
            _ if is_contention(db.as_ref()) => StoreError::Contention(err),
            _ => StoreError::Other(err),
        }
    }
}

/// Whether the database aborted a statement because of a concurrent transaction.
fn is_contention(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        PG_CONTENTION.contains(&code.as_ref())
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse::<i32>()
            .is_ok_and(|extended| SQLITE_CONTENTION.contains(&(extended & 0xff)))
    } else {
        false
    }
}

/// Lets handlers map a constraint violation to a client error in one place
/// (realworld-axum-sqlx's `on_constraint`).
pub trait ResultExt<T> {
    /// If the error is a conflict on a constraint whose name or message contains `needle`,
    /// turn it into `map()`; any other error converts as usual.
    fn on_constraint(self, needle: &str, map: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T> ResultExt<T> for Result<T, StoreError> {
    fn on_constraint(self, needle: &str, map: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        match self {
            Err(StoreError::Conflict(name)) if name.contains(needle) => Err(map()),
            other => other.map_err(ApiError::from),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound("not found".to_owned()),
            StoreError::Conflict(name) => {
                ApiError::Internal(anyhow::anyhow!("unmapped constraint violation: {name}"))
            }
            StoreError::ForeignKey(name) => {
                ApiError::Internal(anyhow::anyhow!("unmapped foreign key violation: {name}"))
            }
            StoreError::Contention(e) | StoreError::Other(e) => ApiError::Internal(e.into()),
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
