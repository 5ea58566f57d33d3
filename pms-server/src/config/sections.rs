//! The sections of [`super::Settings`], one per service or concern, each with its defaults —
//! written only here: `pms-server default-config` prints them ([`super::example`]).
//!
//! Keys keep their historical names (`…_secs`, `…_ms`, env `PMS_<SECTION>__<KEY>`); fields
//! whose key names a unit hold a [`Duration`] (`#[serde(rename)]` maps the two).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::types::{self, HttpUrl, Networks};

fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// `http://127.0.0.1:<port>`.
fn local_url(port: u16) -> HttpUrl {
    HttpUrl::for_addr(SocketAddr::new(loopback(), port))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `auto` (pretty on a terminal, JSON otherwise), `json` or `pretty`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `pms_server=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Auto,
            level: "info".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Networks of the proxies whose `X-Forwarded-For` is believed: reverse proxies in front of
    /// the gateway and, in distributed mode, the gateway itself. The client is the right-most
    /// untrusted address of the chain; a request from anywhere else is attributed (audit,
    /// throttling) to its peer address.
    pub trusted_proxies: Networks,
    /// Not configurable: set by `pms-server all` for its internal listeners, which then believe
    /// `X-Forwarded-For` only from the in-process gateway that sends this secret, never from
    /// another local process (see [`crate::request_meta`]).
    #[serde(skip)]
    pub gateway_secret: Option<crate::request_meta::GatewaySecret>,
    /// Largest accepted request head (all header lines together), in bytes; larger → 431.
    pub max_header_bytes: usize,
    /// Time a connection may take to deliver a complete request head, counted from when it
    /// starts waiting for one: on a new connection and again after each response. Closes
    /// slow-loris connections and idle keep-alive connections alike.
    #[serde(rename = "header_read_timeout_secs", with = "types::secs")]
    pub header_read_timeout: Duration,
    /// Time a request may take, body upload included, until its response starts (503 after
    /// that). Streamed responses (the live event stream) are not cut once they have started.
    #[serde(rename = "request_timeout_secs", with = "types::secs")]
    pub request_timeout: Duration,
    /// Open connections per listener; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// Bearer token that may read the gateway's `/metrics` (an ADMIN access token may too).
    /// Unset: only ADMIN tokens. Services' own ports serve `/metrics` without a token.
    #[serde(serialize_with = "types::redacted")]
    pub metrics_token: Option<SecretString>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            body_limit_bytes: 1024 * 1024,
            trusted_proxies: "127.0.0.0/8,::1/128"
                .parse()
                .expect("the default networks parse"), // invariant: a constant, tested
            gateway_secret: None,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            metrics_token: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// PostgreSQL URL shared by every service (each uses its own schema). Unset: embedded SQLite
    /// files in `data_dir`.
    #[serde(with = "types::postgres_url")]
    pub url: Option<SecretString>,
    /// Connections per service pool.
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            max_connections: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    pub bind: IpAddr,
    pub port: u16,
    /// Where the gateway reaches the patient service.
    pub patient_url: HttpUrl,
    /// Where the gateway reaches the billing service's REST API.
    pub billing_url: HttpUrl,
    /// Where the gateway reaches the analytics service.
    pub analytics_url: HttpUrl,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            bind: loopback(),
            port: 4004,
            patient_url: local_url(4000),
            billing_url: local_url(4001),
            analytics_url: local_url(4002),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub bind: IpAddr,
    pub port: u16,
    /// Where the other services (and the gateway) reach the auth service; JWKS lives under it.
    pub url: HttpUrl,
    /// Overrides `database.url` for this service.
    #[serde(with = "types::postgres_url")]
    pub database_url: Option<SecretString>,
    /// `iss` claim of issued tokens, required on verification.
    pub issuer: String,
    /// `aud` claim of issued tokens, required on verification.
    pub audience: String,
    /// Access-token lifetime, 60 s to 900 s (15 min).
    #[serde(rename = "access_token_ttl_secs", with = "types::secs")]
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime.
    #[serde(rename = "refresh_token_ttl_secs", with = "types::secs")]
    pub refresh_token_ttl: Duration,
    /// First-start admin (`PMS_ADMIN_EMAIL` also sets it).
    pub admin_email: String,
    /// First-start admin password (`PMS_ADMIN_PASSWORD` also sets it). Unset: a random one is
    /// generated, printed once and saved (0600) in the data dir.
    #[serde(serialize_with = "types::redacted")]
    pub admin_password: Option<SecretString>,
    /// Failed logins for one account from one client address before delays start (429).
    pub max_failed_logins_per_account: u32,
    /// Failed logins from one client address (any accounts) before delays start (429).
    pub max_failed_logins_per_ip: u32,
    /// Failures are forgotten this long after the last one; delays never exceed it.
    #[serde(rename = "throttle_window_secs", with = "types::secs")]
    pub throttle_window: Duration,
    /// Key-encryption key (base64 of 32 random bytes, `openssl rand -base64 32`): private
    /// signing keys are stored encrypted with it (AES-256-GCM). Required in production.
    #[serde(serialize_with = "types::redacted")]
    pub key_encryption_key: Option<SecretString>,
    /// A file holding the key-encryption key instead (e.g. a Docker/Kubernetes secret).
    pub key_encryption_key_file: Option<PathBuf>,
    /// Password hashes (Argon2id: 19 MiB and a core each) running at once; 0: every core but
    /// one (at least one), so other requests keep a core during a login flood.
    pub password_hash_concurrency: usize,
    /// How long a login (or password change) waits for a hashing slot; then 503 with
    /// `Retry-After` instead of an unbounded queue.
    #[serde(rename = "password_hash_queue_timeout_ms", with = "types::millis")]
    pub password_hash_queue_timeout: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            bind: loopback(),
            port: 4005,
            url: local_url(4005),
            database_url: None,
            issuer: "pms-auth".to_owned(),
            audience: "pms-api".to_owned(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            admin_email: "admin@pms.local".to_owned(),
            admin_password: None,
            max_failed_logins_per_account: 5,
            max_failed_logins_per_ip: 20,
            throttle_window: Duration::from_secs(900),
            key_encryption_key: None,
            key_encryption_key_file: None,
            password_hash_concurrency: 0,
            password_hash_queue_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatientSettings {
    pub bind: IpAddr,
    pub port: u16,
    /// Overrides `database.url` for this service.
    #[serde(with = "types::postgres_url")]
    pub database_url: Option<SecretString>,
    /// Where the patient service reaches billing's gRPC API.
    pub billing_grpc_url: HttpUrl,
}

impl Default for PatientSettings {
    fn default() -> Self {
        PatientSettings {
            bind: loopback(),
            port: 4000,
            database_url: None,
            billing_grpc_url: local_url(9001),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingSettings {
    pub bind: IpAddr,
    /// REST port.
    pub port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// `pms-server all`: also serve the gRPC API on `bind:grpc_port` for outside clients (the
    /// reference system's). `false`: only on an internal ephemeral loopback port. A billing
    /// process of its own always serves gRPC on `grpc_port`.
    pub grpc_enabled: bool,
    /// Overrides `database.url` for this service.
    #[serde(with = "types::postgres_url")]
    pub database_url: Option<SecretString>,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            bind: loopback(),
            port: 4001,
            grpc_port: 9001,
            grpc_enabled: true,
            database_url: None,
        }
    }
}

impl BillingSettings {
    /// Where the gRPC API listens (`bind:grpc_port`).
    pub fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.grpc_port)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsSettings {
    pub bind: IpAddr,
    pub port: u16,
    /// Overrides `database.url` for this service.
    #[serde(with = "types::postgres_url")]
    pub database_url: Option<SecretString>,
    /// Time between SSE heartbeats on `/events/stream`.
    #[serde(rename = "heartbeat_secs", with = "types::secs")]
    pub heartbeat: Duration,
    /// Live event streams one user may have open at once (429 beyond).
    pub max_streams_per_user: usize,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings {
            bind: loopback(),
            port: 4002,
            database_url: None,
            heartbeat: Duration::from_secs(15),
            max_streams_per_user: 8,
        }
    }
}

/// `bind:port` of the services that have both.
macro_rules! listen_addr {
    ($($section:ty),*) => {$(
        impl $section {
            /// Where this service listens (`bind:port`).
            pub fn listen_addr(&self) -> SocketAddr {
                SocketAddr::new(self.bind, self.port)
            }
        }
    )*};
}
listen_addr!(
    GatewaySettings,
    AuthSettings,
    PatientSettings,
    BillingSettings,
    AnalyticsSettings
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap servers. Empty: the embedded event log (all-in-one only).
    pub brokers: String,
    pub client_id: String,
    /// Partitions of topics created at start.
    pub partitions: i32,
    /// Replication factor of topics created at start (1 for one broker; 3 in production).
    pub replication_factor: i32,
    /// `min.insync.replicas` of topics created at start: with `acks=all`, a write is
    /// acknowledged once this many replicas have it (1 for one broker; 2 in production).
    pub min_insync_replicas: i32,
    #[serde(rename = "session_timeout_ms", with = "types::millis")]
    pub session_timeout: Duration,
    /// How long the producer keeps trying to deliver one message.
    #[serde(rename = "message_timeout_ms", with = "types::millis")]
    pub message_timeout: Duration,
    /// Most events in one record batch of the producer (librdkafka `batch.num.messages`). 1 for
    /// Tansu 0.6.0, whose fetch skips the rest of a batch when a consumer resumes inside it.
    pub batch_max_messages: u32,
    /// After the brokers were unreachable or lost their topics, events published this long
    /// before the outage are published again (consumers deduplicate): a broker that lost its
    /// data loses no event. Bounded by `events.outbox_retention_secs`.
    #[serde(rename = "replay_window_secs", with = "types::secs")]
    pub replay_window: Duration,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with `sasl_*` protocols).
    pub sasl_mechanism: String,
    pub sasl_username: String,
    #[serde(serialize_with = "types::redacted")]
    pub sasl_password: Option<SecretString>,
    /// PEM file of the CA certificates that verify the brokers (empty: the system's).
    pub ssl_ca_location: String,
    /// Client certificate and key (PEM) for mutual TLS.
    pub ssl_certificate_location: String,
    pub ssl_key_location: String,
    #[serde(serialize_with = "types::redacted")]
    pub ssl_key_password: Option<SecretString>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: String::new(),
            client_id: "pms".to_owned(),
            partitions: 3,
            replication_factor: 1,
            min_insync_replicas: 1,
            session_timeout: Duration::from_secs(10),
            message_timeout: Duration::from_secs(30),
            batch_max_messages: 10_000,
            replay_window: Duration::from_secs(60),
            security_protocol: "plaintext".to_owned(),
            sasl_mechanism: String::new(),
            sasl_username: String::new(),
            sasl_password: None,
            ssl_ca_location: String::new(),
            ssl_certificate_location: String::new(),
            ssl_key_location: String::new(),
            ssl_key_password: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSettings {
    /// Published outbox rows are deleted this long after publication (0: at once). Also bounds
    /// how far back events can be republished after a broker lost its data.
    #[serde(rename = "outbox_retention_secs", with = "types::secs")]
    pub outbox_retention: Duration,
    /// Embedded event log rows are deleted once every consumer group has consumed them and they
    /// are older than this.
    #[serde(rename = "log_retention_secs", with = "types::secs")]
    pub log_retention: Duration,
}

impl Default for EventsSettings {
    fn default() -> Self {
        EventsSettings {
            outbox_retention: Duration::from_secs(120),
            log_retention: Duration::from_secs(3600),
        }
    }
}
