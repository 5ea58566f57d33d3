//! Sealed listing cursors: a keyset position (which may hold a patient's name) is encrypted and
//! authenticated (ChaCha20-Poly1305, `ring`) before it goes into a `Link` URL, so proxies and
//! browser histories that log URLs learn nothing, and a cursor the server did not make — edited,
//! truncated, from another installation — is refused.
//!
//! The key lives in the patient database (`cursor_key`, created by the first replica to start),
//! so every replica opens every other's cursors and no configuration is needed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of a cursor key.
pub const KEY_LEN: usize = 32;

/// Seals and opens cursors.
pub struct CursorKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey([redacted])")
    }
}

impl CursorKey {
    /// A key from its stored bytes; `None` unless exactly [`KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<CursorKey> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        Some(CursorKey {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Fresh random key bytes (offered to the store on first start).
    pub fn generate_bytes() -> anyhow::Result<[u8; KEY_LEN]> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        Ok(bytes)
    }

    /// `base64url(nonce ‖ ciphertext ‖ tag)` of `plain`. `None` only if the system random
    /// generator fails.
    pub fn seal(&self, plain: &[u8]) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// The plain bytes of a cursor this key sealed; `None` for anything else.
    pub fn open(&self, cursor: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> CursorKey {
        CursorKey::from_bytes(&[byte; KEY_LEN]).expect("key")
    }

    #[test]
    fn cursors_round_trip_and_hide_their_content() {
        let k = key(1);
        let plain = br#"{"o":"name","s":2,"n":"aaron privateperson"}"#;
        let sealed = k.seal(plain).expect("sealed");
        let raw = URL_SAFE_NO_PAD.decode(&sealed).expect("base64");
        assert!(
            !raw.windows(5).any(|w| w == b"aaron"),
            "the name is not readable"
        );
        assert_eq!(k.open(&sealed).expect("opens"), plain);
        assert_ne!(k.seal(plain), Some(sealed), "fresh nonce every time");
    }

    #[test]
    fn tampered_and_foreign_cursors_do_not_open() {
        let k = key(1);
        let sealed = k.seal(b"{\"o\":\"createdAt\",\"s\":3}").expect("sealed");
        assert_eq!(key(2).open(&sealed), None, "another key");
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).expect("base64");
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(k.open(&URL_SAFE_NO_PAD.encode(raw)), None, "a flipped bit");
        for junk in ["", "e30", "not base64!", &sealed[..sealed.len() - 4]] {
            assert_eq!(k.open(junk), None, "{junk:?}");
        }
        assert!(CursorKey::from_bytes(&[0; 16]).is_none());
    }
}
