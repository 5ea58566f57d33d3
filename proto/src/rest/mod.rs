//! REST DTOs: the JSON the API speaks, camelCase like the reference system. Request bodies reject
//! unknown fields; response bodies are a stable contract for clients.

mod analytics;
mod auth;
mod billing;
pub mod integral;
mod patients;
mod problem;

pub use analytics::*;
pub use auth::*;
pub use billing::*;
pub use patients::*;
pub use problem::*;

/// Media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";
