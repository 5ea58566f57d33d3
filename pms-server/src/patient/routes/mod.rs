//! The patient service's HTTP API: the router, who may call what (DESIGN §6), the audit wrapper
//! every patient-data handler runs in, and the OpenAPI document.
//!
//! Handlers check the caller's role first, then parse the path, query and body themselves (the
//! extractors' rejections arrive as `Result`s), so that an unauthorised caller learns nothing and
//! every refused attempt — denied, invalid, unknown, conflicting — leaves an audit row.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::get;
use pms_proto::rest::Role;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use uuid::Uuid;

use super::audit_writer::AuditWriter;
use super::store::{AuditRecord, PatientAction, PatientStore};
use crate::audit::{AuditAction, AuditMeta, Outcome};
use crate::authn::{AuthUser, Verifier};
use crate::error::ApiError;
use crate::http::{ApiJson, RequestMeta};

mod audit;
mod patients;

/// May list, read and see the history of patients.
const READERS: &[Role] = &[Role::Admin, Role::Clinician, Role::Billing, Role::Viewer];
/// May create, update and delete patients.
const WRITERS: &[Role] = &[Role::Admin, Role::Clinician];
/// May read the audit log.
const AUDITORS: &[Role] = &[Role::Admin];

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn PatientStore>,
    /// Group-commits the audit rows of reads and refused attempts.
    pub audits: AuditWriter,
    /// Seals the listing cursors (shared by every replica through the database).
    pub cursor_key: Arc<crate::patient::cursor::CursorKey>,
    pub verifier: Arc<Verifier>,
    /// Billing's gRPC API, asked for the new patient's account right after a create commits.
    pub billing: Arc<crate::clients::billing::BillingClient>,
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.verifier)
    }
}

/// The service's routes (without the common layers).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/patients", get(patients::list).post(patients::create))
        .route(
            "/patients/{id}",
            get(patients::get)
                .put(patients::update)
                .delete(patients::delete),
        )
        .route("/patients/{id}/history", get(patients::history))
        .route("/audit", get(audit::list))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

/// The service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "PMS patient service", description = "Patients, their history and the patient audit log."),
    paths(patients::list, patients::get, patients::create, patients::update, patients::delete,
          patients::history, audit::list),
    components(schemas(
        pms_proto::rest::Patient, pms_proto::rest::PatientRequest, pms_proto::rest::PatientVersion,
        pms_proto::rest::Sex, pms_proto::rest::AuditEntry, pms_proto::rest::Problem,
        pms_proto::rest::FieldError,
    )),
    modifiers(&BearerAuth),
    tags((name = "patients"), (name = "audit")),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

async fn openapi() -> ApiJson<utoipa::openapi::OpenApi> {
    ApiJson(ApiDoc::openapi())
}

/// The audit trail of one request: who, from where, doing what.
struct Audit {
    writer: AuditWriter,
    record: AuditRecord,
}

impl Audit {
    fn new(state: &AppState, user: &AuthUser, meta: RequestMeta, action: PatientAction) -> Self {
        // The request id and client address were bounded at the edge (`request_meta`).
        let meta = AuditMeta::new(Some((user.id, user.role)), meta);
        Audit {
            writer: state.audits.clone(),
            record: AuditRecord::now(action, meta, Outcome::Success),
        }
    }

    /// The SUCCESS record of a write, for the store to commit with the change.
    fn success(&self, patient_id: Option<Uuid>) -> AuditRecord {
        self.record.clone().patient(patient_id)
    }

    /// Runs a handler body and audits how it ended. Successful reads are recorded here and fail
    /// closed: patient data is not served until its access is recorded durably (group-committed
    /// with concurrent requests' rows, [`AuditWriter`]), and not at all when that fails. Successful writes
    /// were recorded by the store in their own transaction. Failures are recorded on a best-effort
    /// basis: the client gets the original error either way.
    async fn run<T>(
        &self,
        patient_id: Option<Uuid>,
        body: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let body = async {
            body.await
                .map(|value| (value, patient_id.into_iter().collect()))
        };
        self.run_reading(patient_id, body).await
    }

    /// [`Self::run`] for a body that returns several patients: its success is recorded as one
    /// row per returned patient, in one insert.
    async fn run_reading<T>(
        &self,
        patient_id: Option<Uuid>,
        body: impl Future<Output = Result<(T, Vec<Uuid>), ApiError>>,
    ) -> Result<T, ApiError> {
        let result = body.await;
        let action = self.record.action;
        let record = self.record.clone().patient(patient_id);
        match result {
            Ok((value, _)) if action.is_write() => Ok(value),
            Ok((value, returned)) => {
                self.writer.record(record.per_patient(returned)).await?;
                Ok(value)
            }
            Err(err) => {
                let record = record.outcome(outcome_of(&err));
                if let Err(e) = self.writer.record(vec![record]).await {
                    tracing::error!(error = %e, action = action.name(), "cannot record audit row");
                }
                Err(err)
            }
        }
    }
}

fn outcome_of(err: &ApiError) -> Outcome {
    match err {
        ApiError::Forbidden(_) | ApiError::Unauthorized(_) => Outcome::Denied,
        ApiError::NotFound(_) => Outcome::NotFound,
        ApiError::Conflict(_) | ApiError::PreconditionFailed(_) => Outcome::Conflict,
        e if e.status().is_server_error() => Outcome::Failed,
        _ => Outcome::Rejected,
    }
}

/// `ETag` of a version: `"<version>"`.
fn etag(version: i64) -> HeaderValue {
    // Invariant: a quoted integer is a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The version an `If-Match` header requires: `None` when absent or `*` (any current version).
/// Weak tags (`W/"3"`) are accepted since proxies may weaken them. A tag that is not a version of
/// ours can never match: 412.
fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let mut tags = 0;
    let mut versions = Vec::new();
    for value in headers.get_all(header::IF_MATCH) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::bad_request("If-Match is not a valid header value"))?;
        for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if tag == "*" {
                return Ok(None);
            }
            tags += 1;
            let version = tag
                .strip_prefix("W/")
                .unwrap_or(tag)
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .and_then(|t| t.parse::<i64>().ok());
            versions.extend(version);
        }
    }
    versions.sort_unstable();
    versions.dedup();
    match versions.as_slice() {
        [] if tags == 0 => Ok(None),
        [] => Err(stale()),
        [version] => Ok(Some(*version)),
        _ => Err(ApiError::bad_request("If-Match must name a single version")),
    }
}

fn stale() -> ApiError {
    ApiError::PreconditionFailed(
        "the patient has changed since you read it: fetch it again and retry".to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_match(values: &[&str]) -> Result<Option<i64>, ApiError> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::IF_MATCH, HeaderValue::from_str(v).expect("value"));
        }
        expected_version(&headers)
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(if_match(&[]).expect("absent"), None);
        assert_eq!(if_match(&["*"]).expect("any"), None);
        assert_eq!(if_match(&["\"3\""]).expect("strong"), Some(3));
        assert_eq!(if_match(&["W/\"4\""]).expect("weak"), Some(4));
        assert_eq!(if_match(&["\"5\", W/\"5\""]).expect("same twice"), Some(5));
        assert_eq!(if_match(&["\"x\", \"6\""]).expect("one of ours"), Some(6));
        assert!(matches!(
            if_match(&["\"abc\""]),
            Err(ApiError::PreconditionFailed(_))
        ));
        assert!(matches!(
            if_match(&["7"]),
            Err(ApiError::PreconditionFailed(_))
        ));
        assert!(matches!(
            if_match(&["\"1\"", "\"2\""]),
            Err(ApiError::BadRequest { .. })
        ));
    }

    #[test]
    fn outcomes_follow_the_error() {
        assert_eq!(
            outcome_of(&ApiError::Forbidden("x".into())),
            Outcome::Denied
        );
        assert_eq!(
            outcome_of(&ApiError::NotFound("x".into())),
            Outcome::NotFound
        );
        assert_eq!(
            outcome_of(&ApiError::Conflict("x".into())),
            Outcome::Conflict
        );
        assert_eq!(outcome_of(&stale()), Outcome::Conflict);
        assert_eq!(outcome_of(&ApiError::bad_request("x")), Outcome::Rejected);
        assert_eq!(
            outcome_of(&ApiError::PayloadTooLarge("x".into())),
            Outcome::Rejected
        );
        assert_eq!(
            outcome_of(&ApiError::Internal(anyhow::anyhow!("x"))),
            Outcome::Failed
        );
    }

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc = ApiDoc::openapi();
        let paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/audit",
                "/patients",
                "/patients/{id}",
                "/patients/{id}/history"
            ]
        );
    }
}
