//! Configuration: one [`Settings`] loaded once in `main` from built-in defaults, then an optional
//! TOML file, then `PMS_<SECTION>__<KEY>` environment variables (later wins). Nothing below `main`
//! reads the environment.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Every setting of every service. Sections mirror the services.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where embedded-mode SQLite databases and the generated admin password live.
    pub data_dir: PathBuf,
    /// Throwaway instance: databases in a temporary directory removed at exit.
    pub ephemeral: bool,
    /// Development fixtures to load at start (`--fixtures`, `PMS_FIXTURES`); only with
    /// `ephemeral` ([`Settings::check_fixtures`]).
    pub fixtures: Option<Fixtures>,
    pub log: LogSettings,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub gateway: GatewaySettings,
    pub auth: AuthSettings,
    pub patient: PatientSettings,
    pub billing: BillingSettings,
    pub analytics: AnalyticsSettings,
    pub kafka: KafkaSettings,
    pub events: EventsSettings,
}

/// Development fixtures (`--fixtures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fixtures {
    /// The reference system's test account `testuser@test.com` / `password123` (ADMIN).
    Reference,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `auto` (pretty on a terminal, JSON otherwise), `json` or `pretty`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `pms_server=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Comma-separated networks (CIDR) of the proxies whose `X-Forwarded-For` is believed:
    /// reverse proxies in front of the gateway and, in distributed mode, the gateway itself. The
    /// client is the right-most untrusted address of the chain; a request from anywhere else is
    /// attributed (audit, throttling) to its peer address.
    pub trusted_proxies: String,
    /// Not configurable: set by `pms-server all` for its internal listeners, which then believe
    /// `X-Forwarded-For` only from the in-process gateway that sends this secret, never from
    /// another local process (see [`crate::request_meta`]).
    #[serde(skip)]
    pub gateway_secret: Option<crate::request_meta::GatewaySecret>,
    /// Largest accepted request head (all header lines together), in bytes; larger → 431.
    pub max_header_bytes: usize,
    /// Seconds a connection may take to deliver a complete request head, counted from when it
    /// starts waiting for one: on a new connection and again after each response. Closes
    /// slow-loris connections and idle keep-alive connections alike.
    pub header_read_timeout_secs: u64,
    /// Seconds a request may take, body upload included, until its response starts (503 after
    /// that). Streamed responses (the live event stream) are not cut once they have started.
    pub request_timeout_secs: u64,
    /// Open connections per listener; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// Bearer token that may read the gateway's `/metrics` (an ADMIN access token may too).
    /// Unset: only ADMIN tokens. Services' own ports serve `/metrics` without a token.
    pub metrics_token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// PostgreSQL URL shared by every service (each uses its own schema). Unset: embedded SQLite
    /// files in `data_dir`.
    pub url: Option<SecretString>,
    /// Connections per service pool.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    pub bind: IpAddr,
    pub port: u16,
    /// Where the gateway reaches the patient service.
    pub patient_url: String,
    /// Where the gateway reaches the billing service's REST API.
    pub billing_url: String,
    /// Where the gateway reaches the analytics service.
    pub analytics_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub bind: IpAddr,
    pub port: u16,
    /// Where the other services (and the gateway) reach the auth service; JWKS lives under it.
    pub url: String,
    /// Overrides `database.url` for this service.
    pub database_url: Option<SecretString>,
    /// `iss` claim of issued tokens, required on verification.
    pub issuer: String,
    /// `aud` claim of issued tokens, required on verification.
    pub audience: String,
    /// Access-token lifetime, at most 900 s (15 min).
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime.
    pub refresh_token_ttl_secs: u64,
    /// First-start admin (`PMS_ADMIN_EMAIL` also sets it).
    pub admin_email: String,
    /// First-start admin password (`PMS_ADMIN_PASSWORD` also sets it). Unset: a random one is
    /// generated, printed once and saved (0600) in the data dir.
    pub admin_password: Option<SecretString>,
    /// Failed logins for one account from one client address before delays start (429).
    pub max_failed_logins_per_account: u32,
    /// Failed logins from one client address (any accounts) before delays start (429).
    pub max_failed_logins_per_ip: u32,
    /// Failures are forgotten this long after the last one; delays never exceed it.
    pub throttle_window_secs: u64,
    /// Key-encryption key (base64 of 32 random bytes, `openssl rand -base64 32`): private
    /// signing keys are stored encrypted with it (AES-256-GCM). Required in production.
    pub key_encryption_key: Option<SecretString>,
    /// A file holding the key-encryption key instead (e.g. a Docker/Kubernetes secret).
    pub key_encryption_key_file: Option<std::path::PathBuf>,
    /// Password hashes (Argon2id: 19 MiB and a core each) running at once; 0: every core but
    /// one (at least one), so other requests keep a core during a login flood.
    pub password_hash_concurrency: usize,
    /// Milliseconds a login (or password change) waits for a hashing slot; then 503 with
    /// `Retry-After` instead of an unbounded queue.
    pub password_hash_queue_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatientSettings {
    pub bind: IpAddr,
    pub port: u16,
    /// Overrides `database.url` for this service.
    pub database_url: Option<SecretString>,
    /// Where the patient service reaches billing's gRPC API.
    pub billing_grpc_url: String,
}

#[derive(Debug, Clone, Deserialize)]
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
    pub database_url: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsSettings {
    pub bind: IpAddr,
    pub port: u16,
    /// Overrides `database.url` for this service.
    pub database_url: Option<SecretString>,
    /// Seconds between SSE heartbeats on `/events/stream`.
    pub heartbeat_secs: u64,
    /// Live event streams one user may have open at once (429 beyond).
    pub max_streams_per_user: usize,
}

#[derive(Debug, Clone, Deserialize)]
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
    pub session_timeout_ms: u64,
    /// How long the producer keeps trying to deliver one message.
    pub message_timeout_ms: u64,
    /// After the brokers were unreachable or lost their topics, events published this long
    /// before the outage are published again (consumers deduplicate): a broker that lost its
    /// data loses no event. Bounded by `events.outbox_retention_secs`.
    pub replay_window_secs: u64,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with `sasl_*` protocols).
    pub sasl_mechanism: String,
    pub sasl_username: String,
    pub sasl_password: Option<SecretString>,
    /// PEM file of the CA certificates that verify the brokers (empty: the system's).
    pub ssl_ca_location: String,
    /// Client certificate and key (PEM) for mutual TLS.
    pub ssl_certificate_location: String,
    pub ssl_key_location: String,
    pub ssl_key_password: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSettings {
    /// Published outbox rows are deleted this long after publication (0: at once). Also bounds
    /// how far back events can be republished after a broker lost its data.
    pub outbox_retention_secs: u64,
    /// Embedded event log rows are deleted once every consumer group has consumed them and they
    /// are older than this.
    pub log_retention_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("pms-data"),
            ephemeral: false,
            fixtures: None,
            log: LogSettings {
                format: LogFormat::Auto,
                level: "info".to_owned(),
            },
            http: HttpSettings {
                body_limit_bytes: 1024 * 1024,
                trusted_proxies: "127.0.0.0/8,::1/128".to_owned(),
                gateway_secret: None,
                max_header_bytes: 16 * 1024,
                header_read_timeout_secs: 10,
                request_timeout_secs: 30,
                max_connections: 1024,
                metrics_token: None,
            },
            database: DatabaseSettings {
                url: None,
                max_connections: 10,
            },
            gateway: GatewaySettings {
                bind: loopback(),
                port: 4004,
                patient_url: "http://127.0.0.1:4000".to_owned(),
                billing_url: "http://127.0.0.1:4001".to_owned(),
                analytics_url: "http://127.0.0.1:4002".to_owned(),
            },
            auth: AuthSettings {
                bind: loopback(),
                port: 4005,
                url: "http://127.0.0.1:4005".to_owned(),
                database_url: None,
                issuer: "pms-auth".to_owned(),
                audience: "pms-api".to_owned(),
                access_token_ttl_secs: 900,
                refresh_token_ttl_secs: 30 * 24 * 3600,
                admin_email: "admin@pms.local".to_owned(),
                admin_password: None,
                max_failed_logins_per_account: 5,
                max_failed_logins_per_ip: 20,
                throttle_window_secs: 900,
                key_encryption_key: None,
                key_encryption_key_file: None,
                password_hash_concurrency: 0,
                password_hash_queue_timeout_ms: 10_000,
            },
            patient: PatientSettings {
                bind: loopback(),
                port: 4000,
                database_url: None,
                billing_grpc_url: "http://127.0.0.1:9001".to_owned(),
            },
            billing: BillingSettings {
                bind: loopback(),
                port: 4001,
                grpc_port: 9001,
                grpc_enabled: true,
                database_url: None,
            },
            analytics: AnalyticsSettings {
                bind: loopback(),
                port: 4002,
                database_url: None,
                heartbeat_secs: 15,
                max_streams_per_user: 8,
            },
            kafka: KafkaSettings {
                brokers: String::new(),
                client_id: "pms".to_owned(),
                partitions: 3,
                replication_factor: 1,
                min_insync_replicas: 1,
                session_timeout_ms: 10_000,
                message_timeout_ms: 30_000,
                replay_window_secs: 60,
                security_protocol: "plaintext".to_owned(),
                sasl_mechanism: String::new(),
                sasl_username: String::new(),
                sasl_password: None,
                ssl_ca_location: String::new(),
                ssl_certificate_location: String::new(),
                ssl_key_location: String::new(),
                ssl_key_password: None,
            },
            events: EventsSettings {
                outbox_retention_secs: 120,
                log_retention_secs: 3600,
            },
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Settings::default().log
    }
}
impl Default for HttpSettings {
    fn default() -> Self {
        Settings::default().http
    }
}
impl Default for DatabaseSettings {
    fn default() -> Self {
        Settings::default().database
    }
}
impl Default for GatewaySettings {
    fn default() -> Self {
        Settings::default().gateway
    }
}
impl Default for AuthSettings {
    fn default() -> Self {
        Settings::default().auth
    }
}
impl Default for AnalyticsSettings {
    fn default() -> Self {
        Settings::default().analytics
    }
}
impl Default for KafkaSettings {
    fn default() -> Self {
        Settings::default().kafka
    }
}
impl Default for EventsSettings {
    fn default() -> Self {
        Settings::default().events
    }
}
impl Default for BillingSettings {
    fn default() -> Self {
        Settings::default().billing
    }
}
impl Default for PatientSettings {
    fn default() -> Self {
        Settings::default().patient
    }
}

fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// Top-level keys that come from `PMS_<KEY>` without a section.
const TOP_LEVEL_KEYS: [&str; 3] = ["data_dir", "ephemeral", "fixtures"];

impl Settings {
    /// Loads defaults ← `file` (TOML, if given) ← environment, then validates.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        Self::from_figment(Self::figment(file)?)
    }

    /// The layered sources (defaults are the serde defaults of [`Settings`]).
    pub fn figment(file: Option<&Path>) -> anyhow::Result<Figment> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                bail!("configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let prefixed = Env::prefixed("PMS_")
            // PMS_TOKEN, PMS_SERVER, PMS_TEST_… belong to other programs: only sectioned keys
            // (`PMS_DATABASE__URL`) and the known top-level keys are configuration.
            .filter(|key| {
                key.as_str().contains("__")
                    || TOP_LEVEL_KEYS
                        .iter()
                        .any(|k| key.as_str().eq_ignore_ascii_case(k))
            })
            .split("__");
        let admin = Env::raw().filter_map(|key| {
            if key.as_str().eq_ignore_ascii_case("PMS_ADMIN_EMAIL") {
                Some("auth.admin_email".into())
            } else if key.as_str().eq_ignore_ascii_case("PMS_ADMIN_PASSWORD") {
                Some("auth.admin_password".into())
            } else {
                None
            }
        });
        Ok(figment.merge(prefixed).merge(admin))
    }

    /// Extracts and validates settings from `figment`.
    pub fn from_figment(figment: Figment) -> anyhow::Result<Settings> {
        let settings: Settings = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            anyhow::anyhow!(
                "invalid configuration{}: {e}",
                if key.is_empty() {
                    String::new()
                } else {
                    format!(" at `{key}`")
                }
            )
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot; every message names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let a = &self.auth;
        if !(60..=900).contains(&a.access_token_ttl_secs) {
            bail!(
                "invalid configuration: `auth.access_token_ttl_secs` must be between 60 and 900 (got {})",
                a.access_token_ttl_secs
            );
        }
        if a.refresh_token_ttl_secs < a.access_token_ttl_secs {
            bail!(
                "invalid configuration: `auth.refresh_token_ttl_secs` must be at least `auth.access_token_ttl_secs`"
            );
        }
        if a.issuer.trim().is_empty() || a.audience.trim().is_empty() {
            bail!("invalid configuration: `auth.issuer` and `auth.audience` must not be empty");
        }
        if a.max_failed_logins_per_account == 0
            || a.max_failed_logins_per_ip == 0
            || a.throttle_window_secs == 0
        {
            bail!(
                "invalid configuration: `auth.max_failed_logins_per_*` and `auth.throttle_window_secs` must be positive"
            );
        }
        if let Some(pw) = &a.admin_password
            && pw.expose_secret().chars().count() < 12
        {
            bail!(
                "invalid configuration: `auth.admin_password` (PMS_ADMIN_PASSWORD) must be at least 12 characters"
            );
        }
        if !(1..=60_000).contains(&a.password_hash_queue_timeout_ms) {
            bail!(
                "invalid configuration: `auth.password_hash_queue_timeout_ms` must be between 1 and 60000 (got {})",
                a.password_hash_queue_timeout_ms
            );
        }
        crate::auth::Kek::from_settings(a)?;
        if !a.admin_email.contains('@') {
            bail!(
                "invalid configuration: `auth.admin_email` (PMS_ADMIN_EMAIL) is not an email address"
            );
        }
        for (key, url) in [
            ("auth.url", &a.url),
            ("gateway.patient_url", &self.gateway.patient_url),
            ("gateway.billing_url", &self.gateway.billing_url),
            ("gateway.analytics_url", &self.gateway.analytics_url),
            ("patient.billing_grpc_url", &self.patient.billing_grpc_url),
        ] {
            let parsed = url::Url::parse(url)
                .with_context(|| format!("invalid configuration: `{key}` is not a URL: {url}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                bail!("invalid configuration: `{key}` must be an http(s) URL (got {url})");
            }
        }
        crate::http::parse_networks(&self.http.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("invalid configuration: `http.trusted_proxies`: {e}"))?;
        if self.http.body_limit_bytes < 1024 {
            bail!("invalid configuration: `http.body_limit_bytes` must be at least 1024");
        }
        if self.http.max_header_bytes < 1024 {
            bail!("invalid configuration: `http.max_header_bytes` must be at least 1024");
        }
        if self.http.header_read_timeout_secs == 0
            || self.http.request_timeout_secs == 0
            || self.http.max_connections == 0
        {
            bail!(
                "invalid configuration: `http.header_read_timeout_secs`, `http.request_timeout_secs` and `http.max_connections` must be positive"
            );
        }
        if let Some(token) = &self.http.metrics_token
            && token.expose_secret().len() < 16
        {
            bail!(
                "invalid configuration: `http.metrics_token` (PMS_HTTP__METRICS_TOKEN) must be at least 16 characters"
            );
        }
        if self.kafka.partitions < 1 {
            bail!("invalid configuration: `kafka.partitions` must be at least 1");
        }
        if self.kafka.replication_factor < 1 {
            bail!("invalid configuration: `kafka.replication_factor` must be at least 1");
        }
        if !(1..=self.kafka.replication_factor).contains(&self.kafka.min_insync_replicas) {
            bail!(
                "invalid configuration: `kafka.min_insync_replicas` must be between 1 and `kafka.replication_factor` ({})",
                self.kafka.replication_factor
            );
        }
        if self.analytics.max_streams_per_user == 0 {
            bail!("invalid configuration: `analytics.max_streams_per_user` must be positive");
        }
        self.kafka.validate_security()?;
        if self.analytics.heartbeat_secs == 0 {
            bail!("invalid configuration: `analytics.heartbeat_secs` must be positive");
        }
        if self.database.max_connections == 0 {
            bail!("invalid configuration: `database.max_connections` must be positive");
        }
        for (key, url) in [
            ("database.url", &self.database.url),
            ("auth.database_url", &a.database_url),
            ("patient.database_url", &self.patient.database_url),
            ("billing.database_url", &self.billing.database_url),
            ("analytics.database_url", &self.analytics.database_url),
        ] {
            if let Some(url) = url {
                let url = url.expose_secret();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    bail!(
                        "invalid configuration: `{key}` must be a postgres:// URL (leave it unset for embedded SQLite)"
                    );
                }
            }
        }
        Ok(())
    }

    /// Fixtures hold well-known credentials: refused unless the instance is ephemeral (never on
    /// data that outlives the process). Checked after the command-line flags are applied.
    pub fn check_fixtures(&self) -> anyhow::Result<()> {
        if self.fixtures.is_some() && !self.ephemeral {
            bail!(
                "`--fixtures` (PMS_FIXTURES) creates accounts with well-known passwords and is only \
                 allowed on a throwaway instance: add `--ephemeral`"
            );
        }
        Ok(())
    }

    /// Where a service's data lives, for summaries: the PostgreSQL host, port and database (never
    /// the credentials), or the SQLite data dir.
    fn storage_summary(&self, service: crate::store::ServiceDb) -> String {
        match self.database_url_for(service) {
            Some(url) => match url::Url::parse(url.expose_secret()) {
                Ok(u) => format!(
                    "postgres {}:{}{}",
                    u.host_str().unwrap_or("?"),
                    u.port().unwrap_or(5432),
                    u.path()
                ),
                Err(_) => "postgres (unparsable URL)".to_owned(),
            },
            None => format!("sqlite in {}", self.data_dir.display()),
        }
    }

    fn transport_summary(&self) -> String {
        if self.kafka.brokers.trim().is_empty() {
            "embedded event log".to_owned()
        } else {
            format!("kafka {}", self.kafka.brokers)
        }
    }

    /// The summary for `pms-server all` (`check-config` without a role): only the ports that
    /// mode listens on — the gateway, and billing's gRPC unless turned off; the other services
    /// bind loopback ports chosen at start.
    pub fn summary_all_in_one(&self) -> String {
        use crate::store::ServiceDb;
        let grpc = if self.billing.grpc_enabled {
            format!("{}:{}", self.billing.bind, self.billing.grpc_port)
        } else {
            "off (billing.grpc_enabled = false)".to_owned()
        };
        format!(
            "configuration ok (all-in-one: the other services listen on loopback ports chosen \
             at start)\n\
             gateway   {}:{}\n\
             billing   gRPC {grpc}\n\
             databases auth {}; patient {}; billing {}; analytics {}\n\
             events    {}\n",
            self.gateway.bind,
            self.gateway.port,
            self.storage_summary(ServiceDb::Auth),
            self.storage_summary(ServiceDb::Patient),
            self.storage_summary(ServiceDb::Billing),
            self.storage_summary(ServiceDb::Analytics),
            self.transport_summary(),
        )
    }

    /// A human summary of the effective configuration of every service run on its own (the
    /// distributed roles), never showing secrets.
    pub fn summary(&self) -> String {
        let storage = |service| self.storage_summary(service);
        let transport = self.transport_summary();
        format!(
            "configuration ok\n\
             gateway   {}:{} (patient {}, billing {}, analytics {})\n\
             auth      {}:{} url {} db {}\n\
             patient   {}:{} db {} billing gRPC {}\n\
             billing   {}:{} gRPC :{} db {}\n\
             analytics {}:{} db {}\n\
             events    {}\n",
            self.gateway.bind,
            self.gateway.port,
            self.gateway.patient_url,
            self.gateway.billing_url,
            self.gateway.analytics_url,
            self.auth.bind,
            self.auth.port,
            self.auth.url,
            storage(crate::store::ServiceDb::Auth),
            self.patient.bind,
            self.patient.port,
            storage(crate::store::ServiceDb::Patient),
            self.patient.billing_grpc_url,
            self.billing.bind,
            self.billing.port,
            self.billing.grpc_port,
            storage(crate::store::ServiceDb::Billing),
            self.analytics.bind,
            self.analytics.port,
            storage(crate::store::ServiceDb::Analytics),
            transport,
        )
    }

    /// The PostgreSQL URL a service uses, if any (its own override, else the shared one).
    pub fn database_url_for(&self, service: crate::store::ServiceDb) -> Option<&SecretString> {
        use crate::store::ServiceDb;
        let own = match service {
            ServiceDb::Auth => self.auth.database_url.as_ref(),
            ServiceDb::Patient => self.patient.database_url.as_ref(),
            ServiceDb::Billing => self.billing.database_url.as_ref(),
            ServiceDb::Analytics => self.analytics.database_url.as_ref(),
            ServiceDb::Events => None,
        };
        own.or(self.database.url.as_ref())
    }
}

impl KafkaSettings {
    /// Checks the security settings: a known protocol, a known SASL mechanism with credentials
    /// for `sasl_*`, no SASL settings that would be ignored.
    fn validate_security(&self) -> anyhow::Result<()> {
        let protocol = self.security_protocol.to_ascii_lowercase();
        if !matches!(
            protocol.as_str(),
            "plaintext" | "ssl" | "sasl_plaintext" | "sasl_ssl"
        ) {
            bail!(
                "invalid configuration: `kafka.security_protocol` must be plaintext, ssl, sasl_plaintext or sasl_ssl (got {:?})",
                self.security_protocol
            );
        }
        let sasl = protocol.starts_with("sasl_");
        if sasl {
            if !matches!(
                self.sasl_mechanism.as_str(),
                "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
            ) {
                bail!(
                    "invalid configuration: `kafka.sasl_mechanism` must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with `kafka.security_protocol = {protocol}` (got {:?})",
                    self.sasl_mechanism
                );
            }
            if self.sasl_username.is_empty()
                || self
                    .sasl_password
                    .as_ref()
                    .is_none_or(|p| p.expose_secret().is_empty())
            {
                bail!(
                    "invalid configuration: `kafka.sasl_username` and `kafka.sasl_password` are required with `kafka.security_protocol = {protocol}`"
                );
            }
        } else if !self.sasl_mechanism.is_empty()
            || !self.sasl_username.is_empty()
            || self.sasl_password.is_some()
        {
            bail!(
                "invalid configuration: `kafka.sasl_*` is set but `kafka.security_protocol = {protocol}` does not use SASL (use sasl_ssl)"
            );
        }
        let tls = protocol == "ssl" || protocol == "sasl_ssl";
        if !tls
            && (!self.ssl_ca_location.is_empty()
                || !self.ssl_certificate_location.is_empty()
                || !self.ssl_key_location.is_empty())
        {
            bail!(
                "invalid configuration: `kafka.ssl_*` is set but `kafka.security_protocol = {protocol}` does not use TLS (use ssl or sasl_ssl)"
            );
        }
        Ok(())
    }
}

/// `pms-server default-config`: every key with its default. A test keeps it in sync.
pub const DEFAULT_CONFIG_TOML: &str = r#"# PMS server configuration. Every key is optional; shown with its default.
# Each key can also be set as an environment variable PMS_<SECTION>__<KEY>
# (e.g. PMS_DATABASE__URL, PMS_GATEWAY__PORT); top-level keys as PMS_<KEY> (PMS_DATA_DIR).
# Precedence: defaults < this file (--config / PMS_CONFIG) < environment < command-line flags.

# Embedded-mode SQLite databases and the generated admin password live here.
data_dir = "pms-data"
# Throwaway instance in a temporary directory (also: --ephemeral).
ephemeral = false
# Development fixtures, only with ephemeral (also: --fixtures, PMS_FIXTURES). "reference": the
# reference system's test account testuser@test.com / password123 (ADMIN).
# fixtures = "reference"

[log]
# auto (pretty on a terminal, JSON otherwise) | json | pretty
format = "auto"
# tracing filter; RUST_LOG overrides it
level = "info"

[http]
# Largest accepted request body, in bytes.
body_limit_bytes = 1048576
# Networks (CIDR, comma-separated) of the proxies whose X-Forwarded-For is believed: reverse
# proxies in front of the gateway (which then appends its peer to the chain) and, one service
# per process, where the gateway runs. The client is the right-most untrusted address of the
# chain; requests from elsewhere are audited and throttled by their peer address. (`pms-server
# all`'s internal services believe only their own gateway, whatever this says.)
trusted_proxies = "127.0.0.0/8,::1/128"
# Largest request head (all header lines together), in bytes; larger is refused with 431.
max_header_bytes = 16384
# Seconds a connection may take to send a complete request head, counted from when it starts
# waiting for one (new connection, or after the previous response): closes slow-loris and idle
# keep-alive connections.
header_read_timeout_secs = 10
# Seconds until a response starts, request body upload included (503 after that). A live event
# stream, once started, is not cut.
request_timeout_secs = 30
# Open connections per listener; the next one is answered 503 and closed.
max_connections = 1024
# Bearer token for the gateway's /metrics (PMS_HTTP__METRICS_TOKEN, at least 16 characters).
# Unset: only an ADMIN access token reads it there. Services' own ports need no token.
# metrics_token = "a long random string"

[database]
# PostgreSQL URL shared by every service (each uses its own schema). Unset: embedded SQLite.
# url = "postgres://pms:secret@localhost:5432/pms"
max_connections = 10

[gateway]
# The only public service. Use 0.0.0.0 to accept connections from other hosts.
bind = "127.0.0.1"
port = 4004
# Where the gateway reaches the services (ignored by `pms-server all`, which wires them itself).
patient_url = "http://127.0.0.1:4000"
billing_url = "http://127.0.0.1:4001"
analytics_url = "http://127.0.0.1:4002"

[auth]
bind = "127.0.0.1"
port = 4005
# Where the gateway and services reach auth (JWKS at <url>/.well-known/jwks.json).
url = "http://127.0.0.1:4005"
# database_url = "postgres://..."   # overrides [database] url for this service
issuer = "pms-auth"
audience = "pms-api"
# Access tokens live at most 15 minutes.
access_token_ttl_secs = 900
refresh_token_ttl_secs = 2592000
# First-start admin (also PMS_ADMIN_EMAIL / PMS_ADMIN_PASSWORD). Without a password a random one
# is generated, printed once and saved with mode 0600 in <data_dir>/admin-password.
admin_email = "admin@pms.local"
# admin_password = "at least 12 characters"
# Failed logins allowed for one account from one client address / from one client address
# before 429 with growing delays (doubling, at most the window). Another address is never
# locked out by these; a correct password is refused only while its own address is delayed.
max_failed_logins_per_account = 5
max_failed_logins_per_ip = 20
throttle_window_secs = 900
# Key-encryption key: private signing keys are stored encrypted (AES-256-GCM) with it. Base64 of
# 32 random bytes (`openssl rand -base64 32`), or a file holding it. Set one in production.
# key_encryption_key = "…"          # or PMS_AUTH__KEY_ENCRYPTION_KEY
# key_encryption_key_file = "/run/secrets/pms_kek"
# Password hashes (Argon2id, 19 MiB and a core each) running at once; 0 = every core but one
# (at least one), so that the other endpoints keep serving during a login flood.
password_hash_concurrency = 0
# Milliseconds a login waits for a hashing slot before it is answered 503 with Retry-After.
password_hash_queue_timeout_ms = 10000

[patient]
bind = "127.0.0.1"
port = 4000
# database_url = "postgres://..."   # overrides [database] url for this service
# Where the patient service reaches billing's gRPC API (ignored by `pms-server all`).
billing_grpc_url = "http://127.0.0.1:9001"

[billing]
bind = "127.0.0.1"
# REST API (behind the gateway at /api/billing) and gRPC ports.
port = 4001
grpc_port = 9001
# `pms-server all` also serves billing's gRPC API (the reference system's
# BillingService/CreateBillingAccount, which needs no token) on bind:grpc_port. Keep `bind` on
# loopback unless that call may be reached from elsewhere; false serves gRPC only internally.
grpc_enabled = true
# database_url = "postgres://..."   # overrides [database] url for this service

[analytics]
bind = "127.0.0.1"
port = 4002
# database_url = "postgres://..."   # overrides [database] url for this service
# Seconds between heartbeats on the live event stream.
heartbeat_secs = 15
# Live event streams one user may have open at once (429 beyond). Streams end when the token
# expires or is revoked (an `event: reauthenticate` first).
max_streams_per_user = 8

[kafka]
# Comma-separated bootstrap servers, e.g. "kafka:9092". Empty: the embedded event log, stored in
# the events database (SQLite in data_dir, or schema `events` on PostgreSQL). Distributed mode
# (one service per process) needs Kafka.
brokers = ""
client_id = "pms"
# Partitions of the topics PMS creates at start (`patient`, `billing`).
partitions = 3
# Replication factor and min.insync.replicas of the topics PMS creates (existing topics keep
# theirs). One broker: 1 and 1. Production (3+ brokers): 3 and 2, so a write acknowledged with
# acks=all survives the loss of one broker and writes continue while one is down.
replication_factor = 1
min_insync_replicas = 1
session_timeout_ms = 10000
message_timeout_ms = 30000
# After the brokers were unreachable or lost their topics, events published up to this long before
# the outage are published again (consumers deduplicate on the event id).
replay_window_secs = 60
# Security (passed to every Kafka client): plaintext | ssl | sasl_plaintext | sasl_ssl.
# Amazon MSK with SASL/SCRAM: security_protocol = "sasl_ssl", sasl_mechanism = "SCRAM-SHA-512",
# brokers = "b-1.<cluster>.kafka.<region>.amazonaws.com:9096".
security_protocol = "plaintext"
# PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (sasl_* protocols only).
sasl_mechanism = ""
sasl_username = ""
# sasl_password = "..."             # better: PMS_KAFKA__SASL_PASSWORD
# PEM CA bundle that verifies the brokers (empty: the system's trust store).
ssl_ca_location = ""
# Client certificate and key (PEM) for mutual TLS.
ssl_certificate_location = ""
ssl_key_location = ""
# ssl_key_password = "..."

[events]
# Published outbox rows are deleted this long after publication (0: at once). Keep it at least
# kafka.replay_window_secs so events can be republished after a broker lost its data.
outbox_retention_secs = 120
# Embedded event log rows are deleted once every consumer group has consumed them and they are
# older than this.
log_retention_secs = 3600
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_all_in_one_summary_lists_only_the_ports_it_listens_on() {
        let mut settings = Settings::default();
        let summary = settings.summary_all_in_one();
        assert!(summary.contains("gateway   127.0.0.1:4004\n"), "{summary}");
        assert!(
            summary.contains("billing   gRPC 127.0.0.1:9001\n"),
            "{summary}"
        );
        for unused in [":4000", ":4001", ":4002", ":4005", "http://"] {
            assert!(!summary.contains(unused), "{unused} in:\n{summary}");
        }
        settings.billing.grpc_enabled = false;
        let summary = settings.summary_all_in_one();
        assert!(!summary.contains(":9001"), "{summary}");
        assert!(summary.contains("billing   gRPC off"), "{summary}");
        let distributed = settings.summary();
        assert!(distributed.contains(":4000 db "), "{distributed}");
    }

    #[test]
    fn default_config_matches_the_defaults() {
        let from_file: Settings = Figment::new()
            .merge(Toml::string(DEFAULT_CONFIG_TOML))
            .extract()
            .expect("default config parses");
        assert_eq!(
            format!("{from_file:?}"),
            format!("{:?}", Settings::default())
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err =
            Settings::from_figment(Figment::new().merge(Toml::string("[database]\nurll = \"x\"")))
                .expect_err("unknown key must fail");
        assert!(format!("{err:#}").contains("urll"), "{err:#}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = Settings::from_figment(
            Figment::new().merge(Toml::string("[auth]\naccess_token_ttl_secs = 3600")),
        )
        .expect_err("too long a TTL must fail");
        assert!(
            format!("{err:#}").contains("auth.access_token_ttl_secs"),
            "{err:#}"
        );
        let err = Settings::from_figment(
            Figment::new().merge(Toml::string("[database]\nurl = \"mysql://x\"")),
        )
        .expect_err("non-postgres URL must fail");
        assert!(format!("{err:#}").contains("database.url"), "{err:#}");
    }

    #[test]
    fn kafka_security_settings_are_checked() {
        let load = |toml: &str| Settings::from_figment(Figment::new().merge(Toml::string(toml)));
        let ok = load(
            "[kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"pms\"\nsasl_password = \"s3cret-s3cret\"",
        )
        .expect("MSK-style settings are valid");
        assert!(!format!("{ok:?}").contains("s3cret"), "redacted");
        let production =
            load("[kafka]\nreplication_factor = 3\nmin_insync_replicas = 2").expect("3/2 is valid");
        assert_eq!(
            (
                production.kafka.replication_factor,
                production.kafka.min_insync_replicas
            ),
            (3, 2)
        );
        for (toml, key) in [
            (
                "[kafka]\nsecurity_protocol = \"tls\"",
                "kafka.security_protocol",
            ),
            (
                "[kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"GSSAPI\"",
                "kafka.sasl_mechanism",
            ),
            (
                "[kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"",
                "kafka.sasl_password",
            ),
            ("[kafka]\nsasl_username = \"pms\"", "kafka.sasl_*"),
            ("[kafka]\nssl_ca_location = \"/ca.pem\"", "kafka.ssl_*"),
            (
                "[kafka]\nreplication_factor = 0",
                "kafka.replication_factor",
            ),
            (
                "[kafka]\nreplication_factor = 3\nmin_insync_replicas = 4",
                "kafka.min_insync_replicas",
            ),
            (
                "[kafka]\nmin_insync_replicas = 0",
                "kafka.min_insync_replicas",
            ),
        ] {
            let err = load(toml).expect_err(toml);
            assert!(format!("{err:#}").contains(key), "{toml}: {err:#}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let settings = Settings::from_figment(Figment::new().merge(Toml::string(
            "[database]\nurl = \"postgres://u:hunter2hunter2@h/db\"",
        )))
        .expect("valid");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
