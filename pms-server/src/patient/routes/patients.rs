//! `/patients` handlers: list, read, create, update, delete, history. Every one runs inside
//! [`Audit::run`]; writes hand the store their SUCCESS audit row to commit with the change.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pms_proto::rest::{Patient, PatientRequest, PatientVersion, Problem};
use uuid::Uuid;

use super::{AppState, Audit, READERS, WRITERS, etag, expected_version, stale};
use crate::authn::AuthUser;
use crate::clients::billing::CallContext;
use crate::error::{ApiError, ResultExt};
use crate::http::{ApiJson, ApiPath, ApiQuery, RequestMeta};
use crate::patient::model::{NewPatient, PatientChanges, latest_today};
use crate::patient::paging::{self, PatientListParams};
use crate::patient::store::{EMAIL_UNIQUE, PatientAction, WriteOutcome};

fn not_found() -> ApiError {
    ApiError::NotFound("no such patient".to_owned())
}

fn duplicate_email() -> ApiError {
    ApiError::Conflict("a patient with this email address already exists".to_owned())
}

/// A patient body with its `ETag`.
pub(super) fn with_etag(status: StatusCode, patient: &Patient) -> Response {
    (
        status,
        [(header::ETAG, etag(patient.version))],
        ApiJson(patient),
    )
        .into_response()
}

/// The path id, if it parsed (for the audit row of a failed request too).
pub(super) fn path_id(id: &Result<ApiPath<Uuid>, ApiError>) -> Option<Uuid> {
    id.as_ref().ok().map(|p| p.0)
}

/// Lists live patients, one keyset page at a time.
#[utoipa::path(
    get, path = "/patients", tag = "patients", security(("bearer" = [])),
    params(PatientListParams),
    responses(
        (status = 200, description = "A page of patients; a `Link: <…>; rel=\"next\"` header \
            announces the next one", body = [Patient],
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
    let searching = params
        .as_ref()
        .is_ok_and(|p| p.0.q.as_deref().is_some_and(|q| !q.trim().is_empty()));
    let action = if searching {
        PatientAction::Search
    } else {
        PatientAction::List
    };
    let audit = Audit::new(&state, &user, meta, action);
    audit
        .run_reading(None, async {
            user.require(READERS, "read patients")?;
            list_page(&state, params, false).await
        })
        .await
}

/// One page of live or deleted patients with its `Link` header, and the ids it returned (for
/// the audit rows).
pub(super) async fn list_page(
    state: &AppState,
    params: Result<ApiQuery<PatientListParams>, ApiError>,
    deleted: bool,
) -> Result<(Response, Vec<Uuid>), ApiError> {
    let ApiQuery(params) = params?;
    let query = paging::parse_patient_list(&params, deleted, &state.cursor_key)?;
    let page = state.store.list(&query).await?;
    let returned = page.items.iter().map(|p| p.id).collect();
    let mut response = ApiJson(&page.items).into_response();
    if let Some(next) = &page.next {
        let link = paging::patient_next_link(&query, next, &state.cursor_key)?;
        let link = HeaderValue::from_str(&link).map_err(|e| ApiError::Internal(e.into()))?;
        response.headers_mut().insert(header::LINK, link);
    }
    Ok((response, returned))
}

/// Reads one live patient.
#[utoipa::path(
    get, path = "/patients/{id}", tag = "patients", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "The patient", body = Patient,
            headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`"))),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "Unknown or deleted", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %user.id, patient_id = path_id(&id).map(tracing::field::display)))]
pub(super) async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    id: Result<ApiPath<Uuid>, ApiError>,
) -> Result<Response, ApiError> {
    let audit = Audit::new(&state, &user, meta, PatientAction::Read);
    // PostgreSQL: the read and its audit row in one statement.
    if user.require(READERS, "read patients").is_ok()
        && let Ok(ApiPath(id)) = &id
        && let Some(read) = audit.read_one(&*state.store, *id).await
    {
        let patient = read?.ok_or_else(not_found)?;
        return Ok(with_etag(StatusCode::OK, &patient));
    }
    audit
        .run(path_id(&id), async {
            user.require(READERS, "read patients")?;
            let ApiPath(id) = id?;
            let patient = state.store.get(id).await?.ok_or_else(not_found)?;
            Ok(with_etag(StatusCode::OK, &patient))
        })
        .await
}

/// Registers a patient; the server assigns the id and the MRN.
#[utoipa::path(
    post, path = "/patients", tag = "patients", security(("bearer" = [])),
    request_body = super::schema::PatientCreate,
    responses(
        (status = 201, description = "Created", body = Patient, headers(
            ("Location" = String, description = "`/api/patients/{id}`"),
            ("ETag" = String, description = "`\"1\"`"))),
        (status = 400, description = "One error per invalid field", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "A patient with this email exists", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %user.id))]
pub(super) async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    body: Result<ApiJson<PatientRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let request_id = meta.request_id_str().map(str::to_owned);
    let audit = Audit::new(&state, &user, meta, PatientAction::Create);
    audit
        .run(None, async {
            user.require(WRITERS, "create patients")?;
            let ApiJson(request) = body?;
            let patient = NewPatient::parse(&request, latest_today()).map_err(ApiError::fields)?;
            let mut created = state
                .creates
                .create(patient, audit.success(None))
                .await
                .on_constraint(EMAIL_UNIQUE, duplicate_email)?;
            tracing::info!(patient_id = %created.id, "patient created");
            // After the commit, ask billing for the account (short deadline). If billing is down
            // the patient is created all the same: billing opens the account when it consumes
            // the PATIENT_CREATED event from the outbox.
            let ctx = CallContext::default().with_request_id(request_id.as_deref());
            match state
                .billing
                .create_billing_account(created.id, &created.name, &created.email, &ctx)
                .await
            {
                Ok(account) => created.billing_account_id = Some(account.account_id.to_string()),
                Err(e) => tracing::warn!(
                    patient_id = %created.id,
                    error = %e,
                    "billing did not answer; the account will follow from the PATIENT_CREATED event"
                ),
            }
            let location = HeaderValue::from_str(&format!("/api/patients/{}", created.id))
                .map_err(|e| ApiError::Internal(e.into()))?;
            let mut response = with_etag(StatusCode::CREATED, &created);
            response.headers_mut().insert(header::LOCATION, location);
            Ok(response)
        })
        .await
}

/// Replaces a patient's fields. `registeredDate`, `phone` and `sex` are kept when absent (an
/// empty string clears `phone` or `sex`). With `If-Match: "<version>"` the update applies only to
/// that version (412 otherwise); without it, to the current one.
#[utoipa::path(
    put, path = "/patients/{id}", tag = "patients", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Patient id"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(|\*|(W/)?"[!#-~]*")$"#,
            description = "`\"<version>\"` from the ETag, or `*`"),
    ),
    request_body = super::schema::PatientUpdate,
    responses(
        (status = 200, description = "Updated", body = Patient,
            headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "One error per invalid field", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "Unknown or deleted", body = Problem),
        (status = 409, description = "Another patient has this email", body = Problem),
        (status = 412, description = "If-Match names another version", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %user.id, patient_id = path_id(&id).map(tracing::field::display)))]
pub(super) async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    id: Result<ApiPath<Uuid>, ApiError>,
    headers: HeaderMap,
    body: Result<ApiJson<PatientRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let audit = Audit::new(&state, &user, meta, PatientAction::Update);
    audit
        .run(path_id(&id), async {
            user.require(WRITERS, "update patients")?;
            let ApiPath(id) = id?;
            let ApiJson(request) = body?;
            let changes =
                PatientChanges::parse(&request, latest_today()).map_err(ApiError::fields)?;
            let expected = expected_version(&headers)?;
            let outcome = state
                .store
                .update(id, expected, &changes, audit.success(Some(id)))
                .await
                .on_constraint(EMAIL_UNIQUE, duplicate_email)?;
            match outcome {
                WriteOutcome::Done(patient) => {
                    tracing::info!(version = patient.version, "patient updated");
                    Ok(with_etag(StatusCode::OK, &patient))
                }
                WriteOutcome::NotFound => Err(not_found()),
                WriteOutcome::Stale { .. } => Err(stale()),
            }
        })
        .await
}

/// Soft-deletes a patient: it disappears from reads and listings, its email becomes free, and
/// its history and audit trail are kept. Honours `If-Match` like `PUT`. With
/// `Prefer: return=representation` the answer is 200 with the deleted patient and what becomes
/// of its billing account (asked of billing after the commit, short deadline).
#[utoipa::path(
    delete, path = "/patients/{id}", tag = "patients", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Patient id"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(|\*|(W/)?"[!#-~]*")$"#,
            description = "`\"<version>\"` from the ETag, or `*`"),
        ("Prefer" = Option<String>, Header, nullable = false,
            description = "`return=representation`: answer 200 with a `PatientDeletion`"),
    ),
    responses(
        (status = 200, description = "Deleted (`Prefer: return=representation`)",
            body = pms_proto::rest::PatientDeletion,
            headers(("Preference-Applied" = String, description = "`return=representation`"))),
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "Unknown or already deleted", body = Problem),
        (status = 412, description = "If-Match names another version", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %user.id, patient_id = path_id(&id).map(tracing::field::display)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    id: Result<ApiPath<Uuid>, ApiError>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let audit = Audit::new(&state, &user, meta, PatientAction::Delete);
    audit
        .run(path_id(&id), async {
            user.require(WRITERS, "delete patients")?;
            let ApiPath(id) = id?;
            let expected = expected_version(&headers)?;
            match state
                .store
                .delete(id, expected, audit.success(Some(id)))
                .await?
            {
                WriteOutcome::Done(patient) => {
                    tracing::info!("patient deleted");
                    if !prefers_representation(&headers) {
                        return Ok(StatusCode::NO_CONTENT.into_response());
                    }
                    let billing = deleted_account(&state, &headers, id).await;
                    let body = pms_proto::rest::PatientDeletion { patient, billing };
                    let mut response = ApiJson(body).into_response();
                    response.headers_mut().insert(
                        HeaderName::from_static("preference-applied"),
                        HeaderValue::from_static("return=representation"),
                    );
                    Ok(response)
                }
                WriteOutcome::NotFound => Err(not_found()),
                WriteOutcome::Stale { .. } => Err(stale()),
            }
        })
        .await
}

/// Whether the request asks for the deleted patient back (RFC 7240 `Prefer`).
fn prefers_representation(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=representation"))
}

/// The deleted patient's billing account, asked of billing with the caller's token (null when
/// billing does not answer in time, has no account, or the caller may not read billing).
async fn deleted_account(
    state: &AppState,
    headers: &HeaderMap,
    id: Uuid,
) -> Option<pms_proto::rest::DeletedAccount> {
    use pms_proto::billing::get_billing_account_request::Key;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok());
    let ctx = CallContext::bearer(token).with_request_id(request_id);
    let account = match state
        .billing
        .get_billing_account(Key::PatientId(id.to_string()), &ctx)
        .await
    {
        Ok(account) => account,
        Err(e) => {
            tracing::warn!(patient_id = %id, error = %e, "billing did not say what the deleted patient owes");
            return None;
        }
    };
    let account_id = Uuid::parse_str(&account.account_id).ok()?;
    let status = pms_proto::rest::AccountStatus::parse(&account.status)?;
    let currency = Some(account.currency).filter(|c| !c.is_empty());
    Some(pms_proto::rest::DeletedAccount::after_delete(
        account_id,
        status,
        account.balance,
        currency,
    ))
}

/// Every version of a patient (deleted ones too), oldest first: what changed, when, by whom.
#[utoipa::path(
    get, path = "/patients/{id}/history", tag = "patients", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "Versions, oldest first", body = [PatientVersion]),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "No such patient, ever", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %user.id, patient_id = path_id(&id).map(tracing::field::display)))]
pub(super) async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    id: Result<ApiPath<Uuid>, ApiError>,
) -> Result<Response, ApiError> {
    let audit = Audit::new(&state, &user, meta, PatientAction::History);
    audit
        .run(path_id(&id), async {
            user.require(READERS, "read patient history")?;
            let ApiPath(id) = id?;
            let versions = state.store.history(id).await?;
            if versions.is_empty() {
                return Err(not_found());
            }
            Ok(ApiJson(versions).into_response())
        })
        .await
}
