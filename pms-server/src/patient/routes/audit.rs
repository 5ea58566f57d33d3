//! `GET /audit` (ADMIN): the patient audit log, newest first, optionally filtered by patient,
//! actor, action and time range. Reading it is itself audited (`audit.read`, with the patient
//! filter as its patient id).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use pms_proto::rest::{AuditEntry, Problem};
use uuid::Uuid;

use super::{AUDITORS, AppState, Audit};
use crate::authn::AuthUser;
use crate::error::ApiError;
use crate::http::{ApiJson, ApiQuery, RequestMeta};
use crate::patient::audit_query::{self, AuditListParams};
use crate::patient::store::PatientAction;

/// Lists audit rows, newest first, one keyset page at a time.
#[utoipa::path(
    get, path = "/audit", tag = "audit", security(("bearer" = [])),
    params(AuditListParams),
    responses(
        (status = 200, description = "A page of audit rows; a `Link: <…>; rel=\"next\"` header \
            announces the next one", body = [AuditEntry],
            headers(("Link" = String, description = "Next page, absent on the last"))),
        (status = 400, description = "Invalid patientId, actorId, action, since, until, limit \
            or cursor", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "Not an ADMIN", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %user.id))]
pub(super) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    meta: RequestMeta,
    params: Result<ApiQuery<AuditListParams>, ApiError>,
) -> Result<Response, ApiError> {
    let filter = params
        .as_ref()
        .ok()
        .and_then(|p| p.0.patient_id.as_deref())
        .and_then(|id| Uuid::parse_str(id.trim()).ok());
    let audit = Audit::new(&state, &user, meta, PatientAction::AuditRead);
    audit
        .run(filter, async {
            user.require(AUDITORS, "read the audit log")?;
            let ApiQuery(params) = params?;
            let query = audit_query::parse_audit_list(&params, &state.cursor_key)?;
            let page = state.store.list_audit(&query).await?;
            let mut response = ApiJson(&page.items).into_response();
            if let Some(next) = page.next {
                let link = audit_query::audit_next_link(&query, next, &state.cursor_key)?;
                let link =
                    HeaderValue::from_str(&link).map_err(|e| ApiError::Internal(e.into()))?;
                response.headers_mut().insert(header::LINK, link);
            }
            Ok(response)
        })
        .await
}
