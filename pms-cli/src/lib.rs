//! `pms_cli`: the client side of PMS — the one REST client ([`ApiClient`]), where sessions are
//! kept ([`credentials`]), the CLI's configuration and profiles ([`config`], [`session`]),
//! money in major units ([`money`]), output formats ([`output`]), the SSE tail ([`sse`]) and the `.http` request-file runner
//! ([`httpfile`]). The `pms` binary (commands) and the TUI sit on top of it.
#![forbid(unsafe_code)]
// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod config;
pub mod credentials;
pub mod duration;
pub mod error;
pub mod httpfile;
pub mod money;
pub mod output;
pub mod session;
pub mod sse;

pub use api::ApiClient;
pub use error::{Error, Result};
