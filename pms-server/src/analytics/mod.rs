//! The analytics service (port 4002): consumes every topic (group `analytics-service`), stores
//! each event once with the aggregates it implies, and serves summary, registrations, stored events
//! and a live Server-Sent Events stream fed from the store ([`live`]), so every replica's clients
//! see every event. It never stores or logs patient names, emails or addresses.

mod consumer;
mod live;
mod routes;
mod store;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use pms_proto::rest::StoredEvent;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

pub use store::{
    AnalyticsStore, Delta, NewEvent, PgAnalyticsStore, SqlAnalyticsStore, SqliteAnalyticsStore,
};

use crate::authn::Verifier;
use crate::config::Settings;
use crate::events::{TOPICS, Transport};
use crate::http::{self, BearerSecurity, ReadyCheck};
use crate::openapi::Conventions;
use crate::store::{Db, Migrations, ServiceDb};
use crate::supervise::Background;

static MIGRATIONS: Migrations = Migrations {
    postgres: &sqlx::migrate!("./migrations/postgres/analytics"),
    sqlite: &sqlx::migrate!("./migrations/sqlite/analytics"),
};

/// The consumer group of this service.
pub const CONSUMER_GROUP: &str = "analytics-service";

#[derive(Clone)]
pub(crate) struct AnalyticsState {
    store: Arc<dyn AnalyticsStore>,
    live: broadcast::Sender<StoredEvent>,
    verifier: Arc<Verifier>,
    heartbeat: std::time::Duration,
    /// Ends live streams when the service shuts down (graceful shutdown waits for open responses).
    shutdown: CancellationToken,
    /// Open live streams per user (capped).
    streams: Arc<crate::authn::streams::UserStreams>,
}

impl FromRef<AnalyticsState> for Arc<Verifier> {
    fn from_ref(state: &AnalyticsState) -> Self {
        state.verifier.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "PMS analytics service", description = "Aggregates and live events. Through the gateway: /api/analytics/*."),
    paths(routes::summary, routes::registrations, routes::events, routes::stream),
    components(schemas(
        pms_proto::rest::AnalyticsSummary,
        pms_proto::rest::PatientStats,
        pms_proto::rest::AccountStats,
        pms_proto::rest::CurrencyTotals,
        pms_proto::rest::RegistrationBucket,
        pms_proto::rest::StoredEvent,
        pms_proto::rest::Problem,
        pms_proto::rest::FieldError
    )),
    modifiers(&BearerSecurity, &Conventions),
    tags((name = "analytics"))
)]
struct ApiDoc;

/// Builds the analytics service: its store, its consumer (supervised in `background`) and its
/// router.
pub async fn build(
    settings: &Settings,
    background: impl Into<Background>,
) -> anyhow::Result<Router> {
    let background: Background = background.into();
    let shutdown = background.shutdown().clone();
    let db = crate::store::connect(
        ServiceDb::Analytics,
        settings.database_url_for(ServiceDb::Analytics),
        &settings.data_dir,
        settings.database.max_connections,
        &MIGRATIONS,
    )
    .await?;
    crate::observe::watch_sse("analytics");
    let store: Arc<dyn AnalyticsStore> = match &db {
        Db::Postgres(pool) => Arc::new(SqlAnalyticsStore(pool.clone())),
        Db::Sqlite(pool) => Arc::new(SqlAnalyticsStore(pool.clone())),
    };
    let (live, _) = broadcast::channel(1024);
    let stored = Arc::new(tokio::sync::Notify::new());
    {
        let (store, live, stored, shutdown) = (
            store.clone(),
            live.clone(),
            stored.clone(),
            shutdown.clone(),
        );
        crate::supervise::spawn(&background, "analytics live feed", move || {
            live::tail(
                store.clone(),
                live.clone(),
                stored.clone(),
                shutdown.clone(),
            )
        });
    }
    let transport = Transport::from_settings(settings, &background).await?;
    let handler = Arc::new(consumer::AnalyticsConsumer {
        store: store.clone(),
        stored,
    });
    transport.spawn_consumer(CONSUMER_GROUP, &TOPICS, handler, &background);
    tracing::info!(
        transport = transport.name(),
        "analytics consuming {TOPICS:?}"
    );

    let verifier = Arc::new(Verifier::remote(
        settings.auth.url.base(),
        &settings.auth.issuer,
        &settings.auth.audience,
    ));
    let state = AnalyticsState {
        store,
        live,
        verifier: verifier.clone(),
        heartbeat: settings.analytics.heartbeat,
        shutdown: shutdown.clone(),
        streams: Arc::new(crate::authn::streams::UserStreams::new(
            settings.analytics.max_streams_per_user,
        )),
    };
    let ready: ReadyCheck = Arc::new(move || {
        let (db, transport, verifier) = (db.clone(), transport.clone(), verifier.clone());
        Box::pin(async move {
            db.ping().await?;
            transport.ping().await?;
            verifier
                .ensure_keys()
                .await
                .map_err(|e| format!("auth: {e}"))
        })
    });
    let router = Router::new()
        .route("/analytics/summary", get(routes::summary))
        .route("/analytics/registrations", get(routes::registrations))
        .route("/analytics/events", get(routes::events))
        .route("/analytics/events/stream", get(routes::stream))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        )
        .with_state(state);
    Ok(http::with_common_layers(
        router,
        "analytics",
        &settings.http,
        ready,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_follows_the_conventions() {
        let doc = ApiDoc::openapi();
        crate::openapi::assert_conventions(&doc);
        let paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/analytics/events",
                "/analytics/events/stream",
                "/analytics/registrations",
                "/analytics/summary"
            ]
        );
    }
}
