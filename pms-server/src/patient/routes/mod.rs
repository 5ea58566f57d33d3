//! The patient service's HTTP API: the router, who may call what (DESIGN §6; deleted patients:
//! readers list them, writers restore them), the audit wrapper
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
use axum::routing::{get, post};
use pms_proto::rest::{Patient, Role};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use uuid::Uuid;

use super::audit_writer::AuditWriter;
use super::store::{AuditRecord, PatientAction, PatientStore};
use crate::audit::{AuditAction, AuditMeta, Outcome};
use crate::authn::{AuthUser, Verifier};
use crate::error::ApiError;
use crate::http::{ApiJson, RequestMeta};
use crate::openapi::Conventions;
use schema::DateBounds;

mod audit;
mod deleted;
mod patients;
mod schema;

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
    /// Group-commits creates.
    pub creates: crate::patient::create_writer::CreateWriter,
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
        .route("/patients/deleted", get(deleted::list))
        .route("/patients/{id}/history", get(patients::history))
        .route("/patients/{id}/restore", post(deleted::restore))
        .route("/audit", get(audit::list))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

/// The service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "PMS patient service", description = "Patients, their history and the patient audit log."),
    paths(patients::list, patients::get, patients::create, patients::update, patients::delete,
          patients::history, deleted::list, deleted::restore, audit::list),
    components(schemas(
        pms_proto::rest::Patient, schema::PatientCreate, schema::PatientUpdate,
        pms_proto::rest::PatientVersion, pms_proto::rest::PatientDeletion,
        pms_proto::rest::DeletedAccount, pms_proto::rest::AccountStatus,
        pms_proto::rest::Sex, pms_proto::rest::AuditEntry, pms_proto::rest::Problem,
        pms_proto::rest::FieldError,
    )),
    modifiers(&BearerAuth, &DateBounds, &Conventions),
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

    /// A read of one patient whose audit row the store writes in the read's own statement
    /// ([`PatientStore::get_audited`], PostgreSQL: one round trip and one commit, grouped with
    /// concurrent commits by PostgreSQL itself); `None` where the store cannot (then
    /// [`Self::run`]). A missing patient is recorded NOT_FOUND by that statement; a failed one
    /// committed nothing and is recorded like any failure.
    async fn read_one(
        &self,
        store: &dyn PatientStore,
        id: Uuid,
    ) -> Option<Result<Option<Patient>, ApiError>> {
        let record = self.success(Some(id));
        Some(match store.get_audited(id, &record).await? {
            Ok(found) => Ok(found),
            Err(e) => {
                let err = ApiError::from(e);
                let failed = record.outcome(outcome_of(&err));
                if let Err(e) = self.writer.record(vec![failed]).await {
                    tracing::error!(error = %e, action = self.record.action.name(), "cannot record audit row");
                }
                Err(err)
            }
        })
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

/// What the OpenAPI document says `If-Match` is (the annotations repeat it: utoipa takes only a
/// literal): `*` or one entity tag (RFC 9110 `entity-tag`, weak or strong). The handlers refuse
/// anything else with 400, as the document says.
#[cfg(test)]
const IF_MATCH_PATTERN: &str = r#"^(|\*|(W/)?"[!#-~]*")$"#;

/// The version an `If-Match` header requires: `None` when absent, empty (an empty list) or `*`
/// (any current version).
/// Weak tags (`W/"3"`) are accepted since proxies may weaken them. A well-formed tag that is not a
/// version of ours can never match: 412. Anything that is not `*` or one entity tag (a list, a
/// bare `3`, two headers) is malformed: 400.
fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let malformed = || {
        ApiError::field(
            "If-Match",
            "must be `*` or one entity tag such as \"3\" (the ETag of the version read)",
        )
    };
    let mut values = headers.get_all(header::IF_MATCH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(malformed());
    }
    let tag = value.to_str().map_err(|_| malformed())?;
    if tag.is_empty() || tag == "*" {
        return Ok(None);
    }
    let opaque = tag
        .strip_prefix("W/")
        .unwrap_or(tag)
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| t.bytes().all(|b| b == b'!' || (b'#'..=b'~').contains(&b)))
        .ok_or_else(malformed)?;
    match opaque.parse::<i64>() {
        Ok(version) if opaque.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(version)),
        _ => Err(stale()),
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
        for never_ours in ["\"abc\"", "\"\"", "\"-1\"", "W/\"+2\""] {
            assert!(
                matches!(
                    if_match(&[never_ours]),
                    Err(ApiError::PreconditionFailed(_))
                ),
                "{never_ours}"
            );
        }
        for malformed in ["7", "null", "\"5\", W/\"5\"", "\"a b\"", " \"3\"", "W/3"] {
            assert!(
                matches!(if_match(&[malformed]), Err(ApiError::BadRequest { .. })),
                "{malformed}"
            );
        }
        assert!(matches!(
            if_match(&["\"1\"", "\"2\""]),
            Err(ApiError::BadRequest { .. })
        ));
    }

    #[test]
    fn the_documented_if_match_pattern_is_what_the_handlers_accept() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        for method in ["put", "delete"] {
            let params = doc["paths"]["/patients/{id}"][method]["parameters"]
                .as_array()
                .expect("parameters");
            let if_match = params
                .iter()
                .find(|p| p["name"] == "If-Match")
                .expect("If-Match");
            assert_eq!(if_match["in"], "header");
            assert_eq!(if_match["schema"]["pattern"], IF_MATCH_PATTERN, "{method}");
            assert_eq!(
                if_match["schema"]["type"], "string",
                "{method}: not nullable"
            );
        }
        let pattern = regex::Regex::new(IF_MATCH_PATTERN).expect("pattern");
        for value in [
            "",
            "*",
            "\"3\"",
            "W/\"3\"",
            "\"abc\"",
            "\"\"",
            "7",
            "null",
            "\"1\", \"2\"",
            "W/3",
            "\"a b\"",
        ] {
            let malformed = matches!(if_match(&[value]), Err(ApiError::BadRequest { .. }));
            assert_eq!(pattern.is_match(value), !malformed, "{value}");
        }
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
        crate::openapi::assert_conventions(&ApiDoc::openapi());
        let doc = ApiDoc::openapi();
        let paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/audit",
                "/patients",
                "/patients/deleted",
                "/patients/{id}",
                "/patients/{id}/history",
                "/patients/{id}/restore"
            ]
        );
    }
}
