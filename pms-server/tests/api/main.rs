//! API tests of pms-server over real sockets: the whole app (gateway + services) started in-process
//! on port 0, against SQLite and against a fresh PostgreSQL database per test.

mod analytics;
mod auth;
mod billing;
mod edge;
mod gateway;
mod helpers;
mod metrics;
mod patients;
mod request_meta;
mod smoke;
