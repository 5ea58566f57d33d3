//! The Ed25519 signing key: generated on the first start, stored in the auth database and reused
//! by later starts and by every auth replica on the same database. Creation is race-safe: each
//! replica inserts its candidate only if no key of that generation exists, then re-reads the
//! winner.
//!
//! The private key (PKCS#8) sits in the auth database unencrypted; whoever can read that database
//! can mint tokens, so protect it like the password hashes next to it.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SubsecRound, Utc};
use jsonwebtoken::EncodingKey;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use secrecy::{ExposeSecret, SecretSlice};

use crate::auth::store::AuthStore;
use crate::authn::{Jwk, Jwks};

/// The generation of the first key. Rotation would add generation 2, 3, … (newest signs, all are
/// published until retired).
pub const FIRST_GENERATION: i64 = 1;

/// A signing key as stored.
pub struct StoredKey {
    pub generation: i64,
    pub kid: String,
    pub pkcs8: SecretSlice<u8>,
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("generation", &self.generation)
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    /// A fresh Ed25519 key of `generation`.
    pub fn generate(generation: i64) -> anyhow::Result<StoredKey> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("cannot generate an Ed25519 key"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| anyhow::anyhow!("generated Ed25519 key does not parse: {e}"))?;
        let public_key = pair.public_key().as_ref().to_vec();
        Ok(StoredKey {
            generation,
            kid: kid_of(&public_key),
            pkcs8: SecretSlice::from(pkcs8.as_ref().to_vec()),
            public_key,
            created_at: Utc::now().trunc_subsecs(6),
        })
    }

    /// Checks that the PKCS#8 document parses and matches the stored public key and kid (a
    /// corrupted or hand-edited row must stop the service, not sign garbage).
    fn check(&self) -> anyhow::Result<()> {
        let pair = Ed25519KeyPair::from_pkcs8(self.pkcs8.expose_secret())
            .map_err(|e| anyhow::anyhow!("signing key {} is not valid PKCS#8: {e}", self.kid))?;
        if pair.public_key().as_ref() != self.public_key.as_slice() {
            bail!(
                "signing key {}: the public key does not match the private key",
                self.kid
            );
        }
        if kid_of(&self.public_key) != self.kid {
            bail!(
                "signing key {}: the kid does not match the public key",
                self.kid
            );
        }
        Ok(())
    }

    pub fn jwk(&self) -> Jwk {
        Jwk::ed25519(&self.kid, &self.public_key)
    }
}

/// `kid` of a public key: the first 16 characters of base64url(SHA-256(public key)).
pub fn kid_of(public_key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    let mut kid = URL_SAFE_NO_PAD.encode(digest.as_ref());
    kid.truncate(16);
    kid
}

/// The keys the service signs with and publishes.
pub struct KeyRing {
    /// Signs new tokens (the newest generation).
    pub kid: String,
    pub encoding: EncodingKey,
    /// Every stored public key.
    pub jwks: Jwks,
}

impl KeyRing {
    /// A ring over `keys` (any order); the newest generation signs.
    pub fn from_keys(keys: &[StoredKey]) -> anyhow::Result<KeyRing> {
        for key in keys {
            key.check()?;
        }
        let newest = keys
            .iter()
            .max_by_key(|k| k.generation)
            .context("no signing key")?;
        Ok(KeyRing {
            kid: newest.kid.clone(),
            encoding: EncodingKey::from_ed_der(newest.pkcs8.expose_secret()),
            jwks: Jwks {
                keys: keys.iter().map(StoredKey::jwk).collect(),
            },
        })
    }
}

/// Loads the stored keys, creating the first one if there is none.
pub async fn load_or_create(store: &dyn AuthStore) -> anyhow::Result<KeyRing> {
    let mut keys = store
        .signing_keys()
        .await
        .context("while loading signing keys")?;
    if keys.is_empty() {
        let candidate = StoredKey::generate(FIRST_GENERATION)?;
        let created = store
            .insert_signing_key(&candidate)
            .await
            .context("while storing the new signing key")?;
        if created {
            tracing::info!(kid = %candidate.kid, "created the token signing key");
        }
        // Another replica may have won the race: use whatever is stored now.
        keys = store
            .signing_keys()
            .await
            .context("while loading signing keys")?;
    }
    KeyRing::from_keys(&keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_a_16_char_base64url_digest_prefix() {
        let key = StoredKey::generate(1).expect("key");
        assert_eq!(key.kid.len(), 16);
        assert!(
            key.kid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let full =
            URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &key.public_key));
        assert!(full.starts_with(&key.kid));
        assert_eq!(key.public_key.len(), 32);
        assert_eq!(key.jwk().x, URL_SAFE_NO_PAD.encode(&key.public_key));
    }

    #[test]
    fn the_newest_generation_signs_and_all_are_published() {
        let old = StoredKey::generate(1).expect("key");
        let new = StoredKey::generate(2).expect("key");
        let ring = KeyRing::from_keys(&[new, old]).expect("ring");
        assert_eq!(ring.jwks.keys.len(), 2);
        assert_eq!(ring.kid, ring.jwks.keys[0].kid);
    }

    #[test]
    fn a_mismatched_key_is_refused() {
        let mut key = StoredKey::generate(1).expect("key");
        key.public_key = StoredKey::generate(1).expect("key").public_key;
        assert!(KeyRing::from_keys(&[key]).is_err());
        let mut key = StoredKey::generate(1).expect("key");
        key.kid = "AAAAAAAAAAAAAAAA".to_owned();
        assert!(KeyRing::from_keys(&[key]).is_err());
        assert!(KeyRing::from_keys(&[]).is_err());
        assert!(!format!("{:?}", StoredKey::generate(1).expect("key")).contains("pkcs8"));
    }
}
