//! The billing service (stub until implemented).

use axum::Router;

use crate::config::Settings;

/// Builds the billing service's router (with the common layers).
pub async fn build(settings: &Settings) -> anyhow::Result<Router> {
    let _ = settings;
    Ok(Router::new())
}
