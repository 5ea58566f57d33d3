//! End-to-end: real `pms-server` processes in every topology, driven over HTTP through the
//! gateway exactly as a client would (and at service ports directly, for token checks).

mod cli;
mod compose;
mod deploy_aws;
mod deploy_kubernetes;
mod deploy_policies;
mod distributed;
mod docs;
mod fuzz;
mod process;
mod reference;
mod replicas;
mod scenario;
mod soak;
mod topologies;
mod tui;
