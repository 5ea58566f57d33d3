//! Accounts: list/find by patient, create (normally done over gRPC), get with balance, change
//! status, the statement, and the billing audit log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pms_proto::rest::{
    BillingAccount, BillingAuditEntry, CreateAccountRequest, Problem, Role, Statement,
    UpdateAccountRequest,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Audit, BillingState, READERS, WRITERS, limit};
use crate::authn::AuthUser;
use crate::billing::model::{Contact, NewAccount, PatientRef};
use crate::billing::store::BillingAction;
use crate::billing::store::BillingError;
use crate::error::ApiError;
use crate::http::{ApiJson, ApiPath, ApiQuery, RequestMeta};

/// `GET /billing/accounts` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountsQuery {
    /// Only the account of this patient (the answer then has 0 or 1 element): a UUID or another
    /// reference of at most 100 printable characters.
    #[param(value_type = String, required = false, min_length = 1, max_length = 100,
        pattern = r"^\s*[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])?\s*$")]
    patient_id: Option<String>,
    /// Page size, 1–1000 (default 100); newest accounts first.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Billing accounts, newest first; `?patientId=` finds a patient's account.
#[utoipa::path(
    get, path = "/billing/accounts", tag = "accounts", params(AccountsQuery),
    responses(
        (status = 200, description = "Accounts (an array, empty if none matches)",
         body = [BillingAccount]),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
    )
)]
pub async fn list(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiQuery(query): ApiQuery<AccountsQuery>,
) -> Result<Json<Vec<BillingAccount>>, ApiError> {
    let audit = Audit::new(&state, &user, &meta, BillingAction::AccountList, "account");
    audit
        .require(&user, READERS, "read billing accounts")
        .await?;
    let limit = limit(query.limit)?;
    let result = match query.patient_id {
        Some(patient) => {
            let patient =
                PatientRef::parse(&patient).map_err(|m| ApiError::field("patientId", m))?;
            match state.store.account_by_patient(&patient).await {
                Ok(account) => Ok(vec![account]),
                Err(BillingError::NotFound(_)) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        }
        None => state.store.accounts(limit).await,
    };
    // Every returned account names its patient: each is audited.
    let accounts = audit
        .read_many(result, |found| found.iter().map(|a| a.id).collect())
        .await?;
    Ok(Json(accounts))
}

/// The patient's account, created ACTIVE if missing (201) or as it is (200). Idempotent.
#[utoipa::path(
    post, path = "/billing/accounts", tag = "accounts", request_body = CreateAccountRequest,
    responses(
        (status = 201, description = "Created", body = BillingAccount),
        (status = 200, description = "The patient already had this account", body = BillingAccount),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
    )
)]
pub async fn create(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    body: Result<ApiJson<CreateAccountRequest>, ApiError>,
) -> Result<(StatusCode, Json<BillingAccount>), ApiError> {
    let audit = Audit::new(
        &state,
        &user,
        &meta,
        BillingAction::AccountCreate,
        "account",
    );
    audit
        .require(&user, WRITERS, "create billing accounts")
        .await?;
    let ApiJson(body) = body?;
    let new = NewAccount {
        patient: PatientRef::parse(&body.patient_id)
            .map_err(|m| ApiError::field("patientId", m))?,
        contact: Contact::default(),
    };
    let (account, created) = audit
        .write(state.store.ensure_account(&new, &audit.meta).await)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(account)))
}

/// One account with its balance.
#[utoipa::path(
    get, path = "/billing/accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = BillingAccount),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    )
)]
pub async fn get(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BillingAccount>, ApiError> {
    let audit = Audit::new(&state, &user, &meta, BillingAction::AccountRead, "account")
        .on(id)
        .account(id);
    audit
        .require(&user, READERS, "read billing accounts")
        .await?;
    let account = audit.read(state.store.account(id).await, |_| None).await?;
    Ok(Json(account))
}

/// Changes an account's status (ADMIN, BILLING). Closing needs a zero balance (else 409).
#[utoipa::path(
    patch, path = "/billing/accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)),
    request_body = UpdateAccountRequest,
    responses(
        (status = 200, body = BillingAccount),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    )
)]
pub async fn update(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiPath(id): ApiPath<Uuid>,
    body: Result<ApiJson<UpdateAccountRequest>, ApiError>,
) -> Result<Json<BillingAccount>, ApiError> {
    let audit = Audit::new(
        &state,
        &user,
        &meta,
        BillingAction::AccountUpdate,
        "account",
    )
    .on(id)
    .account(id);
    audit
        .require(&user, WRITERS, "change billing accounts")
        .await?;
    let ApiJson(body) = body?;
    let result = state
        .store
        .set_account_status(id, body.status, &audit.meta)
        .await;
    Ok(Json(audit.write(result).await?))
}

/// Every ledger entry of the account with its running balance, and the totals.
#[utoipa::path(
    get, path = "/billing/accounts/{id}/statement", tag = "accounts", params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Statement),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    )
)]
pub async fn statement(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Statement>, ApiError> {
    let audit = Audit::new(
        &state,
        &user,
        &meta,
        BillingAction::StatementRead,
        "account",
    )
    .on(id)
    .account(id);
    audit.require(&user, READERS, "read statements").await?;
    let statement = audit
        .read(state.store.statement(id).await, |_| None)
        .await?;
    Ok(Json(statement))
}

/// `GET /billing/audit` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only rows about this account.
    #[param(value_type = Uuid, required = false)]
    account_id: Option<Uuid>,
    /// Page size, 1–1000 (default 100); newest first.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The billing audit log (ADMIN). Rows carry ids and amounts, never names or emails.
#[utoipa::path(
    get, path = "/billing/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, body = [BillingAuditEntry]),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
    )
)]
pub async fn audit(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<BillingAuditEntry>>, ApiError> {
    let mut audit = Audit::new(&state, &user, &meta, BillingAction::AuditRead, "audit");
    if let Some(account) = query.account_id {
        audit = audit.account(account);
    }
    audit
        .require(&user, &[Role::Admin], "read the billing audit log")
        .await?;
    let limit = limit(query.limit)?;
    let entries = state.store.audit_entries(query.account_id, limit).await;
    let entries = audit
        .read(entries.map_err(BillingError::from), |_| None)
        .await?;
    Ok(Json(entries))
}
