//! Billing endpoints (`/api/billing/*`): accounts, invoices, payments, refunds, statements and
//! the billing audit log. Money-moving POSTs take an optional `Idempotency-Key` (the same key
//! replays the first result instead of moving money twice).

use pms_proto::rest::{
    BillingAccount, BillingAuditEntry, CreateAccountRequest, CreateInvoiceRequest,
    CreatePaymentRequest, Invoice, Payment, Refund, RefundRequest, Statement, UpdateAccountRequest,
};
use reqwest::Method;
use reqwest::header::HeaderName;
use uuid::Uuid;

use super::{ApiClient, ApiRequest};
use crate::error::Result;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

fn with_key(request: ApiRequest, key: Option<&str>) -> ApiRequest {
    match key {
        Some(key) => request.header(IDEMPOTENCY_KEY, key),
        None => request,
    }
}

fn limited(request: ApiRequest, limit: Option<u32>) -> ApiRequest {
    match limit {
        Some(limit) => request.query("limit", limit),
        None => request,
    }
}

impl ApiClient {
    /// `GET /api/billing/accounts` (newest first), optionally a patient's.
    pub async fn billing_accounts(
        &self,
        patient: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<BillingAccount>> {
        let mut request = limited(ApiRequest::new(Method::GET, "/api/billing/accounts"), limit);
        if let Some(patient) = patient {
            request = request.query("patientId", patient);
        }
        self.send(request).await?.json().await
    }

    /// `GET /api/billing/accounts/{id}` (with its balance).
    pub async fn billing_account(&self, id: Uuid) -> Result<BillingAccount> {
        let request = ApiRequest::new(Method::GET, format!("/api/billing/accounts/{id}"))
            .about(format!("billing account {id}"));
        self.send(request).await?.json().await
    }

    /// `POST /api/billing/accounts`: the patient's account, created if missing.
    pub async fn create_billing_account(&self, patient_id: &str) -> Result<BillingAccount> {
        let body = CreateAccountRequest {
            patient_id: patient_id.to_owned(),
        };
        self.send(ApiRequest::new(Method::POST, "/api/billing/accounts").json(&body))
            .await?
            .json()
            .await
    }

    /// `PATCH /api/billing/accounts/{id}`: change the status.
    pub async fn update_billing_account(
        &self,
        id: Uuid,
        body: &UpdateAccountRequest,
    ) -> Result<BillingAccount> {
        let request = ApiRequest::new(Method::PATCH, format!("/api/billing/accounts/{id}"))
            .json(body)
            .about(format!("billing account {id}"));
        self.send(request).await?.json().await
    }

    /// `GET /api/billing/accounts/{id}/statement`.
    pub async fn statement(&self, id: Uuid) -> Result<Statement> {
        let request = ApiRequest::new(Method::GET, format!("/api/billing/accounts/{id}/statement"))
            .about(format!("billing account {id}"));
        self.send(request).await?.json().await
    }

    /// `GET /api/billing/accounts/{id}/invoices` (newest first).
    pub async fn invoices(&self, account: Uuid, limit: Option<u32>) -> Result<Vec<Invoice>> {
        let request = ApiRequest::new(
            Method::GET,
            format!("/api/billing/accounts/{account}/invoices"),
        )
        .about(format!("billing account {account}"));
        self.send(limited(request, limit)).await?.json().await
    }

    /// `POST /api/billing/accounts/{id}/invoices`: a DRAFT invoice.
    pub async fn create_invoice(
        &self,
        account: Uuid,
        body: &CreateInvoiceRequest,
        key: Option<&str>,
    ) -> Result<Invoice> {
        let request = ApiRequest::new(
            Method::POST,
            format!("/api/billing/accounts/{account}/invoices"),
        )
        .json(body)
        .about(format!("billing account {account}"));
        self.send(with_key(request, key)).await?.json().await
    }

    /// `GET /api/billing/invoices/{id}`.
    pub async fn invoice(&self, id: Uuid) -> Result<Invoice> {
        let request = ApiRequest::new(Method::GET, format!("/api/billing/invoices/{id}"))
            .about(format!("invoice {id}"));
        self.send(request).await?.json().await
    }

    /// `POST /api/billing/invoices/{id}/issue` or `/void`.
    pub async fn invoice_action(
        &self,
        id: Uuid,
        action: &str,
        key: Option<&str>,
    ) -> Result<Invoice> {
        let request = ApiRequest::new(Method::POST, format!("/api/billing/invoices/{id}/{action}"))
            .about(format!("invoice {id}"));
        self.send(with_key(request, key)).await?.json().await
    }

    /// `POST /api/billing/invoices/{id}/payments`.
    pub async fn pay(
        &self,
        invoice: Uuid,
        body: &CreatePaymentRequest,
        key: Option<&str>,
    ) -> Result<Payment> {
        let request = ApiRequest::new(
            Method::POST,
            format!("/api/billing/invoices/{invoice}/payments"),
        )
        .json(body)
        .about(format!("invoice {invoice}"));
        self.send(with_key(request, key)).await?.json().await
    }

    /// `GET /api/billing/invoices/{id}/payments`.
    pub async fn payments(&self, invoice: Uuid) -> Result<Vec<Payment>> {
        let request = ApiRequest::new(
            Method::GET,
            format!("/api/billing/invoices/{invoice}/payments"),
        )
        .about(format!("invoice {invoice}"));
        self.send(request).await?.json().await
    }

    /// `GET /api/billing/payments/{id}`.
    pub async fn payment(&self, id: Uuid) -> Result<Payment> {
        let request = ApiRequest::new(Method::GET, format!("/api/billing/payments/{id}"))
            .about(format!("payment {id}"));
        self.send(request).await?.json().await
    }

    /// `POST /api/billing/payments/{id}/refund`.
    pub async fn refund(
        &self,
        payment: Uuid,
        body: &RefundRequest,
        key: Option<&str>,
    ) -> Result<Refund> {
        let request = ApiRequest::new(
            Method::POST,
            format!("/api/billing/payments/{payment}/refund"),
        )
        .json(body)
        .about(format!("payment {payment}"));
        self.send(with_key(request, key)).await?.json().await
    }

    /// `GET /api/billing/invoices?number=`: the invoice with this human number, if any.
    pub async fn find_invoice(&self, number: &str) -> Result<Option<Invoice>> {
        let request = ApiRequest::new(Method::GET, "/api/billing/invoices").query("number", number);
        let found: Vec<Invoice> = self.send(request).await?.json().await?;
        Ok(found.into_iter().next())
    }

    /// `GET /api/billing/audit` (ADMIN).
    pub async fn billing_audit(
        &self,
        account: Option<Uuid>,
        limit: Option<u32>,
    ) -> Result<Vec<BillingAuditEntry>> {
        let mut request = limited(ApiRequest::new(Method::GET, "/api/billing/audit"), limit);
        if let Some(account) = account {
            request = request.query("accountId", account);
        }
        self.send(request).await?.json().await
    }
}
