//! Turning flags, environment and config into an authenticated [`ApiClient`]: which profile,
//! which server, which token (`PMS_TOKEN` first, then the profile's stored session), and keeping
//! the stored session up to date when the client refreshes it.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{ApiClient, Credentials, SessionPersistence};
use crate::config::{self, Config, EnvSnapshot, Profile};
use crate::credentials::{
    DEFAULT_KEYRING_TIMEOUT, LoadOutcome, Location, Session, StoreMode, TokenStore,
};
use crate::error::{Error, Result};

/// Prints a warning (the CLI writes `warning: …` to stderr; tests collect).
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// Everything a command needs to reach the API.
#[derive(Clone)]
pub struct Context {
    pub env: EnvSnapshot,
    /// The profile in use (`--profile`, `PMS_PROFILE`, or `default`).
    pub profile: String,
    /// `--server` / `PMS_SERVER`, normalised.
    pub server_override: Option<String>,
    pub config: Config,
    pub tokens: TokenStore,
    pub warn: Warn,
}

/// Where the credentials of a client came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSource {
    /// `PMS_TOKEN`.
    Environment,
    /// A stored session.
    Stored(Location),
}

impl Context {
    /// Resolves the profile, config directory and token store.
    pub fn new(
        env: EnvSnapshot,
        profile: Option<String>,
        server: Option<String>,
        warn: Warn,
    ) -> Result<Context> {
        let profile = profile.unwrap_or_else(|| config::DEFAULT_PROFILE.to_owned());
        config::validate_profile(&profile)?;
        let server_override = server
            .as_deref()
            .map(config::normalize_server)
            .transpose()?;
        let dir = env.config_dir()?;
        for warning in crate::credentials::file::secure_config_dir(&dir) {
            warn(&warning);
        }
        let config = Config::load(&dir)?;
        let mode = StoreMode::parse(env.token_store.as_deref())?;
        let timeout = match env.keyring_timeout.as_deref() {
            None => DEFAULT_KEYRING_TIMEOUT,
            Some(raw) => raw
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "invalid PMS_KEYRING_TIMEOUT `{raw}`: expected seconds"
                    ))
                })?,
        };
        let default_dir = EnvSnapshot {
            config_dir: None,
            ..env.clone()
        }
        .config_dir()
        .ok();
        let namespace = crate::credentials::naming::config_namespace(&dir, default_dir.as_deref());
        let tokens = TokenStore::platform(mode, &dir, timeout, env.keyring_backend.as_deref())?
            .with_namespace(namespace);
        Ok(Context {
            env,
            profile,
            server_override,
            config,
            tokens,
            warn,
        })
    }

    /// The profile's saved settings.
    pub fn profile_settings(&self) -> Profile {
        self.config.profile(&self.profile)
    }

    /// The server to talk to: `--server`/`PMS_SERVER`, else the profile's, else the default.
    pub fn server(&self) -> String {
        self.server_override
            .clone()
            .or_else(|| self.profile_settings().server)
            .unwrap_or_else(|| config::DEFAULT_SERVER.to_owned())
    }

    /// A client without credentials (login, public endpoints).
    pub fn anonymous_client(&self, server: &str) -> Result<ApiClient> {
        ApiClient::new(server, Credentials::None)
    }

    /// Reads the profile's stored session for the server in use (pinned store first).
    pub fn load_session(&self) -> Result<LoadOutcome> {
        let settings = self.profile_settings();
        let server = self.server();
        let mut outcome =
            self.tokens
                .load(&self.profile, &server, settings.token_store.as_deref())?;
        // Asked for another server than the profile's: its session there (if any) is found
        // only to say so (`ServerMismatch`), never sent.
        if outcome.found.is_none()
            && let Some(own) = settings.server.filter(|own| *own != server)
        {
            let other = self
                .tokens
                .load(&self.profile, &own, settings.token_store.as_deref())?;
            if other.found.is_some() {
                outcome = other;
            }
        }
        if let Some(found) = &outcome.found {
            for warning in &found.warnings {
                (self.warn)(warning);
            }
        }
        Ok(outcome)
    }

    /// An authenticated client: `PMS_TOKEN` (with `PMS_SERVER`/`--server` or the profile's
    /// server), else the stored session of the profile.
    pub fn client(&self) -> Result<(ApiClient, SessionSource)> {
        if let Some(token) = &self.env.token {
            let client = ApiClient::new(&self.server(), Credentials::Token(token.clone()))?;
            return Ok((client, SessionSource::Environment));
        }
        let outcome = self.load_session()?;
        let Some(found) = outcome.found else {
            for error in &outcome.errors {
                (self.warn)(&format!("could not read the session from {error}"));
            }
            return Err(Error::NotLoggedIn {
                profile: self.profile.clone(),
                server: self.server_override.clone(),
            });
        };
        let session = found.session;
        if let Some(requested) = &self.server_override
            && *requested != session.server
        {
            return Err(Error::ServerMismatch {
                profile: self.profile.clone(),
                session_server: session.server,
                requested: requested.clone(),
            });
        }
        let persistence: Arc<dyn SessionPersistence> = Arc::new(StoredSession {
            context: self.clone(),
        });
        let client = ApiClient::new(
            &session.server.clone(),
            Credentials::Session {
                session,
                persistence: Some(persistence),
            },
        )?;
        Ok((client, SessionSource::Stored(found.location)))
    }

    /// Stores a session for the profile and remembers where (the pin).
    pub fn save_session(&self, session: &Session) -> Result<Location> {
        let saved = self.tokens.save(&self.profile, session)?;
        for warning in &saved.warnings {
            (self.warn)(warning);
        }
        let mut config = Config::load(self.config.dir())?;
        let mut profile = config.profile(&self.profile);
        profile.server = Some(session.server.clone());
        profile.email = Some(session.email.clone());
        profile.token_store = Some(saved.location.name().to_owned());
        config.set_profile(&self.profile, profile)?;
        Ok(saved.location)
    }
}

/// The client's hook into the token store: rotated tokens are written back at once.
struct StoredSession {
    context: Context,
}

impl SessionPersistence for StoredSession {
    fn save(&self, session: &Session) {
        if let Err(e) = self.context.save_session(session) {
            (self.context.warn)(&format!(
                "the session was refreshed but could not be stored ({e}): the next command will need `pms login`"
            ));
        }
    }

    fn reload(&self) -> Option<Session> {
        self.context.load_session().ok()?.found.map(|f| f.session)
    }
}
