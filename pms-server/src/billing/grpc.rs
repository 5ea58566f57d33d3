//! The billing gRPC API (tonic): `BillingService` at the reference system's unpackaged paths
//! (`/BillingService/CreateBillingAccount`, …), served on its own listener (port 9001).
//!
//! Authentication: `authorization: Bearer <access token>` metadata, verified like every REST call.
//! `CreateBillingAccount` is the one exception that also accepts calls without a token: the
//! reference system's clients send none, and the call is idempotent and only ever creates an
//! empty ACTIVE account for a patient id (nothing is read or moved). A token that is present must
//! be valid. Every other RPC requires a valid token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pms_proto::billing::billing_service_server::{BillingService, BillingServiceServer};
use pms_proto::billing::get_billing_account_request::Key;
use pms_proto::billing::{
    BillingAccount, BillingRequest, BillingResponse, GetBillingAccountRequest,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use super::account_writer::AccountWriter;
use super::ledger::Refusal;
use super::model::{Contact, NewAccount, PatientRef};
use super::store::{AuditMeta, AuditRecord, BillingAction, BillingError, BillingStore, Outcome};
use crate::authn::{Claims, TokenError, Verifier};
use crate::request_meta::{RequestId, RequestMeta};

/// Longest a call may run, whatever deadline the client sent.
const MAX_CALL_TIME: Duration = Duration::from_secs(30);

/// The `BillingService` implementation.
pub struct BillingGrpc {
    store: Arc<dyn BillingStore>,
    /// Group-commits `CreateBillingAccount`.
    accounts: AccountWriter,
    verifier: Arc<Verifier>,
}

impl BillingGrpc {
    /// The service over `store` (starts its account writer task: call within the runtime).
    pub fn new(store: Arc<dyn BillingStore>, verifier: Arc<Verifier>) -> Self {
        BillingGrpc {
            accounts: AccountWriter::spawn(Arc::clone(&store)),
            store,
            verifier,
        }
    }

    /// The tonic service to serve.
    pub fn into_server(self) -> BillingServiceServer<BillingGrpc> {
        BillingServiceServer::new(self)
    }

    /// The caller's verified claims; `None` without a token. A token that is present must verify.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Option<Claims>, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Ok(None);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::unauthenticated("malformed authorization metadata"))?;
        match self.verifier.verify(token).await {
            Ok(claims) => Ok(Some(claims)),
            Err(TokenError::KeysUnavailable(reason)) => {
                tracing::warn!(%reason, "cannot fetch signing keys from auth");
                Err(Status::unavailable("the auth service is unavailable"))
            }
            Err(e) => {
                tracing::debug!(error = %e, "token refused");
                Err(Status::unauthenticated("invalid or expired token"))
            }
        }
    }

    /// The non-PHI audit context of a call.
    fn audit_meta<T>(request: &Request<T>, caller: Option<&Claims>) -> AuditMeta {
        // gRPC has no proxy in front: the peer is the caller. A request id that is not a
        // bounded one is dropped rather than stored.
        let request_meta = RequestMeta {
            client_ip: request.remote_addr().map(|a| a.ip()),
            request_id: request
                .metadata()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .and_then(RequestId::parse),
        };
        AuditMeta::new(caller.map(|c| (c.sub, c.role)), request_meta)
    }

    async fn create_account(
        &self,
        request: Request<BillingRequest>,
    ) -> Result<Response<BillingResponse>, Status> {
        let caller = match self.caller(&request).await {
            Ok(caller) => caller,
            // Anonymous calls are allowed here, so a token that cannot be checked right now (auth
            // unreachable, unlike an invalid one) must not cost the patient their account.
            Err(status) if status.code() == Code::Unavailable => None,
            Err(status) => return Err(status),
        };
        let meta = Self::audit_meta(&request, caller.as_ref());
        let message = request.into_inner();
        let patient = PatientRef::parse(&message.patient_id).map_err(Status::invalid_argument)?;
        let contact =
            Contact::parse(&message.name, &message.email).map_err(Status::invalid_argument)?;
        let new = NewAccount { patient, contact };
        let (account, created) = self.accounts.ensure(new, meta).await?;
        // Debug: every patient create asks (its own INFO line says so), and the creation is
        // in billing's audit log; an INFO line here doubled the log volume of creates.
        tracing::debug!(account_id = %account.id, created, "billing account requested over gRPC");
        Ok(Response::new(BillingResponse {
            account_id: account.id.to_string(),
            status: account.status.as_str().to_owned(),
        }))
    }

    async fn get_account(
        &self,
        request: Request<GetBillingAccountRequest>,
    ) -> Result<Response<BillingAccount>, Status> {
        let Some(caller) = self.caller(&request).await? else {
            return Err(Status::unauthenticated("a bearer token is required"));
        };
        let meta = Self::audit_meta(&request, Some(&caller));
        let (result, account_id) = match request.into_inner().key {
            Some(Key::AccountId(id)) => {
                let id = Uuid::parse_str(id.trim())
                    .map_err(|_| Status::invalid_argument("accountId must be a UUID"))?;
                (self.store.account(id).await, Some(id))
            }
            Some(Key::PatientId(patient)) => {
                let patient = PatientRef::parse(&patient).map_err(Status::invalid_argument)?;
                (self.store.account_by_patient(&patient).await, None)
            }
            None => {
                return Err(Status::invalid_argument(
                    "accountId or patientId is required",
                ));
            }
        };
        // Reads of billing data are audited like over REST.
        let record = AuditRecord {
            action: BillingAction::AccountRead,
            resource: "account",
            resource_id: result.as_ref().map(|a| a.id).ok().or(account_id),
            account_id: result.as_ref().map(|a| a.id).ok().or(account_id),
            amount: None,
            outcome: match &result {
                Ok(_) => Outcome::Success,
                Err(e) => e.outcome(),
            },
        };
        self.store
            .record_audit(&record, &meta)
            .await
            .map_err(BillingError::from)?;
        let account = result?;
        Ok(Response::new(BillingAccount {
            account_id: account.id.to_string(),
            patient_id: account.patient_id,
            status: account.status.as_str().to_owned(),
            currency: account.currency.unwrap_or_default(),
            balance: account.balance,
            created_at: account.created_at.to_rfc3339(),
        }))
    }
}

#[tonic::async_trait]
impl BillingService for BillingGrpc {
    #[tracing::instrument(name = "grpc.CreateBillingAccount", skip_all)]
    async fn create_billing_account(
        &self,
        request: Request<BillingRequest>,
    ) -> Result<Response<BillingResponse>, Status> {
        let started = Instant::now();
        observe(
            "CreateBillingAccount",
            started,
            self.create_account(request).await,
        )
    }

    #[tracing::instrument(name = "grpc.GetBillingAccount", skip_all)]
    async fn get_billing_account(
        &self,
        request: Request<GetBillingAccountRequest>,
    ) -> Result<Response<BillingAccount>, Status> {
        let started = Instant::now();
        observe(
            "GetBillingAccount",
            started,
            self.get_account(request).await,
        )
    }
}

/// Records the call's metrics (`grpc_requests_total`, `grpc_request_duration_seconds`).
fn observe<T>(
    method: &'static str,
    started: Instant,
    result: Result<T, Status>,
) -> Result<T, Status> {
    let code = match &result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    };
    let labels = [
        ("service", "billing".to_owned()),
        ("method", method.to_owned()),
        ("code", format!("{code:?}")),
    ];
    metrics::counter!("grpc_requests_total", &labels).increment(1);
    metrics::histogram!("grpc_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    result
}

impl From<BillingError> for Status {
    fn from(err: BillingError) -> Self {
        match err {
            BillingError::NotFound(what) => Status::not_found(format!("{what} not found")),
            BillingError::Refused(Refusal::Conflict(m)) => Status::failed_precondition(m),
            BillingError::Refused(Refusal::Unprocessable(m)) => Status::invalid_argument(m),
            e @ BillingError::IdempotencyMismatch => Status::already_exists(e.to_string()),
            BillingError::Store(e) => {
                tracing::error!(error = format!("{e:#}"), "billing store failed");
                Status::internal("internal error")
            }
        }
    }
}

/// Serves `server` on `listener` until `shutdown` fires, then lets in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    server: BillingServiceServer<BillingGrpc>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tonic::transport::Server::builder()
        .timeout(MAX_CALL_TIME)
        .add_service(server)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
        .await
        .map_err(std::io::Error::other)
}
