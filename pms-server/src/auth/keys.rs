//! The Ed25519 signing keys: generated on the first start, stored in the auth database and reused
//! by later starts and by every auth replica on the same database. Creation is race-safe: each
//! replica inserts its candidate only if no key of that generation exists, then re-reads the
//! winner.
//!
//! With a key-encryption key ([`Kek`]) the private keys are stored sealed; plaintext keys left by
//! an earlier start are sealed on the first start with a KEK. Without one they are stored as is
//! (whoever reads the database can then mint tokens; the data dir is private for that reason).
//!
//! Rotation ([`rotate`]) adds a newer generation, which signs from then on; an older key stays
//! published until every token it signed has expired ([`KeyRing::from_keys`] retires it), then it
//! is deleted.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SubsecRound, Utc};
use jsonwebtoken::EncodingKey;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use secrecy::{ExposeSecret, SecretSlice};

use crate::auth::kek::{Kek, is_sealed};
use crate::auth::store::{AuditEvent, AuthStore};
use crate::authn::{Jwk, Jwks};

/// The generation of the first key. Rotation adds generation 2, 3, … (newest signs, older ones
/// are published until retired).
pub const FIRST_GENERATION: i64 = 1;

/// A signing key. `pkcs8` is the private key as stored: sealed or plaintext (see [`open_keys`]).
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

/// How long past a token's expiry its key stays published (verifiers' clock leeway and margin).
const RETIRE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The keys the service signs with and publishes.
pub struct KeyRing {
    /// Signs new tokens (the newest generation).
    pub kid: String,
    pub encoding: EncodingKey,
    /// The published public keys: the newest, and older ones whose tokens may still be live.
    pub jwks: Jwks,
    /// Generations no token can need any more (to delete).
    pub retired: Vec<i64>,
}

impl KeyRing {
    /// A ring over plaintext `keys` (any order); the newest generation signs. An older key is
    /// retired once its successor has signed for longer than `token_ttl` (plus a margin).
    pub fn from_keys(keys: &[StoredKey], token_ttl: chrono::TimeDelta) -> anyhow::Result<KeyRing> {
        for key in keys {
            key.check()?;
        }
        let mut sorted: Vec<&StoredKey> = keys.iter().collect();
        sorted.sort_by_key(|k| k.generation);
        let newest = *sorted.last().context("no signing key")?;
        let now = Utc::now();
        let mut published = Vec::new();
        let mut retired = Vec::new();
        for pair in sorted.windows(2) {
            let (key, successor) = (pair[0], pair[1]);
            if successor.created_at + token_ttl + RETIRE_MARGIN < now {
                retired.push(key.generation);
            } else {
                published.push(key.jwk());
            }
        }
        published.push(newest.jwk());
        published.reverse();
        Ok(KeyRing {
            kid: newest.kid.clone(),
            encoding: EncodingKey::from_ed_der(newest.pkcs8.expose_secret()),
            jwks: Jwks { keys: published },
            retired,
        })
    }
}

/// Opens stored keys: unseals sealed ones with `kek`; with a `kek`, seals plaintext ones in the
/// store. A sealed key without a KEK, or with the wrong one, is a start error.
async fn open_keys(
    store: &dyn AuthStore,
    keys: Vec<StoredKey>,
    kek: Option<&Kek>,
) -> anyhow::Result<Vec<StoredKey>> {
    let mut open = Vec::with_capacity(keys.len());
    for mut key in keys {
        let stored = key.pkcs8.expose_secret().to_vec();
        match (is_sealed(&stored), kek) {
            (true, Some(kek)) => key.pkcs8 = SecretSlice::from(kek.open(&key.kid, &stored)?),
            (true, None) => bail!(
                "signing key {} is encrypted but no key-encryption key is configured: set                  `auth.key_encryption_key` (PMS_AUTH__KEY_ENCRYPTION_KEY) or                  `auth.key_encryption_key_file`",
                key.kid
            ),
            (false, Some(kek)) => {
                key.check()?;
                let sealed = kek.seal(&key.kid, &stored)?;
                if store
                    .seal_signing_key(key.generation, &stored, &sealed)
                    .await
                    .context("while encrypting a signing key at rest")?
                {
                    tracing::info!(kid = %key.kid, "encrypted the signing key at rest");
                }
            }
            (false, None) => {}
        }
        open.push(key);
    }
    Ok(open)
}

/// Loads the stored keys, creating the first one if there is none, and deletes retired ones.
pub async fn load_or_create(
    store: &dyn AuthStore,
    kek: Option<&Kek>,
    token_ttl: chrono::TimeDelta,
) -> anyhow::Result<KeyRing> {
    let mut keys = store
        .signing_keys()
        .await
        .context("while loading signing keys")?;
    if keys.is_empty() {
        let candidate = StoredKey::generate(FIRST_GENERATION)?;
        let created = store
            .insert_signing_key(&sealed(&candidate, kek)?)
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
    let ring = KeyRing::from_keys(&open_keys(store, keys, kek).await?, token_ttl)?;
    for generation in &ring.retired {
        store
            .delete_signing_key(*generation)
            .await
            .context("while deleting a retired signing key")?;
        tracing::info!(generation, "deleted a retired signing key");
    }
    Ok(ring)
}

/// Adds a new signing key (the next generation), audited. Returns the new `kid`.
pub async fn rotate(
    store: &dyn AuthStore,
    kek: Option<&Kek>,
    audit: &AuditEvent,
) -> anyhow::Result<String> {
    let newest = store
        .signing_keys()
        .await
        .context("while loading signing keys")?
        .iter()
        .map(|k| k.generation)
        .max()
        .unwrap_or(0);
    let key = StoredKey::generate(newest + 1)?;
    if !store
        .add_signing_key(&sealed(&key, kek)?, audit)
        .await
        .context("while storing the new signing key")?
    {
        bail!("another key rotation happened at the same moment; try again");
    }
    tracing::info!(kid = %key.kid, generation = key.generation, "rotated the token signing key");
    Ok(key.kid)
}

/// `key` as it is to be stored (sealed when there is a KEK).
fn sealed(key: &StoredKey, kek: Option<&Kek>) -> anyhow::Result<StoredKey> {
    let pkcs8 = match kek {
        Some(kek) => kek.seal(&key.kid, key.pkcs8.expose_secret())?,
        None => key.pkcs8.expose_secret().to_vec(),
    };
    Ok(StoredKey {
        generation: key.generation,
        kid: key.kid.clone(),
        pkcs8: SecretSlice::from(pkcs8),
        public_key: key.public_key.clone(),
        created_at: key.created_at,
    })
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

    const TTL: chrono::TimeDelta = chrono::TimeDelta::seconds(900);

    #[test]
    fn the_newest_generation_signs_and_older_keys_are_published_until_retired() {
        let old = StoredKey::generate(1).expect("key");
        let new = StoredKey::generate(2).expect("key");
        let old_kid = old.kid.clone();
        let ring = KeyRing::from_keys(&[new, old], TTL).expect("ring");
        assert_eq!(ring.jwks.keys.len(), 2);
        assert_eq!(ring.kid, ring.jwks.keys[0].kid);
        assert!(ring.retired.is_empty());
        // Once the successor has signed for longer than a token lives, the old key is retired.
        let old = StoredKey::generate(1).expect("key");
        let mut new = StoredKey::generate(2).expect("key");
        new.created_at -= TTL + chrono::TimeDelta::seconds(120);
        let ring = KeyRing::from_keys(&[old, new], TTL).expect("ring");
        assert_eq!(ring.jwks.keys.len(), 1);
        assert_eq!(ring.kid, ring.jwks.keys[0].kid);
        assert_ne!(ring.kid, old_kid);
        assert_eq!(ring.retired, vec![1]);
    }

    #[test]
    fn a_mismatched_key_is_refused() {
        let mut key = StoredKey::generate(1).expect("key");
        key.public_key = StoredKey::generate(1).expect("key").public_key;
        assert!(KeyRing::from_keys(&[key], TTL).is_err());
        let mut key = StoredKey::generate(1).expect("key");
        key.kid = "AAAAAAAAAAAAAAAA".to_owned();
        assert!(KeyRing::from_keys(&[key], TTL).is_err());
        assert!(KeyRing::from_keys(&[], TTL).is_err());
        assert!(!format!("{:?}", StoredKey::generate(1).expect("key")).contains("pkcs8"));
    }
}
