//! Composition: which services a process runs, their listeners, and supervision.
//!
//! In all-in-one mode the gateway listens on its configured address and billing's gRPC API on
//! `billing.bind:billing.grpc_port` (loopback 9001 by default, for the reference system's gRPC
//! clients; `billing.grpc_enabled = false` turns that off); the other internal services bind
//! loopback on ephemeral ports (no clash with anything else on 4000/4005) and the gateway and
//! services are pointed at them. Services still talk over HTTP (and gRPC) exactly as in
//! distributed mode. Billing has two listeners (REST and gRPC), supervised like any service.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{HttpUrl, Settings};
use crate::supervise::Background;
use crate::{analytics, auth, billing, gateway, http, patient};

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topology {
    /// Every service in one process; only the gateway is public.
    All,
    Gateway,
    Auth,
    Patient,
    /// The billing service: REST and gRPC.
    Billing,
    Analytics,
}

/// A started process: its bound addresses and the supervisor task.
pub struct Running {
    pub gateway: Option<SocketAddr>,
    pub auth: Option<SocketAddr>,
    pub patient: Option<SocketAddr>,
    /// Billing REST.
    pub billing: Option<SocketAddr>,
    /// Billing gRPC.
    pub billing_grpc: Option<SocketAddr>,
    pub analytics: Option<SocketAddr>,
    shutdown: CancellationToken,
    /// Supervised background tasks (relays, consumers, …); one given up stops the process.
    background: Background,
    tasks: JoinSet<(&'static str, std::io::Result<()>)>,
}

impl Running {
    /// Stops every service gracefully and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        while let Some(done) = self.tasks.join_next().await {
            let (name, result) = done.context("service task panicked")?;
            result.with_context(|| format!("{name} service failed while stopping"))?;
        }
        Ok(())
    }

    /// Runs until `shutdown` fires (then drains), a service stops on its own, or a supervised
    /// background task is given up (then stops the others and reports which one and why).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let background = self.background.clone();
        let first = tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => None,
            message = background.failed() => {
                self.shutdown.cancel();
                while self.tasks.join_next().await.is_some() {}
                anyhow::bail!("{message}");
            }
            done = self.tasks.join_next() => done,
        };
        // A service that finished cleanly because shutdown began (it may win the race above)
        // did not stop unexpectedly.
        let shutting_down = self.shutdown.is_cancelled();
        self.shutdown.cancel();
        let mut failure = None;
        if let Some(done) = first {
            let (name, result) = done.context("service task panicked")?;
            failure = match result {
                Ok(()) if shutting_down => None,
                Ok(()) => Some(anyhow::anyhow!("the {name} service stopped unexpectedly")),
                Err(e) => {
                    Some(anyhow::Error::new(e).context(format!("the {name} service stopped")))
                }
            };
        }
        while let Some(done) = self.tasks.join_next().await {
            match done {
                Ok((name, Err(e))) if failure.is_none() => {
                    failure =
                        Some(anyhow::Error::new(e).context(format!("the {name} service failed")))
                }
                Ok(_) => {}
                Err(e) if failure.is_none() => {
                    failure = Some(anyhow::Error::new(e).context("a service panicked"))
                }
                Err(_) => {}
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} for the {what} service (is the port in use? set its port in the configuration)"))
}

/// The address a local client dials for a listener bound to `addr`: a wildcard bind
/// (`0.0.0.0`, `::`) is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}

/// Binds and starts `topology`. `shutdown` stops it gracefully.
pub async fn start(
    topology: Topology,
    mut settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    let mut running = Running {
        gateway: None,
        auth: None,
        patient: None,
        billing: None,
        billing_grpc: None,
        analytics: None,
        shutdown: shutdown.clone(),
        background: Background::new(shutdown.clone()),
        tasks: JoinSet::new(),
    };
    let background = running.background.clone();
    crate::telemetry::spawn_metrics_upkeep(shutdown.clone());
    // Services that exchange events across processes need a shared transport: Kafka, or at least
    // the embedded log in a shared PostgreSQL. Per-process SQLite logs never meet; say so loudly
    // (a service alone on SQLite is still useful: development, tests).
    let uses_events = matches!(
        topology,
        Topology::Patient | Topology::Billing | Topology::Analytics
    );
    if uses_events
        && settings.kafka.brokers.trim().is_empty()
        && settings
            .database_url_for(crate::store::ServiceDb::Events)
            .is_none()
    {
        tracing::warn!(
            "one service per process without Kafka or PostgreSQL: its events stay in its own \
             SQLite event log and reach no other process; set PMS_KAFKA__BROKERS (or run `pms-server all`)"
        );
    }
    let mut routers: Vec<(&'static str, TcpListener, Router)> = Vec::new();
    let mut grpc: Option<(TcpListener, billing::BillingGrpcServer)> = None;
    match topology {
        Topology::All => {
            let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
            let auth_l = bind(loopback(0), "auth").await?;
            let patient_l = bind(loopback(0), "patient").await?;
            let billing_l = bind(loopback(0), "billing").await?;
            // Billing's gRPC API also answers the reference system's clients on
            // `billing.bind:billing.grpc_port` (loopback 9001 by default) unless turned off; the
            // patient service calls the same service in process.
            let billing_grpc_l = if settings.billing.grpc_enabled {
                let b = &settings.billing;
                TcpListener::bind(b.grpc_addr()).await.with_context(|| {
                    format!(
                        "cannot listen on {}:{} for billing's gRPC API (is the port in use? set \
                             `billing.grpc_port` (PMS_BILLING__GRPC_PORT, 0 for any free port) or \
                             turn it off with `billing.grpc_enabled = false`)",
                        b.bind, b.grpc_port
                    )
                })?
            } else {
                bind(loopback(0), "billing gRPC").await?
            };
            let analytics_l = bind(loopback(0), "analytics").await?;
            let gateway_l = bind(settings.gateway.listen_addr(), "gateway").await?;
            // Internal services believe X-Forwarded-For only from this process's gateway.
            settings.http.gateway_secret = Some(crate::request_meta::GatewaySecret::generate());
            let (auth_a, patient_a) = (auth_l.local_addr()?, patient_l.local_addr()?);
            settings.auth.url = HttpUrl::for_addr(auth_a);
            settings.gateway.patient_url = HttpUrl::for_addr(patient_a);
            let (billing_a, billing_grpc_a) =
                (billing_l.local_addr()?, billing_grpc_l.local_addr()?);
            settings.gateway.billing_url = HttpUrl::for_addr(billing_a);
            settings.patient.billing_grpc_url = HttpUrl::for_addr(reachable(billing_grpc_a));
            let analytics_a = analytics_l.local_addr()?;
            settings.gateway.analytics_url = HttpUrl::for_addr(analytics_a);
            running.analytics = Some(analytics_a);
            running.auth = Some(auth_a);
            running.patient = Some(patient_a);
            running.billing = Some(billing_a);
            running.billing_grpc = Some(billing_grpc_a);
            running.gateway = Some(gateway_l.local_addr()?);
            // Auth first: it creates the signing keys the others fetch. The others open their
            // databases (and run their migrations) at the same time: start-up is their slowest,
            // not their sum.
            let auth = auth::build(&settings).await?;
            let in_process = crate::clients::billing::InProcessBilling::default();
            let (billing, patient, analytics) = tokio::try_join!(
                billing::build(&settings, &background),
                patient::build_in_process(&settings, &background, &in_process),
                analytics::build(&settings, &background),
            )?;
            in_process.bind(billing.grpc.clone());
            grpc = Some((billing_grpc_l, billing.grpc));
            let local = gateway::LocalServices {
                auth,
                billing: billing.rest,
                patient,
                analytics,
            };
            routers.push(("auth", auth_l, local.auth.clone()));
            routers.push(("billing", billing_l, local.billing.clone()));
            routers.push(("patient", patient_l, local.patient.clone()));
            routers.push(("analytics", analytics_l, local.analytics.clone()));
            // The gateway calls the services in process; their loopback listeners stay for
            // direct clients (the CLI's `--service` URLs, benchmarks) and health checks.
            routers.push((
                "gateway",
                gateway_l,
                gateway::build(&settings, &shutdown, Some(local)).await?,
            ));
        }
        Topology::Gateway => {
            let l = bind(settings.gateway.listen_addr(), "gateway").await?;
            running.gateway = Some(l.local_addr()?);
            routers.push((
                "gateway",
                l,
                gateway::build(&settings, &shutdown, None).await?,
            ));
        }
        Topology::Auth => {
            let l = bind(settings.auth.listen_addr(), "auth").await?;
            running.auth = Some(l.local_addr()?);
            routers.push(("auth", l, auth::build(&settings).await?));
        }
        Topology::Patient => {
            let l = bind(settings.patient.listen_addr(), "patient").await?;
            running.patient = Some(l.local_addr()?);
            routers.push(("patient", l, patient::build(&settings, &background).await?));
        }
        Topology::Billing => {
            let b = &settings.billing;
            let rest_l = bind(b.listen_addr(), "billing").await?;
            let grpc_l = bind(b.grpc_addr(), "billing gRPC").await?;
            running.billing = Some(rest_l.local_addr()?);
            running.billing_grpc = Some(grpc_l.local_addr()?);
            let billing = billing::build(&settings, &background).await?;
            routers.push(("billing", rest_l, billing.rest));
            grpc = Some((grpc_l, billing.grpc));
        }
        Topology::Analytics => {
            let l = bind(settings.analytics.listen_addr(), "analytics").await?;
            running.analytics = Some(l.local_addr()?);
            routers.push((
                "analytics",
                l,
                analytics::build(&settings, &background).await?,
            ));
        }
    }
    for (name, listener, router) in routers {
        tracing::info!(service = name, addr = %listener.local_addr()?, "listening");
        let token = shutdown.clone();
        let limits = settings.http.clone();
        running.tasks.spawn(async move {
            (
                name,
                http::serve_with(listener, router, &limits, token).await,
            )
        });
    }
    if let Some((listener, server)) = grpc {
        tracing::info!(service = "billing gRPC", addr = %listener.local_addr()?, "listening");
        let token = shutdown.clone();
        running.tasks.spawn(async move {
            (
                "billing gRPC",
                billing::grpc::serve(listener, server, token).await,
            )
        });
    }
    Ok(running)
}
