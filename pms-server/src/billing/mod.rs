//! The billing service: a ledger of accounts (one per patient), invoices, payments and refunds
//! (DESIGN §7), behind two listeners that share one store:
//!
//! - REST on the billing port (4001), under `/billing/…` ([`routes`]);
//! - gRPC on the billing gRPC port (9001): `BillingService` with the reference system's
//!   `CreateBillingAccount` ([`grpc`]).
//!
//! Layers: [`model`] parses input into valid types, [`ledger`] holds the rules as pure functions,
//! [`store`] applies them atomically on PostgreSQL or SQLite. [`events`]: billing announces its
//! changes on the `billing` topic (outbox + relay) and consumes the `patient` topic.

pub mod account_writer;
pub mod events;
pub mod grpc;
pub mod idempotency;
pub mod ledger;
pub mod model;
pub mod routes;
pub mod store;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use pms_proto::billing::billing_service_server::BillingServiceServer;

use crate::authn::Verifier;
use crate::config::Settings;
use crate::events::{TOPIC_PATIENT, Transport, relay};
use crate::http::{ReadyCheck, with_common_layers};
use crate::store as db;
use crate::supervise::Background;

/// The billing gRPC server, ready to serve with [`grpc::serve`].
pub type BillingGrpcServer = BillingServiceServer<grpc::BillingGrpc>;

/// The built service: its REST router (with the common layers) and its gRPC server, to be served
/// on their own listeners ([`crate::http::serve`], [`grpc::serve`]).
pub struct Billing {
    pub rest: Router,
    pub grpc: BillingGrpcServer,
}

/// Connects and migrates the billing database, starts the outbox relay and the patient-event
/// consumer (both supervised in `background`, stopped by its shutdown) and builds both APIs.
pub async fn build(
    settings: &Settings,
    background: impl Into<Background>,
) -> anyhow::Result<Billing> {
    let background: Background = background.into();
    let database = db::connect(
        db::ServiceDb::Billing,
        settings.database_url_for(db::ServiceDb::Billing),
        &settings.data_dir,
        settings.database.max_connections,
        &store::migrations(),
    )
    .await
    .context("while opening the billing database")?;
    let transport = Transport::from_settings(settings, &background)
        .await
        .context("while opening billing's event transport")?;
    crate::observe::watch_outbox("billing", &database);
    // The relay drains once more at shutdown; anything left goes out at next start.
    let (waker, _supervised) = relay::spawn(
        "billing",
        database.clone(),
        transport.publisher(),
        settings.events.outbox_retention,
        &background,
    );
    let store = store::for_db(&database, waker);
    let consumer = Arc::new(events::PatientEvents {
        store: store.clone(),
    });
    transport.spawn_consumer(
        events::CONSUMER_GROUP,
        &[TOPIC_PATIENT],
        consumer,
        &background,
    );
    tracing::info!(
        transport = transport.name(),
        "billing consuming `{TOPIC_PATIENT}`"
    );
    let verifier = Arc::new(Verifier::remote(
        settings.auth.url.base(),
        &settings.auth.issuer,
        &settings.auth.audience,
    ));
    let ready: ReadyCheck = Arc::new(move || {
        let (database, transport) = (database.clone(), transport.clone());
        Box::pin(async move {
            database.ping().await?;
            transport.ping().await
        })
    });
    let state = routes::BillingState {
        store: store.clone(),
        verifier: verifier.clone(),
    };
    let rest = with_common_layers(routes::router(state), "billing", &settings.http, ready);
    let grpc = grpc::BillingGrpc::new(store, verifier).into_server();
    Ok(Billing { rest, grpc })
}
