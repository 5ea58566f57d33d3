//! PMS wire types.
//!
//! - [`rest`]: the JSON bodies of the REST API (serde only), shared by `pms-server` and every client,
//!   so the two cannot drift.
//! - [`currency`]: the ISO 4217 codes and their minor-unit exponents.
//! - [`billing`] / [`patient_events`]: protobuf messages (prost); with the `grpc` feature also the
//!   tonic client and server for `BillingService`.
#![forbid(unsafe_code)]

pub mod currency;
pub mod rest;

/// Billing gRPC messages (and, with the `grpc` feature, the `BillingService` client and server).
/// The proto file has no package, as in the reference system.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod billing {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// Messages of the `billing` topic.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod billing_events {
    include!(concat!(env!("OUT_DIR"), "/billing.events.rs"));
}

/// Messages of the `patient` topic.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod patient_events {
    include!(concat!(env!("OUT_DIR"), "/patient.events.rs"));
}
