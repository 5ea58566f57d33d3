//! Payments and refunds. Both POSTs honour `Idempotency-Key`; concurrent payments on one invoice
//! serialise in the store, so an invoice is never overpaid.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use pms_proto::rest::{CreatePaymentRequest, Payment, Problem, Refund, RefundRequest};
use uuid::Uuid;

use super::{Audit, BillingState, READERS, WRITERS, replay_headers};
use crate::authn::AuthUser;
use crate::billing::idempotency::IdempotencyKey;
use crate::billing::model::{NewPayment, NewRefund};
use crate::billing::store::{BillingAction, WriteContext};
use crate::error::ApiError;
use crate::http::{ApiJson, ApiPath, RequestMeta};

/// Records a payment (ADMIN, BILLING). The invoice must be ISSUED or PARTIALLY_PAID (else 409);
/// more than its balance is an overpayment (422).
#[utoipa::path(
    post, path = "/billing/invoices/{id}/payments", tag = "payments",
    params(("id" = Uuid, Path, description = "Invoice id"),
           ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
               pattern = "^[!-~]+$", description = "1–255 visible ASCII characters; a retry with the same key replays the first result")),
    request_body = CreatePaymentRequest,
    responses(
        (status = 201, body = Payment),
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
    ApiPath(invoice_id): ApiPath<Uuid>,
    body: Result<ApiJson<CreatePaymentRequest>, ApiError>,
) -> Result<(StatusCode, HeaderMap, Json<Payment>), ApiError> {
    let audit = Audit::new(
        &state,
        &user,
        &meta,
        BillingAction::PaymentCreate,
        "invoice",
    )
    .on(invoice_id);
    audit.require(&user, WRITERS, "record payments").await?;
    let ApiJson(body) = body?;
    let new = NewPayment::parse(&body).map_err(ApiError::fields)?;
    let ctx = WriteContext {
        meta: audit.meta.clone(),
        idempotency: key.claim(user.id, &Method::POST, uri.path(), &body)?,
    };
    let written = audit
        .write(state.store.record_payment(invoice_id, &new, &ctx).await)
        .await?;
    Ok((
        StatusCode::CREATED,
        replay_headers(&written),
        Json(written.value),
    ))
}

/// The invoice's payments, oldest first.
#[utoipa::path(
    get, path = "/billing/invoices/{id}/payments", tag = "payments",
    params(("id" = Uuid, Path, description = "Invoice id")),
    responses(
        (status = 200, body = [Payment]),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    )
)]
pub async fn list(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiPath(invoice_id): ApiPath<Uuid>,
) -> Result<Json<Vec<Payment>>, ApiError> {
    let audit =
        Audit::new(&state, &user, &meta, BillingAction::PaymentList, "invoice").on(invoice_id);
    audit.require(&user, READERS, "read payments").await?;
    let result = state.store.payments(invoice_id).await;
    Ok(Json(
        audit
            .read(result, |p| p.first().map(|p| p.account_id))
            .await?,
    ))
}

/// One payment, with how much of it was refunded.
#[utoipa::path(
    get, path = "/billing/payments/{id}", tag = "payments", params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Payment),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    )
)]
pub async fn get(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Payment>, ApiError> {
    let audit = Audit::new(&state, &user, &meta, BillingAction::PaymentRead, "payment").on(id);
    audit.require(&user, READERS, "read payments").await?;
    let result = state.store.payment(id).await;
    Ok(Json(audit.read(result, |p| Some(p.account_id)).await?))
}

/// Refunds (part of) a payment (ADMIN, BILLING); no amount refunds all that is left. More than
/// is left is 422; an already fully refunded payment is 409.
#[utoipa::path(
    post, path = "/billing/payments/{id}/refund", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id"),
           ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255,
               pattern = "^[!-~]+$", description = "1–255 visible ASCII characters; a retry with the same key replays the first result")),
    request_body = RefundRequest,
    responses(
        (status = 201, body = Refund),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn refund(
    State(state): State<BillingState>,
    user: AuthUser,
    meta: RequestMeta,
    key: IdempotencyKey,
    uri: Uri,
    ApiPath(payment_id): ApiPath<Uuid>,
    body: Result<ApiJson<RefundRequest>, ApiError>,
) -> Result<(StatusCode, HeaderMap, Json<Refund>), ApiError> {
    let audit =
        Audit::new(&state, &user, &meta, BillingAction::RefundCreate, "payment").on(payment_id);
    audit.require(&user, WRITERS, "refund payments").await?;
    let ApiJson(body) = body?;
    let new = NewRefund::parse(&body).map_err(ApiError::fields)?;
    let ctx = WriteContext {
        meta: audit.meta.clone(),
        idempotency: key.claim(user.id, &Method::POST, uri.path(), &body)?,
    };
    let written = audit
        .write(state.store.refund_payment(payment_id, &new, &ctx).await)
        .await?;
    Ok((
        StatusCode::CREATED,
        replay_headers(&written),
        Json(written.value),
    ))
}
