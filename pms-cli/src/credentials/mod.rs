//! Where a login session (access + refresh token) is kept: the OS keyring first, a private file
//! only as an explicit, loudly announced fallback.
//!
//! `PMS_TOKEN_STORE` decides: `auto` (default) tries each keyring backend and falls back to a
//! 0600 file with a warning; `keyring` never writes a file (login fails instead); `file` never
//! touches the keyring. The backend that took the last write is remembered in the profile
//! (`token_store`) and read first, so a stale copy elsewhere never wins.
//!
//! Keyring entries are named by profile, server and (when not the default) config directory
//! ([`naming`]); an entry of an earlier version, named by profile alone, is moved to its new
//! name the first time the profile that pinned that keyring reads it.

pub mod file;
pub mod keyring;
pub mod naming;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pms_proto::rest::Role;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use keyring::{Backend, BackendError};

/// The keyring "service" every session is stored under (the user: see [`naming`]).
pub const KEYRING_SERVICE: &str = "pms";
/// How long one keyring call may take unless `PMS_KEYRING_TIMEOUT` says otherwise.
pub const DEFAULT_KEYRING_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Gateway base URL the tokens belong to.
    pub server: String,
    pub email: String,
    #[serde(default)]
    pub role: Option<Role>,
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.server)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// `PMS_TOKEN_STORE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Keyring, else a private file with a warning.
    Auto,
    /// Keyring only; never a file.
    Keyring,
    /// A private file only; never the keyring.
    File,
}

impl StoreMode {
    /// Parses `PMS_TOKEN_STORE` (unset = `auto`).
    pub fn parse(value: Option<&str>) -> Result<StoreMode> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("auto") => Ok(StoreMode::Auto),
            Some("keyring") => Ok(StoreMode::Keyring),
            Some("file") => Ok(StoreMode::File),
            Some(other) => Err(Error::Usage(format!(
                "invalid PMS_TOKEN_STORE `{other}`: expected auto, keyring or file"
            ))),
        }
    }
}

/// Where a session lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An OS keyring backend (`secret-service`, `keyutils`, `keychain`, `credential-manager`).
    Keyring(&'static str),
    /// A plain-text file (mode 0600).
    File(PathBuf),
}

impl Location {
    /// The short name stored in the profile and shown by `pms auth status`.
    pub fn name(&self) -> &str {
        match self {
            Location::Keyring(name) => name,
            Location::File(_) => "file",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Keyring(name) => write!(f, "OS keyring ({name})"),
            Location::File(path) => write!(f, "plain-text file {} (mode 0600)", path.display()),
        }
    }
}

/// A session found by [`TokenStore::load`].
#[derive(Debug)]
pub struct Loaded {
    pub session: Session,
    pub location: Location,
    /// Things the user should know (loose file permissions).
    pub warnings: Vec<String>,
}

/// What [`TokenStore::load`] found.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub found: Option<Loaded>,
    /// Backends that could not be read (`name: why`), reported when nothing was found.
    pub errors: Vec<String>,
}

/// Where [`TokenStore::save`] put the session.
#[derive(Debug)]
pub struct Saved {
    pub location: Location,
    /// Things to print on stderr (the plain-text fallback, a removed stale copy).
    pub warnings: Vec<String>,
}

/// The session store: keyring backends in order, then the fallback file.
#[derive(Debug, Clone)]
pub struct TokenStore {
    mode: StoreMode,
    backends: Vec<Backend>,
    files_dir: PathBuf,
    timeout: Duration,
    /// The config directory's namespace in keyring names (`None`: the default directory).
    namespace: Option<String>,
}

impl TokenStore {
    /// A store over `backends` (platform or test ones) with fallback files in `files_dir`.
    pub fn new(
        mode: StoreMode,
        backends: Vec<Backend>,
        files_dir: PathBuf,
        timeout: Duration,
    ) -> TokenStore {
        TokenStore {
            mode,
            backends,
            files_dir,
            timeout,
            namespace: None,
        }
    }

    /// The same store with keyring entries namespaced for a non-default config directory.
    pub fn with_namespace(mut self, namespace: Option<String>) -> TokenStore {
        self.namespace = namespace;
        self
    }

    /// The keyring user of `profile`'s session on `server`.
    pub fn keyring_user(&self, profile: &str, server: &str) -> String {
        naming::keyring_user(profile, server, self.namespace.as_deref())
    }

    /// The store of this platform: its keyring backends (all, or those `only` names —
    /// `PMS_KEYRING_BACKEND`, `none` for no keyring), files under `<config dir>/sessions`.
    pub fn platform(
        mode: StoreMode,
        config_dir: &Path,
        timeout: Duration,
        only: Option<&str>,
    ) -> Result<TokenStore> {
        let mut backends = keyring::platform_backends();
        if let Some(only) = only {
            let wanted: Vec<&str> = only
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let known: Vec<&str> = backends.iter().map(Backend::name).collect();
            for name in &wanted {
                if *name != "none" && !known.contains(name) {
                    return Err(Error::Usage(format!(
                        "invalid PMS_KEYRING_BACKEND `{name}`: this platform has {} (or none)",
                        known.join(", ")
                    )));
                }
            }
            backends.retain(|b| wanted.contains(&b.name()));
            backends.sort_by_key(|b| wanted.iter().position(|w| *w == b.name()));
        }
        Ok(TokenStore::new(
            mode,
            backends,
            config_dir.join("sessions"),
            timeout,
        ))
    }

    /// The mode in force.
    pub fn mode(&self) -> StoreMode {
        self.mode
    }

    /// The fallback file of a profile.
    pub fn file_path(&self, profile: &str) -> PathBuf {
        self.files_dir.join(format!("{profile}.json"))
    }

    fn ordered_backends(&self, pinned: Option<&str>) -> Vec<&Backend> {
        let mut ordered: Vec<&Backend> = self.backends.iter().collect();
        if let Some(pin) = pinned {
            ordered.sort_by_key(|b| b.name() != pin);
        }
        ordered
    }

    /// Finds the session of `profile` on `server`, reading the `pinned` store (the profile's
    /// last write) first.
    pub fn load(&self, profile: &str, server: &str, pinned: Option<&str>) -> Result<LoadOutcome> {
        let user = self.keyring_user(profile, server);
        let mut outcome = LoadOutcome::default();
        let file_first = pinned == Some("file") && self.mode == StoreMode::Auto;
        if (file_first || self.mode == StoreMode::File) && self.load_file(profile, &mut outcome)? {
            return Ok(outcome);
        }
        if self.mode != StoreMode::File {
            for backend in self.ordered_backends(pinned) {
                match backend.get(KEYRING_SERVICE, &user, self.timeout) {
                    Ok(Some(secret)) => match serde_json::from_str::<Session>(&secret) {
                        Ok(session) => {
                            outcome.found = Some(Loaded {
                                session,
                                location: Location::Keyring(backend.name()),
                                warnings: Vec::new(),
                            });
                            return Ok(outcome);
                        }
                        Err(e) => outcome
                            .errors
                            .push(format!("{}: unreadable session ({e})", backend.name())),
                    },
                    Ok(None) | Err(BackendError::Unavailable(_)) => {}
                    Err(BackendError::Failed(why)) => {
                        outcome.errors.push(format!("{}: {why}", backend.name()))
                    }
                }
            }
        }
        if self.mode != StoreMode::File
            && let Some(found) = self.migrate_legacy(profile, server, pinned)
        {
            outcome.found = Some(found);
            return Ok(outcome);
        }
        if self.mode == StoreMode::Auto && !file_first {
            self.load_file(profile, &mut outcome)?;
        }
        Ok(outcome)
    }

    /// An entry of an earlier version (named by profile alone) in the keyring this profile
    /// pinned, for this server: moved to its namespaced name (the old one removed) and
    /// returned. Only the pinned backend is asked — a profile that never logged in there has
    /// no claim on the entry, and an unpinned lookup would cost every "not logged in" a round
    /// of keyring calls.
    fn migrate_legacy(&self, profile: &str, server: &str, pinned: Option<&str>) -> Option<Loaded> {
        let backend = self.backends.iter().find(|b| Some(b.name()) == pinned)?;
        let legacy = naming::legacy_user(profile);
        let secret = backend.get(KEYRING_SERVICE, legacy, self.timeout).ok()??;
        let session = serde_json::from_str::<Session>(&secret).ok()?;
        if session.server != server {
            return None;
        }
        let user = self.keyring_user(profile, server);
        // When the move fails the old entry stays and is used as it is; the next read retries.
        if backend
            .set(KEYRING_SERVICE, &user, &secret, self.timeout)
            .is_ok()
        {
            let _ = backend.delete(KEYRING_SERVICE, legacy, self.timeout);
        }
        Some(Loaded {
            session,
            location: Location::Keyring(backend.name()),
            warnings: Vec::new(),
        })
    }

    fn load_file(&self, profile: &str, outcome: &mut LoadOutcome) -> Result<bool> {
        let path = self.file_path(profile);
        let Some((text, warning)) = file::read_private(&path)? else {
            return Ok(false);
        };
        match serde_json::from_str::<Session>(&text) {
            Ok(session) => {
                outcome.found = Some(Loaded {
                    session,
                    location: Location::File(path),
                    warnings: warning.into_iter().collect(),
                });
                Ok(true)
            }
            Err(e) => {
                outcome
                    .errors
                    .push(format!("{}: unreadable session ({e})", path.display()));
                Ok(false)
            }
        }
    }

    /// Stores the session of `profile` (see the module doc for where).
    pub fn save(&self, profile: &str, session: &Session) -> Result<Saved> {
        let secret = serde_json::to_string(session)
            .map_err(|e| Error::Other(format!("cannot serialise the session: {e}")))?;
        if self.mode == StoreMode::File {
            return self.save_file(profile, &secret, Vec::new());
        }
        let user = self.keyring_user(profile, &session.server);
        let mut errors = Vec::new();
        for backend in &self.backends {
            match backend.set(KEYRING_SERVICE, &user, &secret, self.timeout) {
                Ok(()) => {
                    let mut warnings = Vec::new();
                    for other in self.backends.iter().filter(|b| b.name() != backend.name()) {
                        // Best effort: a stale copy would only be read if the pin were lost.
                        let _ = other.delete(KEYRING_SERVICE, &user, self.timeout);
                    }
                    let path = self.file_path(profile);
                    if file::remove(&path)? {
                        warnings.push(format!(
                            "removed the old plain-text session file {}",
                            path.display()
                        ));
                    }
                    return Ok(Saved {
                        location: Location::Keyring(backend.name()),
                        warnings,
                    });
                }
                Err(why) => errors.push(format!("{}: {why}", backend.name())),
            }
        }
        let why = if errors.is_empty() {
            "this platform has no supported OS keyring".to_owned()
        } else {
            errors.join("; ")
        };
        match self.mode {
            StoreMode::Keyring => Err(Error::Keyring(format!(
                "no usable OS keyring ({why}); nothing was written (PMS_TOKEN_STORE=keyring). Unlock or install a keyring, set PMS_TOKEN_STORE=file to allow a plain-text file, or use PMS_TOKEN"
            ))),
            _ => {
                let path = self.file_path(profile);
                let warning = format!(
                    "no usable OS keyring ({why}); session stored in plain text at {} (mode 0600). Set PMS_TOKEN_STORE=keyring to forbid this",
                    path.display()
                );
                self.save_file(profile, &secret, vec![warning])
            }
        }
    }

    fn save_file(&self, profile: &str, secret: &str, warnings: Vec<String>) -> Result<Saved> {
        file::ensure_private_dir(&self.files_dir)?;
        let path = self.file_path(profile);
        file::write_atomic(&path, secret.as_bytes(), 0o600)?;
        Ok(Saved {
            location: Location::File(path),
            warnings,
        })
    }

    /// Removes the session of `profile` on `server` from every store the mode allows (nothing
    /// of another server or config directory). Returns where copies were removed and the
    /// stores that could not be cleared.
    pub fn clear(&self, profile: &str, server: &str) -> Result<(Vec<Location>, Vec<String>)> {
        let (mut removed, errors) = self.clear_keyring(profile, server);
        // Even in keyring mode a stray plain-text copy is removed: it is never wanted.
        let path = self.file_path(profile);
        if file::remove(&path)? {
            removed.push(Location::File(path));
        }
        Ok((removed, errors))
    }

    /// Removes the keyring entries of `profile` on `server` only (a profile moved to another
    /// server: its old entry would only ever hold a revoked session).
    pub fn clear_keyring(&self, profile: &str, server: &str) -> (Vec<Location>, Vec<String>) {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        if self.mode == StoreMode::File {
            return (removed, errors);
        }
        let user = self.keyring_user(profile, server);
        for backend in &self.backends {
            match backend.delete(KEYRING_SERVICE, &user, self.timeout) {
                Ok(true) => removed.push(Location::Keyring(backend.name())),
                Ok(false) | Err(BackendError::Unavailable(_)) => {}
                Err(BackendError::Failed(why)) => errors.push(format!("{}: {why}", backend.name())),
            }
        }
        (removed, errors)
    }
}

#[cfg(test)]
mod tests;
