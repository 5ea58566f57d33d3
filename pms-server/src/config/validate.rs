//! What types alone cannot say about [`Settings`]: ranges, values that depend on each other,
//! and the key-encryption key. Every message names the key (and its environment variable where
//! operators usually set it there).

use std::time::Duration;

use anyhow::bail;
use secrecy::ExposeSecret;

use super::{KafkaSettings, Settings};

impl Settings {
    /// Checks what types alone cannot; every message names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.validate_auth()?;
        self.validate_http()?;
        let k = &self.kafka;
        if k.partitions < 1 {
            bail!("invalid configuration: `kafka.partitions` must be at least 1");
        }
        if k.replication_factor < 1 {
            bail!("invalid configuration: `kafka.replication_factor` must be at least 1");
        }
        if !(1..=k.replication_factor).contains(&k.min_insync_replicas) {
            bail!(
                "invalid configuration: `kafka.min_insync_replicas` must be between 1 and `kafka.replication_factor` ({})",
                k.replication_factor
            );
        }
        k.validate_security()?;
        if self.analytics.max_streams_per_user == 0 {
            bail!("invalid configuration: `analytics.max_streams_per_user` must be positive");
        }
        if self.analytics.heartbeat.is_zero() {
            bail!("invalid configuration: `analytics.heartbeat_secs` must be positive");
        }
        if self.database.max_connections == 0 {
            bail!("invalid configuration: `database.max_connections` must be positive");
        }
        Ok(())
    }

    fn validate_auth(&self) -> anyhow::Result<()> {
        let a = &self.auth;
        let ttl = a.access_token_ttl;
        if !(Duration::from_secs(60)..=Duration::from_secs(900)).contains(&ttl) {
            bail!(
                "invalid configuration: `auth.access_token_ttl_secs` must be between 60 and 900 (got {})",
                ttl.as_secs()
            );
        }
        if a.refresh_token_ttl < ttl {
            bail!(
                "invalid configuration: `auth.refresh_token_ttl_secs` must be at least `auth.access_token_ttl_secs`"
            );
        }
        if a.issuer.trim().is_empty() || a.audience.trim().is_empty() {
            bail!("invalid configuration: `auth.issuer` and `auth.audience` must not be empty");
        }
        if a.max_failed_logins_per_account == 0
            || a.max_failed_logins_per_ip == 0
            || a.throttle_window.is_zero()
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
        let queue = a.password_hash_queue_timeout;
        if !(Duration::from_millis(1)..=Duration::from_secs(60)).contains(&queue) {
            bail!(
                "invalid configuration: `auth.password_hash_queue_timeout_ms` must be between 1 and 60000 (got {})",
                queue.as_millis()
            );
        }
        crate::auth::Kek::from_settings(a)?;
        if !a.admin_email.contains('@') {
            bail!(
                "invalid configuration: `auth.admin_email` (PMS_ADMIN_EMAIL) is not an email address"
            );
        }
        Ok(())
    }

    fn validate_http(&self) -> anyhow::Result<()> {
        let h = &self.http;
        if h.body_limit_bytes < 1024 {
            bail!("invalid configuration: `http.body_limit_bytes` must be at least 1024");
        }
        if h.max_header_bytes < 1024 {
            bail!("invalid configuration: `http.max_header_bytes` must be at least 1024");
        }
        if h.header_read_timeout.is_zero() || h.request_timeout.is_zero() || h.max_connections == 0
        {
            bail!(
                "invalid configuration: `http.header_read_timeout_secs`, `http.request_timeout_secs` and `http.max_connections` must be positive"
            );
        }
        if let Some(token) = &h.metrics_token
            && token.expose_secret().len() < 16
        {
            bail!(
                "invalid configuration: `http.metrics_token` (PMS_HTTP__METRICS_TOKEN) must be at least 16 characters"
            );
        }
        Ok(())
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
