//! Verified tokens, remembered until they expire (issue 10). A client sends the same access
//! token with every request for up to 15 minutes, and the gateway and the service each verified
//! its EdDSA signature on every one of them. Verification is a pure function of the token and the
//! key set, so its result is kept, keyed by the token itself (compared whole: no digest to
//! collide, and no SHA-256 of ~600 bytes twice per request, which cost more than the lookup), and
//! dropped whenever the key set changes (rotation, retirement). Revocation is not cached: it is
//! checked on every request.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Utc;

use super::TokenClaims;

/// Entries kept at most (about 1 KB each with the token): a full cache first drops the expired
/// entries, then everything.
const MAX_ENTRIES: usize = 4096;

/// Token → its verified claims.
#[derive(Default)]
pub(super) struct VerifiedTokens {
    entries: Mutex<HashMap<Box<str>, TokenClaims>>,
}

impl VerifiedTokens {
    /// The claims of `token` if it verified earlier and has not expired (the same `leeway`, in
    /// seconds, as signature verification allows).
    pub(super) fn get(&self, token: &str, leeway: u64) -> Option<TokenClaims> {
        let entries = self.lock();
        let claims = entries.get(token)?;
        let leeway = i64::try_from(leeway).unwrap_or(0);
        (claims.claims.exp.saturating_add(leeway) >= Utc::now().timestamp()).then(|| claims.clone())
    }

    /// Remembers a token that just verified.
    pub(super) fn insert(&self, token: &str, claims: &TokenClaims) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let now = Utc::now().timestamp();
            entries.retain(|_, c| c.claims.exp >= now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(token.into(), claims.clone());
    }

    /// Forgets everything (the key set changed).
    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, TokenClaims>> {
        // A cache: a poisoned lock loses nothing that verification cannot recompute.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::Claims;
    use pms_proto::rest::Role;
    use uuid::Uuid;

    fn claims(exp: i64) -> TokenClaims {
        TokenClaims {
            claims: Claims {
                sub: Uuid::new_v4(),
                email: "a@b.test".into(),
                role: Role::Viewer,
                iss: "i".into(),
                aud: "a".into(),
                iat: 0,
                exp,
                jti: Uuid::new_v4(),
            },
            sid: None,
            epoch: 0,
        }
    }

    #[test]
    fn entries_live_until_the_token_expires_and_die_with_the_key_set() {
        let cache = VerifiedTokens::default();
        let now = Utc::now().timestamp();
        cache.insert("live", &claims(now + 60));
        cache.insert("expired", &claims(now - 60));
        cache.insert("in-leeway", &claims(now - 2));
        assert!(cache.get("live", 5).is_some());
        assert!(cache.get("other", 5).is_none());
        assert!(cache.get("expired", 5).is_none());
        assert!(cache.get("in-leeway", 5).is_some());
        assert!(cache.get("in-leeway", 0).is_none());
        cache.clear();
        assert!(cache.get("live", 5).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedTokens::default();
        let now = Utc::now().timestamp();
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(&format!("t{i}"), &claims(now + 60));
        }
        assert!(cache.lock().len() <= MAX_ENTRIES);
        assert!(cache.get(&format!("t{}", MAX_ENTRIES + 9), 5).is_some());
    }
}
