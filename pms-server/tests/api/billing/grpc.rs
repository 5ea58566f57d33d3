//! The billing gRPC API over real sockets with the generated client: the reference system's
//! `CreateBillingAccount` (no token, unpackaged path, idempotent), `GetBillingAccount` (token
//! required), and the shared `BillingClient` against the real server.

use pms_proto::billing::billing_service_client::BillingServiceClient;
use pms_proto::billing::get_billing_account_request::Key;
use pms_proto::billing::{BillingRequest, BillingResponse, GetBillingAccountRequest};
use pms_proto::rest::AccountStatus;
use pms_server::clients::{BillingClient, CallContext};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use uuid::Uuid;

use super::{s, spawn_billing};
use crate::helpers::BACKENDS;

async fn connect(url: String) -> BillingServiceClient<Channel> {
    BillingServiceClient::connect(url).await.expect("connect")
}

fn request(patient_id: &str) -> BillingRequest {
    BillingRequest {
        patient_id: patient_id.to_owned(),
        name: "Jane Roe".to_owned(),
        email: "jane.roe@example.com".to_owned(),
    }
}

#[tokio::test]
async fn create_billing_account_is_idempotent_and_needs_no_token() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        let mut grpc = connect(app.grpc_url()).await;
        let patient = Uuid::new_v4().to_string();
        let first = grpc
            .create_billing_account(request(&patient))
            .await
            .expect("create")
            .into_inner();
        assert!(!first.account_id.is_empty());
        assert_eq!(first.status, "ACTIVE");
        let second = grpc
            .create_billing_account(request(&patient))
            .await
            .expect("again")
            .into_inner();
        assert_eq!(
            second, first,
            "{backend:?}: same account for the same patient"
        );
        let other = grpc
            .create_billing_account(request(&Uuid::new_v4().to_string()))
            .await
            .expect("other")
            .into_inner();
        assert_ne!(other.account_id, first.account_id);
        // The account is visible over REST, with its patient id.
        let found = app
            .api
            .get(
                &format!("/billing/accounts?patientId={patient}"),
                &app.tokens.viewer,
            )
            .await;
        assert_eq!(found.status, 200);
        assert_eq!(s(&found.body[0], "id"), first.account_id);
        assert_eq!(s(&found.body[0], "patientId"), patient);
        app.stop().await;
    }
}

/// A hand-rolled call on the literal path a reference client uses.
#[tokio::test]
async fn the_reference_unpackaged_path_answers() {
    let app = spawn_billing(crate::helpers::Backend::Sqlite).await;
    let channel = Channel::from_shared(app.grpc_url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/BillingService/CreateBillingAccount");
    let codec = tonic_prost::ProstCodec::<BillingRequest, BillingResponse>::default();
    let response = grpc
        .unary(tonic::Request::new(request("12345")), path, codec)
        .await
        .expect("reference path")
        .into_inner();
    assert_eq!(response.status, "ACTIVE");
    Uuid::parse_str(&response.account_id).expect("account id is a UUID");
    app.stop().await;
}

#[tokio::test]
async fn tokens_are_checked_on_grpc() {
    let app = spawn_billing(crate::helpers::Backend::Sqlite).await;
    let mut grpc = connect(app.grpc_url()).await;
    let patient = Uuid::new_v4().to_string();
    let created = grpc
        .create_billing_account(request(&patient))
        .await
        .expect("create")
        .into_inner();

    let get = |key: Key| GetBillingAccountRequest { key: Some(key) };
    let status = grpc
        .get_billing_account(get(Key::PatientId(patient.clone())))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut with_token = tonic::Request::new(get(Key::AccountId(created.account_id.clone())));
    let bearer = MetadataValue::try_from(format!("Bearer {}", app.tokens.viewer)).expect("meta");
    with_token
        .metadata_mut()
        .insert("authorization", bearer.clone());
    let account = grpc
        .get_billing_account(with_token)
        .await
        .expect("with token")
        .into_inner();
    assert_eq!(account.account_id, created.account_id);
    assert_eq!(
        (account.patient_id.as_str(), account.status.as_str()),
        (patient.as_str(), "ACTIVE")
    );
    assert_eq!((account.balance, account.currency.as_str()), (0, ""));

    let mut unknown = tonic::Request::new(get(Key::AccountId(Uuid::new_v4().to_string())));
    unknown.metadata_mut().insert("authorization", bearer);
    let status = grpc
        .get_billing_account(unknown)
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    // A token that is present must be valid, even where none is required.
    let mut forged = tonic::Request::new(request(&patient));
    forged.metadata_mut().insert(
        "authorization",
        MetadataValue::from_static("Bearer e30.e30.c2ln"),
    );
    let status = grpc
        .create_billing_account(forged)
        .await
        .expect_err("forged");
    assert_eq!(status.code(), Code::Unauthenticated);

    let status = grpc
        .create_billing_account(request("  "))
        .await
        .expect_err("empty patient id");
    assert_eq!(status.code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn the_shared_client_creates_accounts_with_the_callers_token() {
    for backend in BACKENDS {
        let app = spawn_billing(backend).await;
        let client = BillingClient::new(&app.grpc_url()).expect("client");
        let patient = Uuid::new_v4();
        let (user, token) = app.issuer.user(pms_proto::rest::Role::Clinician);
        let ctx = CallContext::bearer(&token).with_request_id(Some("req-grpc-1"));
        let created = client
            .create_billing_account(patient, "Jane Roe", "jane.roe@example.com", &ctx)
            .await
            .expect("create");
        assert_eq!(created.status, AccountStatus::Active);
        let again = client
            .create_billing_account(
                patient,
                "Jane Roe",
                "jane.roe@example.com",
                &CallContext::default(),
            )
            .await
            .expect("again");
        assert_eq!(again, created);
        let account = client
            .get_billing_account(Key::PatientId(patient.to_string()), &ctx)
            .await
            .expect("get");
        assert_eq!(account.account_id, created.account_id.to_string());

        // Audited with the forwarded caller and request id, and no name or email.
        let audit = app
            .api
            .get(
                &format!("/billing/audit?accountId={}", created.account_id),
                &app.tokens.admin,
            )
            .await;
        let row = audit
            .body
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["action"] == "billing.account.create")
            .cloned()
            .expect("create row");
        assert_eq!(row["actorId"], user.to_string());
        assert_eq!(row["actorRole"], "CLINICIAN");
        assert_eq!(row["requestId"], "req-grpc-1");
        assert_eq!(row["patientId"], patient.to_string());
        let read = audit
            .body
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["action"] == "billing.account.read")
            .cloned()
            .expect("gRPC reads are audited");
        assert_eq!(
            (read["actorRole"].as_str(), read["outcome"].as_str()),
            (Some("CLINICIAN"), Some("SUCCESS"))
        );
        assert_eq!(row["outcome"], "SUCCESS");
        assert!(
            !audit.body.to_string().contains("jane"),
            "no PHI in audit rows"
        );
        app.stop().await;
    }
}
