//! OS keyring backends behind one small interface: get/set/delete a secret, each call on its own
//! thread under a timeout (a Secret Service waiting on an unlock prompt, or a wedged D-Bus, must
//! not hang the CLI).
//!
//! On Linux the backends are the Secret Service (over zbus, pure Rust) and then the kernel
//! keyutils store. keyutils needs the process to own a session keyring: without `pam_keyinit`
//! (CI runners, containers, `docker exec`) the kernel hands out the per-user default one, and the
//! store's link into the persistent keyring then fails with EACCES. Joining a fresh session
//! keyring first fixes it (a no-op where a login session already made one).

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};

type Opener = dyn Fn() -> keyring_core::Result<Arc<CredentialStore>> + Send + Sync;

/// Why a keyring call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// The store could not be opened at all (no D-Bus, no daemon): it holds nothing here.
    Unavailable(String),
    /// The store is there but the call failed or timed out (locked, denied, hung).
    Failed(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Unavailable(why) | BackendError::Failed(why) => f.write_str(why),
        }
    }
}

/// One keyring backend (a `keyring-core` credential store), opened lazily.
#[derive(Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    open: Box<Opener>,
    opened: OnceLock<Result<Arc<CredentialStore>, String>>,
    /// Runs on the worker thread before each call (the keyutils session-keyring join).
    prepare: Option<fn()>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Backend {
    /// A backend that opens its store with `open` on first use.
    pub fn new(
        name: &'static str,
        open: impl Fn() -> keyring_core::Result<Arc<CredentialStore>> + Send + Sync + 'static,
    ) -> Backend {
        Backend::with_prepare(name, open, None)
    }

    fn with_prepare(
        name: &'static str,
        open: impl Fn() -> keyring_core::Result<Arc<CredentialStore>> + Send + Sync + 'static,
        prepare: Option<fn()>,
    ) -> Backend {
        Backend {
            inner: Arc::new(Inner {
                name,
                open: Box::new(open),
                opened: OnceLock::new(),
                prepare,
            }),
        }
    }

    /// A backend over an already built store (tests: `keyring_core::mock::Store`).
    pub fn from_store(name: &'static str, store: Arc<CredentialStore>) -> Backend {
        Backend::new(name, move || Ok(store.clone()))
    }

    /// The backend's name as shown to users and stored in the profile.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The secret for (service, user); `Ok(None)` when there is none.
    pub fn get(
        &self,
        service: &str,
        user: &str,
        timeout: Duration,
    ) -> Result<Option<String>, BackendError> {
        self.call(service, user, timeout, |entry| match entry.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        })
    }

    /// Stores the secret for (service, user), replacing any previous one.
    pub fn set(
        &self,
        service: &str,
        user: &str,
        secret: &str,
        timeout: Duration,
    ) -> Result<(), BackendError> {
        let secret = secret.to_owned();
        self.call(service, user, timeout, move |entry| {
            entry.set_password(&secret)
        })
    }

    /// Deletes the secret; `Ok(false)` when there was none.
    pub fn delete(
        &self,
        service: &str,
        user: &str,
        timeout: Duration,
    ) -> Result<bool, BackendError> {
        self.call(service, user, timeout, |entry| {
            match entry.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn call<T: Send + 'static>(
        &self,
        service: &str,
        user: &str,
        timeout: Duration,
        op: impl FnOnce(Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T, BackendError> {
        let inner = self.inner.clone();
        let (service, user) = (service.to_owned(), user.to_owned());
        let work = move || -> Result<T, BackendError> {
            if let Some(prepare) = inner.prepare {
                prepare();
            }
            let store = inner
                .opened
                .get_or_init(|| (inner.open)().map_err(|e| describe(&e)))
                .clone()
                .map_err(BackendError::Unavailable)?;
            let entry = store
                .build(&service, &user, None)
                .map_err(|e| BackendError::Failed(describe(&e)))?;
            op(entry).map_err(|e| BackendError::Failed(describe(&e)))
        };
        with_timeout(timeout, work).unwrap_or_else(|| {
            Err(BackendError::Failed(format!(
                "no answer within {}s (set PMS_KEYRING_TIMEOUT to wait longer)",
                timeout.as_secs_f32()
            )))
        })
    }
}

/// Runs `work` on its own thread; `None` when it does not finish within `timeout` (the thread
/// is left to finish or die with the process: a keyring call cannot be cancelled).
fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("pms-keyring".into())
        .spawn(move || {
            let _ = tx.send(work());
        });
    if spawned.is_err() {
        return None;
    }
    rx.recv_timeout(timeout).ok()
}

/// A keyring error as one short line.
fn describe(e: &keyring_core::Error) -> String {
    let text = match e {
        keyring_core::Error::NoStorageAccess(inner) => format!("no access ({inner})"),
        keyring_core::Error::PlatformFailure(inner) => inner.to_string(),
        other => other.to_string(),
    };
    text.replace('\n', " ")
}

/// The keyring backends of this platform, in order of preference.
pub fn platform_backends() -> Vec<Backend> {
    #[cfg(target_os = "linux")]
    {
        vec![
            Backend::new("secret-service", || {
                let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()?;
                Ok(store)
            }),
            Backend::with_prepare(
                "keyutils",
                || {
                    let store: Arc<CredentialStore> = linux_keyutils_keyring_store::Store::new()?;
                    Ok(store)
                },
                Some(join_session_keyring),
            ),
        ]
    }
    #[cfg(target_os = "macos")]
    {
        vec![Backend::new("keychain", || {
            let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
            Ok(store)
        })]
    }
    #[cfg(target_os = "windows")]
    {
        vec![Backend::new("credential-manager", || {
            let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
            Ok(store)
        })]
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    {
        Vec::new()
    }
}

/// Makes sure this thread has a session keyring of its own (see the module doc). With
/// `create = true` the kernel joins a new anonymous session keyring only when the current one is
/// the per-user default; under a real login session it returns the existing one.
#[cfg(target_os = "linux")]
fn join_session_keyring() {
    let _ =
        linux_keyutils::KeyRing::from_special_id(linux_keyutils::KeyRingIdentifier::Session, true);
}

#[cfg(test)]
pub(crate) mod testing {
    //! Stores that fail: unreachable, and slow past any timeout.

    use super::*;
    use keyring_core::api::CredentialStoreApi;
    use std::collections::HashMap;

    /// A keyring that is never reachable (no D-Bus, seccomp, locked).
    pub struct DownStore;

    impl CredentialStoreApi for DownStore {
        fn vendor(&self) -> String {
            "down".into()
        }
        fn id(&self) -> String {
            "down".into()
        }
        fn build(
            &self,
            _: &str,
            _: &str,
            _: Option<&HashMap<&str, &str>>,
        ) -> keyring_core::Result<Entry> {
            Err(keyring_core::Error::NoStorageAccess(
                "keyring is down".into(),
            ))
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    /// A backend whose store never opens (like the Secret Service with no bus).
    pub fn down(name: &'static str) -> Backend {
        Backend::from_store(name, Arc::new(DownStore))
    }

    /// A backend that hangs (a prompt nobody answers).
    pub fn hanging(name: &'static str) -> Backend {
        Backend::new(name, || {
            std::thread::sleep(Duration::from_secs(30));
            Err(keyring_core::Error::NoStorageAccess("late".into()))
        })
    }

    /// A working in-memory backend and its store (to inspect or inject errors).
    pub fn mock(name: &'static str) -> (Backend, Arc<keyring_core::mock::Store>) {
        let store = keyring_core::mock::Store::new().expect("mock store");
        (Backend::from_store(name, store.clone()), store)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn mock_round_trip_and_delete() {
        let (backend, _) = mock("mock");
        assert_eq!(backend.get("pms", "default", T), Ok(None));
        backend.set("pms", "default", "s3cret", T).unwrap();
        assert_eq!(backend.get("pms", "default", T), Ok(Some("s3cret".into())));
        assert_eq!(backend.get("pms", "other", T), Ok(None), "per user");
        assert_eq!(backend.delete("pms", "default", T), Ok(true));
        assert_eq!(backend.delete("pms", "default", T), Ok(false));
        assert_eq!(backend.get("pms", "default", T), Ok(None));
    }

    #[test]
    fn a_down_store_reports_why() {
        let err = down("secret-service").get("pms", "default", T).unwrap_err();
        assert_eq!(
            err,
            BackendError::Failed("no access (keyring is down)".into())
        );
        let closed = Backend::new("closed", || {
            Err(keyring_core::Error::PlatformFailure("no bus".into()))
        });
        assert_eq!(
            closed.get("pms", "default", T),
            Err(BackendError::Unavailable("no bus".into()))
        );
    }

    #[test]
    fn a_hanging_store_times_out() {
        let started = std::time::Instant::now();
        let err = hanging("slow")
            .set("pms", "default", "x", Duration::from_millis(200))
            .unwrap_err();
        assert!(err.to_string().contains("no answer within 0.2s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
