//! Configuration: one [`Settings`] loaded once in `main` from built-in defaults, then an optional
//! TOML file, then `PMS_<SECTION>__<KEY>` environment variables (later wins). Nothing below `main`
//! reads the environment.
//!
//! Values are typed ([`HttpUrl`], [`Networks`], `IpAddr`, `Duration`): a bad one fails while
//! it is read, with its key named; [`Settings::validate`] checks only what spans values or
//! ranges. Each default is written once, in [`sections`]; `pms-server default-config`
//! ([`default_config_toml`]) prints them with the comments of [`example`].

mod example;
mod sections;
#[cfg(test)]
mod tests;
pub mod types;
mod validate;

use std::path::{Path, PathBuf};

use anyhow::bail;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use example::default_config_toml;
pub use sections::*;
pub use types::{HttpUrl, Networks};

/// Every setting of every service. Sections mirror the services.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fixtures {
    /// The reference system's test account `testuser@test.com` / `password123` (ADMIN).
    Reference,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("pms-data"),
            ephemeral: false,
            fixtures: None,
            log: LogSettings::default(),
            http: HttpSettings::default(),
            database: DatabaseSettings::default(),
            gateway: GatewaySettings::default(),
            auth: AuthSettings::default(),
            patient: PatientSettings::default(),
            billing: BillingSettings::default(),
            analytics: AnalyticsSettings::default(),
            kafka: KafkaSettings::default(),
            events: EventsSettings::default(),
        }
    }
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

    /// Extracts and validates settings from `figment`. A value of the wrong type or form is
    /// reported with its key and the environment variable that sets it.
    pub fn from_figment(figment: Figment) -> anyhow::Result<Settings> {
        let settings: Settings = figment.extract().map_err(|e| {
            if e.path.is_empty() {
                return anyhow::anyhow!("invalid configuration: {e}");
            }
            let key = e.path.join(".");
            let env = match e.path.as_slice() {
                [top] => format!("PMS_{}", top.to_uppercase()),
                [section, rest @ ..] => {
                    format!(
                        "PMS_{}__{}",
                        section.to_uppercase(),
                        rest.join("__").to_uppercase()
                    )
                }
                [] => String::new(),
            };
            anyhow::anyhow!("invalid configuration: `{key}` ({env}): {e}")
        })?;
        settings.validate()?;
        Ok(settings)
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
            self.billing.grpc_addr().to_string()
        } else {
            "off (billing.grpc_enabled = false)".to_owned()
        };
        format!(
            "configuration ok (all-in-one: the other services listen on loopback ports chosen \
             at start)\n\
             gateway   {}\n\
             billing   gRPC {grpc}\n\
             databases auth {}; patient {}; billing {}; analytics {}\n\
             events    {}\n",
            self.gateway.listen_addr(),
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
        use crate::store::ServiceDb;
        let storage = |service| self.storage_summary(service);
        let (g, a, p, b, an) = (
            &self.gateway,
            &self.auth,
            &self.patient,
            &self.billing,
            &self.analytics,
        );
        format!(
            "configuration ok\n\
             gateway   {} (patient {}, billing {}, analytics {})\n\
             auth      {} url {} db {}\n\
             patient   {} db {} billing gRPC {}\n\
             billing   {} gRPC :{} db {}\n\
             analytics {} db {}\n\
             events    {}\n",
            g.listen_addr(),
            g.patient_url,
            g.billing_url,
            g.analytics_url,
            a.listen_addr(),
            a.url,
            storage(ServiceDb::Auth),
            p.listen_addr(),
            storage(ServiceDb::Patient),
            p.billing_grpc_url,
            b.listen_addr(),
            b.grpc_port,
            storage(ServiceDb::Billing),
            an.listen_addr(),
            storage(ServiceDb::Analytics),
            self.transport_summary(),
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
