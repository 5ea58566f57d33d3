//! Soft-deleted patients: `GET /patients/deleted` lists them (to find one to restore) and
//! `POST /patients/{id}/restore` makes one live again. Both run inside [`Audit::run`] like every
//! patient handler; a restore commits its SUCCESS audit row with the change.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use pms_proto::rest::{Patient, Problem};
use uuid::Uuid;

use super::patients::{list_page, path_id, with_etag};
use super::{AppState, Audit, READERS, WRITERS, expected_version, stale};
use crate::authn::AuthUser;
use crate::error::{ApiError, ResultExt};
use crate::http::{ApiPath, ApiQuery, RequestMeta};
use crate::patient::paging::PatientListParams;
use crate::patient::store::{EMAIL_UNIQUE, PatientAction, WriteOutcome};

/// Lists soft-deleted patients, one keyset page at a time (same parameters as `GET /patients`;
/// `updatedAt` is when the patient was deleted).
#[utoipa::path(
    get, path = "/patients/deleted", tag = "patients", security(("bearer" = [])),
    params(PatientListParams),
    responses(
        (status = 200, description = "A page of deleted patients; a `Link: <…>; rel=\"next\"` \
            header announces the next one", body = [Patient],
            headers(("Link" = String, description = "Next page, absent on the last"))),
        (status = 400, description = "Invalid limit, cursor, q or sort", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %user.id))]
pub(super) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    params: Result<ApiQuery<PatientListParams>, ApiError>,
) -> Result<Response, ApiError> {
    let audit = Audit::new(&state, &user, meta, PatientAction::ListDeleted);
    audit
        .run_reading(None, async {
            user.require(READERS, "read patients")?;
            list_page(&state, params, true).await
        })
        .await
}

/// Restores a soft-deleted patient: live again with the same id and MRN (next version), a
/// RESTORED history version and a PATIENT_RESTORED event (billing reopens the account).
/// Honours `If-Match` like `PUT`.
#[utoipa::path(
    post, path = "/patients/{id}/restore", tag = "patients", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Patient id"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(|\*|(W/)?"[!#-~]*")$"#,
            description = "`\"<version>\"` from the ETag, or `*`"),
    ),
    responses(
        (status = 200, description = "Restored", body = Patient,
            headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "No deleted patient with this id", body = Problem),
        (status = 409, description = "A live patient has this email now", body = Problem),
        (status = 412, description = "If-Match names another version", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %user.id, patient_id = path_id(&id).map(tracing::field::display)))]
pub(super) async fn restore(
    State(state): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    id: Result<ApiPath<Uuid>, ApiError>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let audit = Audit::new(&state, &user, meta, PatientAction::Restore);
    audit
        .run(path_id(&id), async {
            user.require(WRITERS, "restore patients")?;
            let ApiPath(id) = id?;
            let expected = expected_version(&headers)?;
            let outcome = state
                .store
                .restore(id, expected, audit.success(Some(id)))
                .await
                .on_constraint(EMAIL_UNIQUE, || {
                    ApiError::Conflict(
                        "a live patient has this email address now: change or delete that \
                         patient first"
                            .to_owned(),
                    )
                })?;
            match outcome {
                WriteOutcome::Done(patient) => {
                    tracing::info!(version = patient.version, "patient restored");
                    Ok(with_etag(StatusCode::OK, &patient))
                }
                WriteOutcome::NotFound => Err(ApiError::NotFound(
                    "no deleted patient with this id".to_owned(),
                )),
                WriteOutcome::Stale { .. } => Err(stale()),
            }
        })
        .await
}
