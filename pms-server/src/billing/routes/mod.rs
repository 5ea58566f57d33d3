//! The billing REST API, served under `/billing/…` (the gateway exposes it as `/api/billing/…`).
//!
//! Roles (DESIGN §6): ADMIN and BILLING write; every role reads; the audit log is ADMIN only.
//! Every action is audited: writes in their own transaction (see the store), reads and refusals
//! here. Status codes: 400 invalid input, 401 no/invalid token, 403 role, 404 unknown id,
//! 409 conflicts with the current state (pay a DRAFT, void a paid invoice, invoice a suspended
//! account), 422 amounts that do not fit (overpayment, over-refund, currency mismatch) and an
//! `Idempotency-Key` reused with a different request.

mod accounts;
mod invoices;
mod payments;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use pms_proto::rest::Role;
use utoipa::OpenApi;
use uuid::Uuid;

use super::idempotency::IDEMPOTENT_REPLAYED;
use super::ledger::Refusal;
use super::store::{
    AuditMeta, AuditRecord, BillingAction, BillingError, BillingStore, Outcome, Written,
};
use crate::audit::AuditAction;
use crate::authn::{AuthUser, Verifier};
use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::openapi::Conventions;

/// Roles that may read billing data.
const READERS: &[Role] = &[Role::Admin, Role::Billing, Role::Clinician, Role::Viewer];
/// Roles that may create invoices, record payments and refunds, and change accounts.
const WRITERS: &[Role] = &[Role::Admin, Role::Billing];
/// Largest page of a list.
const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 100;

/// What every billing handler needs.
#[derive(Clone)]
pub struct BillingState {
    pub store: Arc<dyn BillingStore>,
    pub verifier: Arc<Verifier>,
}

impl FromRef<BillingState> for Arc<Verifier> {
    fn from_ref(state: &BillingState) -> Self {
        state.verifier.clone()
    }
}

/// The billing routes (without the common layers).
pub fn router(state: BillingState) -> Router {
    Router::new()
        .route(
            "/billing/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route(
            "/billing/accounts/{id}",
            get(accounts::get).patch(accounts::update),
        )
        .route("/billing/accounts/{id}/statement", get(accounts::statement))
        .route(
            "/billing/accounts/{id}/invoices",
            get(invoices::list).post(invoices::create),
        )
        .route("/billing/invoices", get(invoices::find))
        .route("/billing/invoices/{id}", get(invoices::get))
        .route("/billing/invoices/{id}/issue", post(invoices::issue))
        .route("/billing/invoices/{id}/void", post(invoices::void))
        .route(
            "/billing/invoices/{id}/payments",
            get(payments::list).post(payments::create),
        )
        .route("/billing/payments/{id}", get(payments::get))
        .route("/billing/payments/{id}/refund", post(payments::refund))
        .route("/billing/audit", get(accounts::audit))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PMS billing service",
        description = "Billing accounts, invoices, payments, refunds and statements. Money is \
                       integer minor units plus an ISO-4217 currency. Behind the gateway every \
                       path is prefixed with `/api`."
    ),
    paths(
        accounts::list, accounts::create, accounts::get, accounts::update, accounts::statement,
        accounts::audit, invoices::create, invoices::list, invoices::find, invoices::get, invoices::issue,
        invoices::void, payments::create, payments::list, payments::get, payments::refund
    ),
    modifiers(&BearerAuth, &Conventions),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The service's OpenAPI document.
pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi_doc())
}

impl From<BillingError> for ApiError {
    fn from(err: BillingError) -> Self {
        match err {
            BillingError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            BillingError::Refused(Refusal::Conflict(m)) => ApiError::Conflict(m),
            BillingError::Refused(Refusal::Unprocessable(m)) => ApiError::Unprocessable(m),
            e @ BillingError::IdempotencyMismatch => ApiError::Unprocessable(e.to_string()),
            BillingError::Store(e) => e.into(),
        }
    }
}

/// The page size of `?limit=`.
fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// One audited action of one request: who, from where, on what.
struct Audit<'a> {
    state: &'a BillingState,
    meta: AuditMeta,
    action: BillingAction,
    resource: &'static str,
    resource_id: Option<Uuid>,
    account_id: Option<Uuid>,
}

impl<'a> Audit<'a> {
    fn new(
        state: &'a BillingState,
        user: &AuthUser,
        request: &RequestMeta,
        action: BillingAction,
        resource: &'static str,
    ) -> Self {
        Audit {
            state,
            meta: AuditMeta::new(Some((user.id, user.role)), request.clone()),
            action,
            resource,
            resource_id: None,
            account_id: None,
        }
    }

    fn on(mut self, resource_id: Uuid) -> Self {
        self.resource_id = Some(resource_id);
        self
    }

    fn account(mut self, account_id: Uuid) -> Self {
        self.account_id = Some(account_id);
        self
    }

    async fn record(&self, outcome: Outcome, account_id: Option<Uuid>) -> Result<(), ApiError> {
        let record = AuditRecord {
            action: self.action,
            resource: self.resource,
            resource_id: self.resource_id,
            account_id: account_id.or(self.account_id),
            amount: None,
            outcome,
        };
        Ok(self.state.store.record_audit(&record, &self.meta).await?)
    }

    /// 403 (audited as DENIED) unless `user` has one of `roles`.
    async fn require(&self, user: &AuthUser, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if let Err(denied) = user.require(roles, what) {
            self.record(Outcome::Denied, None).await?;
            return Err(denied);
        }
        Ok(())
    }

    /// A read: audited with its outcome either way.
    async fn read<T>(
        &self,
        result: Result<T, BillingError>,
        account_of: impl FnOnce(&T) -> Option<Uuid>,
    ) -> Result<T, ApiError> {
        match result {
            Ok(value) => {
                self.record(Outcome::Success, account_of(&value)).await?;
                Ok(value)
            }
            Err(e) => Err(self.failed(e).await),
        }
    }

    /// A read that may reveal several accounts (so several patients): one SUCCESS row per
    /// account it returned, in one insert (one row without an account when it returned none).
    async fn read_many<T>(
        &self,
        result: Result<T, BillingError>,
        accounts_of: impl FnOnce(&T) -> Vec<Uuid>,
    ) -> Result<T, ApiError> {
        match result {
            Ok(value) => {
                let accounts = accounts_of(&value);
                let row = |account_id: Option<Uuid>| AuditRecord {
                    action: self.action,
                    resource: self.resource,
                    resource_id: self.resource_id.or(account_id),
                    account_id: account_id.or(self.account_id),
                    amount: None,
                    outcome: Outcome::Success,
                };
                let records: Vec<AuditRecord> = if accounts.is_empty() {
                    vec![row(None)]
                } else {
                    accounts.into_iter().map(|a| row(Some(a))).collect()
                };
                self.state.store.record_audits(&records, &self.meta).await?;
                Ok(value)
            }
            Err(e) => Err(self.failed(e).await),
        }
    }

    /// A write: its success was audited in its transaction; a failure is audited here.
    async fn write<T>(&self, result: Result<T, BillingError>) -> Result<T, ApiError> {
        match result {
            Ok(value) => Ok(value),
            Err(e) => Err(self.failed(e).await),
        }
    }

    async fn failed(&self, err: BillingError) -> ApiError {
        if let Err(audit) = self.record(err.outcome(), None).await {
            // The refusal itself is what the client must see; the audit failure goes to the log.
            tracing::error!(error = %audit, action = self.action.name(), "cannot audit a refused request");
        }
        err.into()
    }
}

/// `Idempotent-Replayed: true` on a replayed result.
fn replay_headers<T>(written: &Written<T>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if written.replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_route() {
        crate::openapi::assert_conventions(&openapi_doc());
        let doc = serde_json::to_value(openapi_doc()).expect("json");
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/billing/accounts",
            "/billing/accounts/{id}",
            "/billing/accounts/{id}/statement",
            "/billing/accounts/{id}/invoices",
            "/billing/invoices",
            "/billing/invoices/{id}",
            "/billing/invoices/{id}/issue",
            "/billing/invoices/{id}/void",
            "/billing/invoices/{id}/payments",
            "/billing/payments/{id}",
            "/billing/payments/{id}/refund",
            "/billing/audit",
        ] {
            assert!(paths.contains_key(path), "{path} missing from {paths:?}");
        }
        assert!(doc["components"]["schemas"]["Invoice"].is_object());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).expect("default"), DEFAULT_LIMIT);
        assert_eq!(limit(Some(1000)).expect("max"), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
    }
}
