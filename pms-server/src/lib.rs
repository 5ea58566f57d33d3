//! PMS server: gateway, auth, patient and billing services, runnable all in one process (embedded
//! SQLite by default) or one per process on PostgreSQL. See DESIGN.md §2–§8.
#![forbid(unsafe_code)]

pub mod analytics;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authn;
pub mod billing;
pub mod clients;
pub mod config;
pub mod edge;
pub mod email;
pub mod error;
pub mod events;
pub mod gateway;
pub mod http;
pub mod observe;
pub mod openapi;
pub mod patient;
pub mod private;
pub mod request_meta;
pub mod shutdown;
pub mod store;
pub mod supervise;
pub mod telemetry;
