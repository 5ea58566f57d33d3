//! The key-encryption key (KEK): when configured (`auth.key_encryption_key`, base64 of 32 random
//! bytes, or `auth.key_encryption_key_file` holding the same), private signing keys are stored
//! sealed with AES-256-GCM, so a copy of the auth database alone cannot mint tokens.
//!
//! Sealed form: `PMSK1` ‖ 96-bit random nonce ‖ ciphertext ‖ tag, with the key's `kid` as
//! associated data (a sealed key moved to another row does not open). Plaintext PKCS#8 starts
//! with a DER SEQUENCE byte (0x30), so the two forms cannot be confused.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::ExposeSecret;

use crate::config::AuthSettings;

const MAGIC: &[u8] = b"PMSK1";

/// The key-encryption key.
pub struct Kek(LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

/// Whether stored key bytes are sealed (else plaintext PKCS#8).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC)
}

impl Kek {
    /// The configured KEK, if any (the file is read here; its content is trimmed).
    pub fn from_settings(auth: &AuthSettings) -> anyhow::Result<Option<Kek>> {
        match (&auth.key_encryption_key, &auth.key_encryption_key_file) {
            (Some(_), Some(_)) => bail!(
                "invalid configuration: set `auth.key_encryption_key` or \
                 `auth.key_encryption_key_file`, not both"
            ),
            (Some(key), None) => Kek::parse(key.expose_secret()).map(Some).map_err(|e| {
                anyhow::anyhow!("invalid configuration: `auth.key_encryption_key` {e}")
            }),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "invalid configuration: cannot read `auth.key_encryption_key_file` {}",
                        path.display()
                    )
                })?;
                Kek::parse(text.trim()).map(Some).map_err(|e| {
                    anyhow::anyhow!(
                        "invalid configuration: `auth.key_encryption_key_file` {} {e}",
                        path.display()
                    )
                })
            }
            (None, None) => Ok(None),
        }
    }

    /// A KEK from base64 (standard or URL-safe) of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Kek, String> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| {
                "must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`)".to_owned()
            })?;
        if bytes.len() != 32 {
            return Err(format!(
                "must be 32 bytes once base64-decoded (got {}); e.g. `openssl rand -base64 32`",
                bytes.len()
            ));
        }
        let key =
            UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "is not a valid AES-256 key")?;
        Ok(Kek(LessSafeKey::new(key)))
    }

    /// Seals a private key of `kid`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        let mut sealed = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(kid)),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("cannot encrypt signing key {kid}"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a sealed private key of `kid`; fails on a wrong KEK or tampered bytes.
    pub fn open(&self, kid: &str, stored: &[u8]) -> anyhow::Result<Vec<u8>> {
        let body = stored
            .strip_prefix(MAGIC)
            .filter(|b| b.len() > NONCE_LEN)
            .with_context(|| format!("signing key {kid} is not in the sealed format"))?;
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| anyhow::anyhow!("signing key {kid}: bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad(kid)), &mut buffer)
            .map_err(|_| {
                anyhow::anyhow!(
                    "cannot decrypt signing key {kid}: the configured key-encryption key \
                     (`auth.key_encryption_key` / `_file`) is not the one it was encrypted with"
                )
            })?;
        Ok(plain.to_vec())
    }
}

fn aad(kid: &str) -> Vec<u8> {
    format!("pms-signing-key:{kid}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let kek = Kek::parse(KEY_A).expect("kek");
        let sealed = kek.seal("kid-1", b"\x30secret pkcs8").expect("sealed");
        assert!(is_sealed(&sealed));
        assert!(!is_sealed(b"\x30secret pkcs8"));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            kek.open("kid-1", &sealed).expect("opens"),
            b"\x30secret pkcs8"
        );
        assert!(kek.open("kid-2", &sealed).is_err(), "bound to its kid");
        let other = Kek::parse(&STANDARD.encode([7u8; 32])).expect("kek");
        let err = other.open("kid-1", &sealed).expect_err("wrong kek");
        assert!(format!("{err}").contains("key-encryption key"));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(kek.open("kid-1", &tampered).is_err());
    }

    #[test]
    fn only_32_byte_base64_keys_are_accepted() {
        assert!(Kek::parse(KEY_A).is_ok());
        assert!(Kek::parse(&URL_SAFE_NO_PAD.encode([1u8; 32])).is_ok());
        let short = Kek::parse(&STANDARD.encode([1u8; 16])).expect_err("short");
        assert!(short.contains("32 bytes"), "{short}");
        assert!(Kek::parse("not base64 !!").is_err());
        assert_eq!(format!("{:?}", Kek::parse(KEY_A).expect("kek")), "Kek(..)");
    }
}
