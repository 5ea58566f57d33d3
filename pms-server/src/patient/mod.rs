//! The patient service (DESIGN §5–§7): patients with server-generated MRNs, optimistic
//! concurrency, soft deletes, full version history, and an audit row for every access to patient
//! data. Every request's bearer token is verified here again (JWKS from the auth service):
//! nothing is trusted merely for reaching this port.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;

use crate::authn::Verifier;
use crate::clients::billing::{BillingClient, InProcessBilling};
use crate::config::Settings;
use crate::events::{Transport, relay};
use crate::http::{self, ReadyCheck};
use crate::store::{self as db, ServiceDb};
use crate::supervise::Background;

pub mod audit_query;
pub mod audit_writer;
pub mod create_writer;
pub mod cursor;
pub mod events;
pub mod model;
pub mod paging;
pub mod routes;
pub mod store;

pub use routes::ApiDoc;
pub use store::MIGRATIONS;

/// Builds the patient service's router (with the common layers): connects and migrates its
/// database, and readies token verification against the auth service's keys. Its outbox relay
/// runs supervised in `background` (a shutdown token works too). Billing accounts are created
/// over gRPC at `patient.billing_grpc_url`.
pub async fn build(
    settings: &Settings,
    background: impl Into<Background>,
) -> anyhow::Result<Router> {
    let billing = BillingClient::new(settings.patient.billing_grpc_url.base())
        .context("invalid `patient.billing_grpc_url`")?;
    build_with(settings, background.into(), billing).await
}

/// [`build`] for the all-in-one server: billing's gRPC service is called in this process.
pub async fn build_in_process(
    settings: &Settings,
    background: impl Into<Background>,
    billing: &InProcessBilling,
) -> anyhow::Result<Router> {
    build_with(
        settings,
        background.into(),
        BillingClient::in_process(billing),
    )
    .await
}

async fn build_with(
    settings: &Settings,
    background: Background,
    billing: BillingClient,
) -> anyhow::Result<Router> {
    let db = db::connect(
        ServiceDb::Patient,
        settings.database_url_for(ServiceDb::Patient),
        &settings.data_dir,
        settings.database.max_connections,
        &MIGRATIONS,
    )
    .await
    .context("while opening the patient database")?;
    let verifier = Arc::new(Verifier::remote(
        settings.auth.url.base(),
        &settings.auth.issuer,
        &settings.auth.audience,
    ));
    let ready: ReadyCheck = {
        let (db, verifier) = (db.clone(), Arc::clone(&verifier));
        Arc::new(move || {
            let (db, verifier) = (db.clone(), Arc::clone(&verifier));
            Box::pin(async move {
                db.ping().await?;
                verifier
                    .ensure_keys()
                    .await
                    .map_err(|e| format!("auth signing keys: {e}"))
            })
        })
    };
    // Events leave through the outbox: the relay publishes what the store's transactions commit.
    let transport = Transport::from_settings(settings, &background).await?;
    crate::observe::watch_outbox("patient", &db);
    let (waker, _supervised) = relay::spawn(
        "patient",
        db.clone(),
        transport.publisher(),
        settings.events.outbox_retention,
        &background,
    );
    let store = store::for_db(db, waker);
    let offer = cursor::CursorKey::generate_bytes()?;
    let key = store
        .cursor_key(&offer)
        .await
        .context("while loading the cursor key")?;
    let cursor_key = cursor::CursorKey::from_bytes(&key)
        .context("the stored cursor key (patient table `cursor_key`) is not 32 bytes")?;
    let state = routes::AppState {
        audits: audit_writer::AuditWriter::spawn(Arc::clone(&store)),
        creates: create_writer::CreateWriter::spawn(Arc::clone(&store)),
        store,
        cursor_key: Arc::new(cursor_key),
        billing: Arc::new(billing),
        verifier,
    };
    Ok(http::with_common_layers(
        routes::router(state),
        "patient",
        &settings.http,
        ready,
    ))
}
