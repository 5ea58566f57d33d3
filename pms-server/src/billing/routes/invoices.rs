//! Invoices: create a DRAFT, list an account's, get one, issue, void. Every POST honours
//! `Idempotency-Key`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use pms_proto::rest::{CreateInvoiceRequest, Invoice, Problem};
use serde::Deserialize;
use uuid::Uuid;

use super::{Audit, BillingState, READERS, WRITERS, limit, replay_headers};
use crate::authn::AuthUser;
use crate::billing::idempotency::IdempotencyKey;
use crate::billing::model::{NewInvoice, parse_invoice_number};
use crate::billing::store::{BillingAction, WriteContext};
use crate::error::ApiError;
use crate::http::{ApiJson, ApiPath, ApiQuery, RequestMeta};

/// A new DRAFT invoice on the account (ADMIN, BILLING). The account must be ACTIVE (else 409)
/// and, once its first invoice fixed its currency, use that currency (else 422).
#[utoipa::path(
    post, path = "/billing/accounts/{id}/invoices", tag = "invoices",
    params(("id" = Uuid, Path, description = "Account id"),
           ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
               pattern = "^[!-~]+$", description = "1–255 visible ASCII characters; a retry with the same key replays the first result")),
    request_body = CreateInvoiceRequest,
    responses(
        (status = 201, description = "The DRAFT invoice", body = Invoice),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn create(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    key: IdempotencyKey,
    uri: Uri,
    ApiPath(account_id): ApiPath<Uuid>,
    body: Result<ApiJson<CreateInvoiceRequest>, ApiError>,
) -> Result<(StatusCode, HeaderMap, Json<Invoice>), ApiError> {
    let audit = Audit::new(
        &state,
        &user,
        &meta,
        BillingAction::InvoiceCreate,
        "invoice",
    )
    .account(account_id);
    audit.require(&user, WRITERS, "create invoices").await?;
    let ApiJson(body) = body?;
    let new = NewInvoice::parse(&body).map_err(ApiError::fields)?;
    let ctx = WriteContext {
        meta: audit.meta.clone(),
        idempotency: key.claim(user.id, &Method::POST, uri.path(), &body)?,
    };
    let written = audit
        .write(state.store.create_invoice(account_id, &new, &ctx).await)
        .await?;
    Ok((
        StatusCode::CREATED,
        replay_headers(&written),
        Json(written.value),
    ))
}

/// `GET /billing/accounts/{id}/invoices` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvoicesQuery {
    /// Page size, 1–1000 (default 100); newest invoices first.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// The account's invoices, newest first.
#[utoipa::path(
    get, path = "/billing/accounts/{id}/invoices", tag = "invoices",
    params(("id" = Uuid, Path, description = "Account id"), InvoicesQuery),
    responses(
        (status = 200, body = [Invoice]),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    )
)]
pub async fn list(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiPath(account_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<InvoicesQuery>,
) -> Result<Json<Vec<Invoice>>, ApiError> {
    let audit =
        Audit::new(&state, &user, &meta, BillingAction::InvoiceList, "invoice").account(account_id);
    audit.require(&user, READERS, "read invoices").await?;
    let limit = limit(query.limit)?;
    let result = state.store.invoices(account_id, limit).await;
    Ok(Json(audit.read(result, |_| None).await?))
}

/// `GET /billing/invoices` query: the human number to look up.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindQuery {
    /// The invoice number, `INV-000042` (any case; leading zeros optional).
    #[param(pattern = "^[Ii][Nn][Vv]-[0-9]{1,18}$")]
    number: String,
}

/// Finds an invoice by its human number (`INV-000042`): a list of the one invoice, or empty.
#[utoipa::path(
    get, path = "/billing/invoices", tag = "invoices", params(FindQuery),
    responses(
        (status = 200, description = "The invoice with this number, or nothing", body = [Invoice]),
        (status = 400, description = "Not an `INV-` number", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    )
)]
pub async fn find(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiQuery(query): ApiQuery<FindQuery>,
) -> Result<Json<Vec<Invoice>>, ApiError> {
    let mut audit = Audit::new(&state, &user, &meta, BillingAction::InvoiceRead, "invoice");
    audit.require(&user, READERS, "read invoices").await?;
    let number = parse_invoice_number(&query.number)
        .ok_or_else(|| ApiError::field("number", "must be an invoice number such as INV-000042"))?;
    let result = match state.store.invoice_id_by_number(number).await {
        Ok(Some(id)) => {
            audit = audit.on(id);
            state.store.invoice(id).await.map(|invoice| vec![invoice])
        }
        Ok(None) => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    Ok(Json(
        audit
            .read(result, |found| found.first().map(|i| i.account_id))
            .await?,
    ))
}

/// One invoice with its lines, totals and status.
#[utoipa::path(
    get, path = "/billing/invoices/{id}", tag = "invoices", params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Invoice),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    )
)]
pub async fn get(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Invoice>, ApiError> {
    let audit = Audit::new(&state, &user, &meta, BillingAction::InvoiceRead, "invoice").on(id);
    audit.require(&user, READERS, "read invoices").await?;
    let result = state.store.invoice(id).await;
    Ok(Json(audit.read(result, |i| Some(i.account_id)).await?))
}

/// `DRAFT → ISSUED` (ADMIN, BILLING): the total becomes owed. Anything else is 409.
#[utoipa::path(
    post, path = "/billing/invoices/{id}/issue", tag = "invoices",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
               pattern = "^[!-~]+$", description = "1–255 visible ASCII characters; a retry with the same key replays the first result")),
    responses(
        (status = 200, body = Invoice),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn issue(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    key: IdempotencyKey,
    uri: Uri,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(HeaderMap, Json<Invoice>), ApiError> {
    let audit = Audit::new(&state, &user, &meta, BillingAction::InvoiceIssue, "invoice").on(id);
    audit.require(&user, WRITERS, "issue invoices").await?;
    let ctx = WriteContext {
        meta: audit.meta.clone(),
        idempotency: key.claim(user.id, &Method::POST, uri.path(), &())?,
    };
    let written = audit
        .write(state.store.issue_invoice(id, &ctx).await)
        .await?;
    Ok((replay_headers(&written), Json(written.value)))
}

/// `DRAFT | ISSUED → VOID` (ADMIN, BILLING) while nothing is paid: refund payments first
/// (else 409). An issued total is reversed on the account.
#[utoipa::path(
    post, path = "/billing/invoices/{id}/void", tag = "invoices",
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
               pattern = "^[!-~]+$", description = "1–255 visible ASCII characters; a retry with the same key replays the first result")),
    responses(
        (status = 200, body = Invoice),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    )
)]
pub async fn void(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    key: IdempotencyKey,
    uri: Uri,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(HeaderMap, Json<Invoice>), ApiError> {
    let audit = Audit::new(&state, &user, &meta, BillingAction::InvoiceVoid, "invoice").on(id);
    audit.require(&user, WRITERS, "void invoices").await?;
    let ctx = WriteContext {
        meta: audit.meta.clone(),
        idempotency: key.claim(user.id, &Method::POST, uri.path(), &())?,
    };
    let written = audit
        .write(state.store.void_invoice(id, &ctx).await)
        .await?;
    Ok((replay_headers(&written), Json(written.value)))
}
