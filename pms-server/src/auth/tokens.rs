//! Token minting: EdDSA access tokens (JWT with `kid` and `typ: JWT`, claims exactly
//! [`authn::Claims`](crate::authn::Claims)) and opaque refresh tokens (32 random bytes, base64url;
//! only their SHA-256 is ever stored).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pms_proto::rest::Role;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

use crate::authn::{Claims, TokenClaims};

/// Refresh tokens longer than this cannot be ours; they are refused without hashing.
const REFRESH_TOKEN_MAX_LEN: usize = 256;

/// Signs access tokens.
pub struct AccessTokens {
    /// The current signing key and its `kid`; replaced by a key rotation.
    signer: std::sync::RwLock<(String, EncodingKey)>,
    issuer: String,
    audience: String,
    ttl_secs: u64,
}

/// Whom an access token is for.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    /// The refresh-token family the token belongs to (`sid`).
    pub session_id: Uuid,
    /// The user's token epoch (`epoch`).
    pub epoch: i64,
}

impl AccessTokens {
    pub fn new(kid: String, key: EncodingKey, issuer: &str, audience: &str, ttl_secs: u64) -> Self {
        AccessTokens {
            signer: std::sync::RwLock::new((kid, key)),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs,
        }
    }

    /// Signs with `key` (`kid`) from now on.
    pub fn set_signer(&self, kid: String, key: EncodingKey) {
        *self.signer.write().unwrap_or_else(|p| p.into_inner()) = (kid, key);
    }

    /// `kid` of the current signing key.
    pub fn kid(&self) -> String {
        self.signer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Lifetime of issued tokens, in seconds (`expiresIn`).
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// A token for `subject`, valid from now.
    pub fn issue(&self, subject: &Subject) -> anyhow::Result<String> {
        self.issue_at(subject, Utc::now())
    }

    /// A token for `subject` issued at `iat`.
    pub fn issue_at(&self, subject: &Subject, iat: DateTime<Utc>) -> anyhow::Result<String> {
        let iat = iat.timestamp();
        let exp = iat + i64::try_from(self.ttl_secs)?;
        let claims = TokenClaims {
            claims: Claims {
                sub: subject.id,
                email: subject.email.clone(),
                role: subject.role,
                iss: self.issuer.clone(),
                aud: self.audience.clone(),
                iat,
                exp,
                jti: Uuid::new_v4(),
            },
            sid: Some(subject.session_id),
            epoch: subject.epoch,
        };
        // A poisoned lock still holds a whole (kid, key) pair: writes replace it in one step.
        let signer = self.signer.read().unwrap_or_else(|p| p.into_inner());
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signer.0.clone());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, &claims, &signer.1)
            .map_err(|e| anyhow::anyhow!("cannot sign access token: {e}"))
    }
}

/// The SHA-256 of a refresh token: what the database stores and looks up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RefreshTokenHash(pub [u8; 32]);

impl std::fmt::Debug for RefreshTokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshTokenHash(..)")
    }
}

impl RefreshTokenHash {
    /// Hashes a presented token; `None` if it cannot possibly be one of ours.
    pub fn of(token: &str) -> Option<RefreshTokenHash> {
        if token.is_empty() || token.len() > REFRESH_TOKEN_MAX_LEN {
            return None;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.as_ref());
        Some(RefreshTokenHash(hash))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A new refresh token: the secret for the client and its hash for the database.
pub struct NewRefreshToken {
    pub token: String,
    pub hash: RefreshTokenHash,
}

impl NewRefreshToken {
    pub fn generate() -> anyhow::Result<NewRefreshToken> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = RefreshTokenHash::of(&token)
            .ok_or_else(|| anyhow::anyhow!("generated refresh token is out of bounds"))?;
        Ok(NewRefreshToken { token, hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{KeyRing, StoredKey};
    use crate::authn::{TokenError, Verifier};

    fn issuer_and_verifier(audience: &str) -> (AccessTokens, Verifier) {
        let ring = KeyRing::from_keys(
            &[StoredKey::generate(1).expect("key")],
            chrono::TimeDelta::seconds(900),
        )
        .expect("ring");
        let tokens = AccessTokens::new(ring.kid.clone(), ring.encoding, "pms-auth", "pms-api", 900);
        let verifier = Verifier::local(&ring.jwks, "pms-auth", audience).expect("verifier");
        (tokens, verifier)
    }

    fn subject() -> Subject {
        Subject {
            id: Uuid::new_v4(),
            email: "jane@example.org".to_owned(),
            role: Role::Clinician,
            session_id: Uuid::new_v4(),
            epoch: 3,
        }
    }

    #[tokio::test]
    async fn issued_tokens_verify_with_the_expected_claims() {
        let (tokens, verifier) = issuer_and_verifier("pms-api");
        let subject = subject();
        let token = tokens.issue(&subject).expect("token");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(tokens.kid().as_str()));
        let verified = verifier.verify_token(&token).await.expect("valid");
        assert_eq!(verified.sid, Some(subject.session_id));
        assert_eq!(verified.epoch, 3);
        let claims = verified.claims;
        assert_eq!(claims.sub, subject.id);
        assert_eq!(claims.email, subject.email);
        assert_eq!(claims.role, Role::Clinician);
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            ("pms-auth", "pms-api")
        );
        assert_eq!(claims.exp - claims.iat, 900);
        assert!((claims.iat - Utc::now().timestamp()).abs() <= 5);
    }

    #[tokio::test]
    async fn expired_tokens_are_refused() {
        let (tokens, verifier) = issuer_and_verifier("pms-api");
        let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
        let token = tokens.issue_at(&subject(), an_hour_ago).expect("token");
        match verifier.verify(&token).await {
            Err(TokenError::Invalid(e)) => {
                assert_eq!(e.kind(), &jsonwebtoken::errors::ErrorKind::ExpiredSignature)
            }
            other => panic!("expected an expired-signature error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn tokens_for_another_audience_are_refused() {
        let (tokens, verifier) = issuer_and_verifier("another-api");
        let token = tokens.issue(&subject()).expect("token");
        match verifier.verify(&token).await {
            Err(TokenError::Invalid(e)) => {
                assert_eq!(e.kind(), &jsonwebtoken::errors::ErrorKind::InvalidAudience)
            }
            other => panic!("expected an invalid-audience error, got {other:?}"),
        }
    }

    #[test]
    fn refresh_tokens_are_random_base64url_and_hashed_with_sha256() {
        let a = NewRefreshToken::generate().expect("token");
        let b = NewRefreshToken::generate().expect("token");
        assert_eq!(a.token.len(), 43, "32 bytes, base64url without padding");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&a.token).expect("base64url").len(),
            32
        );
        assert_ne!(a.token, b.token);
        assert_ne!(a.hash, b.hash);
        assert_eq!(RefreshTokenHash::of(&a.token), Some(a.hash));
        // SHA-256("abc"), FIPS 180-2 test vector.
        let abc = RefreshTokenHash::of("abc").expect("hash");
        assert_eq!(
            abc.0[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "sha-256 prefix of \"abc\""
        );
        assert_eq!(RefreshTokenHash::of(""), None);
        assert_eq!(RefreshTokenHash::of(&"a".repeat(257)), None);
        assert_eq!(format!("{:?}", a.hash), "RefreshTokenHash(..)");
    }
}
