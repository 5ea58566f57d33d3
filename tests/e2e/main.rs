//! End-to-end: real `pms-server` processes in every topology, driven over HTTP through the
//! gateway exactly as a client would (and at service ports directly, for token checks).

mod cli;
mod compose;
mod distributed;
mod docs;
mod fuzz;
mod process;
mod scenario;
mod soak;
mod topologies;
mod tui;
