//! Password hashing: Argon2id with the `argon2` crate's defaults (OWASP: m=19 MiB, t=2, p=1), on
//! dedicated threads, with a bound on concurrent hashes ([`HashLimits`]): each takes 19 MiB and a
//! core for tens of milliseconds, so by default they may use every core but one. The hashing
//! threads run at a lower scheduling priority (nice +[`HASH_NICE`]) than request handling: when
//! the machine is saturated, a login flood slows logins, not every other endpoint. A request that cannot start hashing within the
//! queue deadline is shed with 503 + `Retry-After` ([`HashError::Busy`]) instead of queueing
//! without bound.
//!
//! Verifying against an unknown account uses a precomputed dummy hash with the same parameters,
//! so "no such user" costs exactly as much as "wrong password".

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::AuthSettings;
use crate::error::ApiError;

/// How much lower the hashing threads' scheduling priority is (Linux nice, per thread).
const HASH_NICE: i32 = 10;

/// What a shed request is told to wait before retrying.
const RETRY_AFTER_SECS: u64 = 1;

/// How much password hashing may run at once, and how long a request waits for its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Hashes running at once (at least 1).
    pub concurrency: usize,
    /// Longest wait for a turn; then [`HashError::Busy`].
    pub queue_timeout: Duration,
}

impl HashLimits {
    /// `auth.password_hash_concurrency` (0: every core but one, at least one) and
    /// `auth.password_hash_queue_timeout_ms`.
    pub fn from_settings(auth: &AuthSettings) -> HashLimits {
        let concurrency = match auth.password_hash_concurrency {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| usize::from(n).saturating_sub(1))
                .max(1),
            n => n,
        };
        HashLimits {
            concurrency,
            queue_timeout: auth.password_hash_queue_timeout,
        }
    }
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits::from_settings(&AuthSettings::default())
    }
}

/// Why a password could not be hashed or verified.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// No hashing slot became free within the queue deadline.
    #[error("password hashing is saturated")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for ApiError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => ApiError::Overloaded {
                detail: "the server is busy checking passwords; retry shortly".to_owned(),
                retry_after_secs: RETRY_AFTER_SECS,
            },
            HashError::Failed(e) => ApiError::Internal(e),
        }
    }
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    /// A hash of a random password nobody knows, for unknown accounts.
    dummy_hash: Arc<str>,
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    workers: Workers,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// With the default limits; precomputes the dummy hash.
    #[cfg(test)]
    pub async fn new() -> anyhow::Result<Passwords> {
        Passwords::with_limits(HashLimits::default()).await
    }

    /// With `limits`; precomputes the dummy hash.
    pub async fn with_limits(limits: HashLimits) -> anyhow::Result<Passwords> {
        let mut passwords = Passwords {
            dummy_hash: Arc::from(""),
            permits: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            queue_timeout: limits.queue_timeout,
            workers: Workers::start(limits.concurrency.max(1))?,
        };
        let dummy = SecretString::from(random_password(32));
        // At start nothing else hashes: no deadline can expire.
        passwords.dummy_hash = passwords.hash(dummy).await?.into();
        Ok(passwords)
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password` with a fresh salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let permit = self.turn().await?;
        self.workers
            .run(move || {
                let _permit = permit;
                let salt = SaltString::generate(&mut OsRng);
                Argon2::default()
                    .hash_password(password.expose_secret().as_bytes(), &salt)
                    .map(|hash| hash.to_string())
                    .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
            })
            .await?
            .map_err(HashError::Failed)
    }

    /// Whether `password` matches `hash`; with `None` (unknown account) it checks against the
    /// dummy hash and returns `false`, taking the same time as a real mismatch.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<&str>,
    ) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let permit = self.turn().await?;
        let matches = self
            .workers
            .run(move || {
                let _permit = permit;
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
                Ok::<_, anyhow::Error>(
                    Argon2::default()
                        .verify_password(password.expose_secret().as_bytes(), &parsed)
                        .is_ok(),
                )
            })
            .await??;
        Ok(known && matches)
    }

    /// Waits for a hashing slot, at most the queue deadline. The permit moves into the blocking
    /// task, so a request abandoned meanwhile (client gone, timeout) still holds its slot until
    /// the hash it started has finished: the bound is on running hashes, not on waiting requests.
    async fn turn(&self) -> Result<OwnedSemaphorePermit, HashError> {
        match tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned()).await {
            Ok(permit) => Ok(permit.context("password hasher is shut down")?),
            Err(_) => {
                metrics::counter!("auth_password_hashes_shed_total").increment(1);
                Err(HashError::Busy)
            }
        }
    }
}

/// A job for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads: as many as hashes may run at once (the semaphore keeps the queue empty),
/// each at nice +[`HASH_NICE`]. They end when the last clone of their [`Passwords`] is dropped.
#[derive(Clone)]
struct Workers {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Workers {
    fn start(threads: usize) -> anyhow::Result<Workers> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("pms-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for the next job, not while hashing.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .context("cannot start a password hashing thread")?;
        }
        Ok(Workers { jobs })
    }

    /// Runs `work` on a hashing thread and returns its result.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?;
        Ok(result.await.context("a password hashing thread failed")?)
    }
}

/// Lowers the calling thread's scheduling priority (Linux keeps nice values per thread). Best
/// effort: where it cannot, hashing runs at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = Some(rustix::thread::gettid());
        // Only ever lower: a server started under a higher nice keeps it for hashing too (with
        // CAP_SYS_NICE, setting +10 there would raise hashing above request handling).
        let target =
            rustix::process::getpriority_process(tid).map_or(HASH_NICE, |n| n.max(HASH_NICE));
        if let Err(e) = rustix::process::setpriority_process(tid, target) {
            tracing::debug!(error = %e, "cannot lower the hashing thread's priority");
        }
    }
}

/// `len` random ASCII letters and digits from the OS CSPRNG (generated admin passwords).
pub fn random_password(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_on_threads_below_the_priority_of_request_handling() {
        let workers = Workers::start(1).expect("workers");
        let here = rustix::process::getpriority_process(None).expect("priority");
        let (name, nice) = workers
            .run(|| {
                let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
                (std::thread::current().name().map(str::to_owned), nice)
            })
            .await
            .expect("ran");
        assert_eq!(name.as_deref(), Some("pms-hash-0"));
        // A process already niced above HASH_NICE cannot go back up (no privilege needed down).
        assert_eq!(nice.expect("priority"), here.max(HASH_NICE));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let passwords = Passwords::new().await.expect("hasher");
        let hash = passwords
            .hash(SecretString::from("correct horse battery"))
            .await
            .expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("correct horse"));
        assert!(
            passwords
                .verify(SecretString::from("correct horse battery"), Some(&hash))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify(SecretString::from("correct horse battery!"), Some(&hash))
                .await
                .expect("verify")
        );
        let again = passwords
            .hash(SecretString::from("correct horse battery"))
            .await
            .expect("hash");
        assert_ne!(hash, again, "fresh salt every time");
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        let passwords = Passwords::new().await.expect("hasher");
        assert!(
            !passwords
                .verify(SecretString::from("anything at all"), None)
                .await
                .expect("verify")
        );
        assert!(
            passwords
                .dummy_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        let passwords = Passwords::new().await.expect("hasher");
        assert!(
            passwords
                .verify(SecretString::from("whatever pw"), Some("not a phc string"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_request_that_cannot_get_a_slot_in_time_is_busy_and_the_slot_is_reused() {
        let passwords = Passwords::with_limits(HashLimits {
            concurrency: 1,
            queue_timeout: Duration::from_millis(50),
        })
        .await
        .expect("hasher");
        let held = passwords
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("slot");
        let refused = passwords
            .verify(SecretString::from("whatever pw"), None)
            .await;
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");
        assert!(matches!(
            passwords.hash(SecretString::from("whatever pw")).await,
            Err(HashError::Busy)
        ));
        drop(held);
        assert!(
            !passwords
                .verify(SecretString::from("whatever pw"), None)
                .await
                .expect("a free slot verifies")
        );
        assert_eq!(passwords.permits.available_permits(), 1, "slot returned");
    }

    #[test]
    fn the_default_bound_leaves_a_core_free() {
        let limits = HashLimits::default();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(limits.concurrency, cores.saturating_sub(1).max(1));
        assert_eq!(limits.queue_timeout, Duration::from_secs(10));
    }

    #[test]
    fn busy_is_a_503_with_retry_after() {
        let response = axum::response::IntoResponse::into_response(ApiError::from(HashError::Busy));
        assert_eq!(
            response.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
    }

    #[test]
    fn random_passwords_are_alphanumeric() {
        let pw = random_password(24);
        assert_eq!(pw.len(), 24);
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(pw, random_password(24));
    }
}
