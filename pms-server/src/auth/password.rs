//! Password hashing: Argon2id with the `argon2` crate's defaults (OWASP: m=19 MiB, t=2, p=1), on
//! the blocking pool, with a cap on concurrent hashes (each takes 19 MiB and a core for tens of
//! milliseconds; a login flood must not exhaust memory).
//!
//! Verifying against an unknown account uses a precomputed dummy hash with the same parameters,
//! so "no such user" costs exactly as much as "wrong password".

use std::sync::Arc;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    /// A hash of a random password nobody knows, for unknown accounts.
    dummy_hash: Arc<str>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// Precomputes the dummy hash.
    pub async fn new() -> anyhow::Result<Passwords> {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let permits = Arc::new(Semaphore::new(cores * 2));
        let dummy = SecretString::from(random_password(32));
        let dummy_hash = hash_blocking(&permits, dummy).await?;
        Ok(Passwords {
            dummy_hash: dummy_hash.into(),
            permits,
        })
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password` with a fresh salt.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        hash_blocking(&self.permits, password).await
    }

    /// Whether `password` matches `hash`; with `None` (unknown account) it checks against the
    /// dummy hash and returns `false`, taking the same time as a real mismatch.
    pub async fn verify(&self, password: SecretString, hash: Option<&str>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hasher is shut down")?;
        let matches = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
            Ok::<_, anyhow::Error>(
                Argon2::default()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .context("password verification task failed")??;
        Ok(known && matches)
    }
}

async fn hash_blocking(permits: &Semaphore, password: SecretString) -> anyhow::Result<String> {
    let _permit = permits
        .acquire()
        .await
        .context("password hasher is shut down")?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
    })
    .await
    .context("password hashing task failed")?
}

/// `len` random ASCII letters and digits from the OS CSPRNG (generated admin passwords).
pub fn random_password(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, len)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn random_passwords_are_alphanumeric() {
        let pw = random_password(24);
        assert_eq!(pw.len(), 24);
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(pw, random_password(24));
    }
}
