//! Clients one service uses to call another (shared plumbing: a service never imports another
//! service's module, it calls it over the network through these).

pub mod billing;

pub use billing::{
    BillingClient, BillingClientConfig, BillingClientError, CallContext, CreatedAccount,
};
