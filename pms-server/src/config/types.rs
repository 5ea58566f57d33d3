//! Typed configuration values. Each is parsed while the configuration is read, so a bad value
//! fails there and figment names its key (`gateway.patient_url`, `PMS_GATEWAY__PATIENT_URL`);
//! the services receive only valid values and never parse configuration text again.
//!
//! Durations keep their historical keys (`header_read_timeout_secs`, `…_ms`: whole numbers in
//! the unit the key names) and become [`Duration`]s here, once.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::http::Network;

/// An `http://` or `https://` URL where one service reaches another (its base: paths are
/// appended to it). Shown without a trailing slash.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl(url::Url);

impl HttpUrl {
    /// The URL without a trailing slash, ready for `format!("{}/path", url.base())`.
    pub fn base(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// `http://<addr>`: a listener of this process.
    pub fn for_addr(addr: SocketAddr) -> HttpUrl {
        // Invariant: a socket address (IPv6 in brackets) and a port always form a valid URL.
        HttpUrl(url::Url::parse(&format!("http://{addr}")).expect("http://<socket addr> parses"))
    }
}

impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<HttpUrl, String> {
        // The value is not echoed: the key is named by the caller, and a URL may carry
        // credentials.
        let url = url::Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "must be an http:// or https:// URL (got scheme `{}`)",
                url.scheme()
            ));
        }
        if url.host().is_none() {
            return Err("the URL has no host".to_owned());
        }
        Ok(HttpUrl(url))
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base())
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.base(), f)
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.base())
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HttpUrl, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// IP networks, written as one comma-separated string (`"127.0.0.0/8,::1/128"`; a bare address
/// is a /32 or /128) so that one environment variable holds them; a TOML array is accepted too.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<Network>);

impl Networks {
    pub fn as_slice(&self) -> &[Network] {
        &self.0
    }
}

impl FromStr for Networks {
    type Err = String;

    fn from_str(list: &str) -> Result<Networks, String> {
        crate::http::parse_networks(list).map(Networks)
    }
}

impl fmt::Display for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl Serialize for Networks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Networks, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            One(String),
            Many(Vec<String>),
        }
        let list = match Text::deserialize(deserializer)? {
            Text::One(list) => list,
            Text::Many(items) => items.join(","),
        };
        list.parse().map_err(de::Error::custom)
    }
}

/// A whole number of the unit a key names (`…_secs`, `…_ms`), as a [`Duration`].
struct WholeUnits {
    unit: &'static str,
    to_duration: fn(u64) -> Duration,
}

impl Visitor<'_> for WholeUnits {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number of {}", self.unit)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok((self.to_duration)(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(self.to_duration)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        v.trim()
            .parse::<u64>()
            .map(self.to_duration)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// `#[serde(with = "secs")]`: a [`Duration`] written as whole seconds.
pub mod secs {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(WholeUnits {
            unit: "seconds",
            to_duration: Duration::from_secs,
        })
    }
}

/// `#[serde(with = "millis")]`: a [`Duration`] written as whole milliseconds.
pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(WholeUnits {
            unit: "milliseconds",
            to_duration: Duration::from_millis,
        })
    }
}

/// `#[serde(with = "postgres_url")]` on an `Option<SecretString>`: unset, or a `postgres://`
/// (`postgresql://`) URL. Never echoed: it may hold a password.
pub mod postgres_url {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<SecretString>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        super::redacted(value, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SecretString>, D::Error> {
        let Some(url) = Option::<SecretString>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let parsed = url::Url::parse(url.expose_secret())
            .map_err(|e| de::Error::custom(format!("not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(de::Error::custom(
                "must be a postgres:// URL (leave it unset for embedded SQLite)",
            ));
        }
        Ok(Some(url))
    }
}

/// Serializes a secret as `"[redacted]"` (or nothing when unset): a serialized configuration
/// (the generated default file, a debugging dump) never shows one.
pub fn redacted<S: Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => serializer.serialize_some("[redacted]"),
        None => serializer.serialize_none(),
    }
}
