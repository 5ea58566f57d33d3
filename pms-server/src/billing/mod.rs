//! The billing service (in progress).

pub mod ledger;
pub mod model;
pub mod store;

use axum::Router;

use crate::config::Settings;

/// Builds the billing service's router (with the common layers).
pub async fn build(settings: &Settings) -> anyhow::Result<Router> {
    let _ = settings;
    Ok(Router::new())
}
