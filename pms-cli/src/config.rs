//! The CLI's configuration: where it lives (`PMS_CONFIG_DIR`, else the XDG config dir), the
//! profiles in `config.toml` (server, email, which token store holds the session — never a
//! secret), and the environment snapshot the rest of the code reads instead of `std::env`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The server used when neither `--server`, `PMS_SERVER` nor the profile names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:4004";
/// The profile used when neither `--profile` nor `PMS_PROFILE` names one.
pub const DEFAULT_PROFILE: &str = "default";

/// The environment variables the CLI honours, read once in `main` (tests build their own).
#[derive(Debug, Clone, Default)]
pub struct EnvSnapshot {
    /// `PMS_TOKEN`: an access token that overrides any stored session; never persisted.
    pub token: Option<String>,
    /// `PMS_CONFIG_DIR`: the config directory (tests).
    pub config_dir: Option<PathBuf>,
    /// `PMS_TOKEN_STORE`: `auto`, `keyring` or `file`.
    pub token_store: Option<String>,
    /// `PMS_KEYRING_TIMEOUT`: seconds allowed for one keyring call.
    pub keyring_timeout: Option<String>,
    /// `PMS_KEYRING_BACKEND`: which keyring backends to use, comma-separated, or `none`.
    pub keyring_backend: Option<String>,
    /// `XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `APPDATA` (Windows).
    pub appdata: Option<PathBuf>,
    /// `NO_COLOR` is set (to anything non-empty).
    pub no_color: bool,
    /// `COLUMNS`: the terminal width tables fit into (else asked of the terminal).
    pub columns: Option<String>,
}

impl EnvSnapshot {
    /// Reads the process environment. Empty values count as unset.
    pub fn from_process() -> EnvSnapshot {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        EnvSnapshot {
            token: var("PMS_TOKEN"),
            config_dir: path("PMS_CONFIG_DIR"),
            token_store: var("PMS_TOKEN_STORE"),
            keyring_timeout: var("PMS_KEYRING_TIMEOUT"),
            keyring_backend: var("PMS_KEYRING_BACKEND"),
            xdg_config_home: path("XDG_CONFIG_HOME"),
            home: path("HOME"),
            appdata: path("APPDATA"),
            no_color: var("NO_COLOR").is_some(),
            columns: var("COLUMNS"),
        }
    }

    /// The config directory: `PMS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/pms`, else
    /// `%APPDATA%\pms` on Windows, else `$HOME/.config/pms`.
    pub fn config_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.config_dir {
            return Ok(dir.clone());
        }
        if let Some(xdg) = &self.xdg_config_home {
            return Ok(xdg.join("pms"));
        }
        if let (true, Some(appdata)) = (cfg!(windows), &self.appdata) {
            return Ok(appdata.join("pms"));
        }
        match &self.home {
            Some(home) => Ok(home.join(".config").join("pms")),
            None => Err(Error::Usage(
                "cannot find a config directory: set PMS_CONFIG_DIR (or HOME)".into(),
            )),
        }
    }
}

/// Checks a profile name: it becomes part of file names and keyring entries.
pub fn validate_profile(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid profile name `{name}`: use letters, digits, `-` and `_` (at most 64)"
        )))
    }
}

/// Normalises a server URL: must be http(s); trailing slash dropped. Without a scheme, a
/// loopback host (`localhost`, `127.0.0.1`, `[::1]`) gets `http://` and any other host
/// `https://` — a session never goes over plain HTTP to another machine by omission.
pub fn normalize_server(raw: &str) -> Result<String> {
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        let probe = url::Url::parse(&format!("http://{raw}"))
            .map_err(|e| Error::Usage(format!("invalid server URL `{raw}`: {e}")))?;
        if is_loopback(&probe) {
            format!("http://{raw}")
        } else {
            format!("https://{raw}")
        }
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| Error::Usage(format!("invalid server URL `{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Usage(format!(
            "invalid server URL `{raw}`: expected http(s)://host[:port]"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Whether a URL's host is this machine (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The warning for a server reached over plain `http://` on another machine: tokens and patient
/// data would cross the network unencrypted.
pub fn plain_http_warning(server: &str) -> Option<String> {
    let url = url::Url::parse(server).ok()?;
    (url.scheme() == "http" && !is_loopback(&url)).then(|| {
        format!(
            "{server} is plain http:// to another machine: passwords, tokens and patient data cross the network unencrypted. Use https://"
        )
    })
}

/// One profile: a server and who logs in there. No secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Base URL of the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Email of the last login (the default for the next one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Which store holds the session (`secret-service`, `keyutils`, `keychain`,
    /// `credential-manager` or `file`): read first, so a stale copy elsewhere never wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_store: Option<String>,
}

/// `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// The config directory and its `config.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    dir: PathBuf,
    file: ConfigFile,
}

impl Config {
    /// Loads `config.toml` from `dir` (a missing file is an empty config).
    pub fn load(dir: &Path) -> Result<Config> {
        let path = dir.join("config.toml");
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                Error::Usage(format!(
                    "invalid {}: {}",
                    path.display(),
                    e.message().trim()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Ok(Config {
            dir: dir.to_owned(),
            file,
        })
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A profile (empty when unknown).
    pub fn profile(&self, name: &str) -> Profile {
        self.file.profiles.get(name).cloned().unwrap_or_default()
    }

    /// Replaces a profile and writes the file.
    pub fn set_profile(&mut self, name: &str, profile: Profile) -> Result<()> {
        self.file.profiles.insert(name.to_owned(), profile);
        self.save()
    }

    fn save(&self) -> Result<()> {
        crate::credentials::file::ensure_private_dir(&self.dir)?;
        let text = toml::to_string_pretty(&self.file)
            .map_err(|e| Error::Other(format!("cannot serialise the config: {e}")))?;
        let header = "# pms CLI configuration, written by `pms login`. Holds no secrets.\n\n";
        crate::credentials::file::write_atomic(
            &self.dir.join("config.toml"),
            format!("{header}{text}").as_bytes(),
            0o600,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_dir_precedence() {
        let mut env = EnvSnapshot {
            home: Some("/home/u".into()),
            ..Default::default()
        };
        assert_eq!(
            env.config_dir().unwrap(),
            PathBuf::from("/home/u/.config/pms")
        );
        env.xdg_config_home = Some("/xdg".into());
        assert_eq!(env.config_dir().unwrap(), PathBuf::from("/xdg/pms"));
        env.config_dir = Some("/tmp/t".into());
        assert_eq!(env.config_dir().unwrap(), PathBuf::from("/tmp/t"));
        assert!(EnvSnapshot::default().config_dir().is_err());
    }

    #[test]
    fn server_urls_are_normalised() {
        assert_eq!(
            normalize_server("http://127.0.0.1:4004/").unwrap(),
            "http://127.0.0.1:4004"
        );
        assert_eq!(
            normalize_server("localhost:4004").unwrap(),
            "http://localhost:4004"
        );
        assert_eq!(
            normalize_server("127.0.0.1:4004").unwrap(),
            "http://127.0.0.1:4004"
        );
        assert_eq!(normalize_server("[::1]:4004").unwrap(), "http://[::1]:4004");
        assert_eq!(
            normalize_server("pms.example:8443").unwrap(),
            "https://pms.example:8443",
            "another machine: never plain http by omission"
        );
        assert_eq!(normalize_server("10.0.0.5").unwrap(), "https://10.0.0.5");
        assert_eq!(
            normalize_server("http://pms.example").unwrap(),
            "http://pms.example",
            "an explicit scheme is kept"
        );
        assert_eq!(
            normalize_server("https://pms.example/base/").unwrap(),
            "https://pms.example/base"
        );
        assert!(normalize_server("ftp://x").is_err());
        assert!(normalize_server("http://").is_err());
    }

    #[test]
    fn plain_http_to_another_machine_is_warned_about() {
        for quiet in [
            "http://127.0.0.1:4004",
            "http://localhost:4004",
            "http://[::1]:4004",
            "http://api.localhost",
            "https://pms.example",
        ] {
            assert_eq!(plain_http_warning(quiet), None, "{quiet}");
        }
        let warning = plain_http_warning("http://10.0.0.5:4004").unwrap();
        assert!(warning.contains("unencrypted"), "{warning}");
        assert!(plain_http_warning("http://pms.example").is_some());
    }

    #[test]
    fn profile_names_are_checked() {
        validate_profile("default").unwrap();
        validate_profile("staging_2-eu").unwrap();
        for bad in ["", "../x", "a b", "é"] {
            assert!(validate_profile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn profiles_round_trip_through_the_file_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let conf_dir = dir.path().join("pms");
        let mut config = Config::load(&conf_dir).unwrap();
        assert_eq!(config.profile("default"), Profile::default());
        let profile = Profile {
            server: Some("http://127.0.0.1:4004".into()),
            email: Some("a@b.test".into()),
            token_store: Some("file".into()),
        };
        config.set_profile("default", profile.clone()).unwrap();
        let again = Config::load(&conf_dir).unwrap();
        assert_eq!(again.profile("default"), profile);
        let text = std::fs::read_to_string(conf_dir.join("config.toml")).unwrap();
        assert!(text.contains("[profiles.default]"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&conf_dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn a_broken_config_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "profiles = 3").unwrap();
        let err = Config::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("config.toml"), "{err}");
        assert!(matches!(err, crate::Error::Usage(_)), "{err:?}");
    }
}
