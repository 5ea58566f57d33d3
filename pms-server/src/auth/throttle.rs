//! Failed-login throttling that cannot lock out the rightful user, in the auth database (shared by
//! replicas, survives restarts):
//!
//! - failures are counted per (account, client address) and per client address; after the free
//!   ones each further failure doubles the delay (5 s, 10 s, 20 s, … at most the window). A flood
//!   of wrong passwords from one address therefore never delays the owner logging in from another.
//! - failures are counted *after* the password check failed: correct passwords are never refused
//!   for arriving together (24 parallel CI jobs sharing an account all get in).
//! - keys are SHA-256 of the account and address; nothing readable is stored.
//!
//! [`AuditBudget`] bounds the audit rows that unauthenticated requests can cause (throttled
//! logins, unknown accounts, garbage refresh tokens), so a flood cannot fill the disk.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{TimeDelta, Utc};

use crate::auth::store::{AuthStore, ThrottleKey};
use crate::error::StoreError;

/// Limits of a [`LoginThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Free failures per (account, address).
    pub per_account: u32,
    /// Free failures per address.
    pub per_ip: u32,
    /// Failures are forgotten this long after the last one; the longest delay.
    pub window: TimeDelta,
}

/// The keys one login attempt is throttled by.
#[derive(Debug, Clone, Copy)]
pub struct AttemptKeys {
    pair: ThrottleKey,
    address: Option<ThrottleKey>,
}

impl AttemptKeys {
    /// Keys of `account` (normalised, ≤ 254 bytes: checked by the caller) from `address`.
    pub fn new(account: &str, address: Option<&str>) -> AttemptKeys {
        let pair = hash(&["pair", account, address.unwrap_or("")]);
        AttemptKeys {
            pair,
            address: address.map(|a| hash(&["address", a])),
        }
    }

    fn all(&self) -> Vec<ThrottleKey> {
        std::iter::once(self.pair).chain(self.address).collect()
    }
}

/// Length-prefixed parts, so ("ab", "c") and ("a", "bc") differ.
fn hash(parts: &[&str]) -> ThrottleKey {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    ThrottleKey(key)
}

/// Too many failures: retry after this many seconds (never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

/// The failed-login throttle over the auth store.
#[derive(Debug)]
pub struct LoginThrottle {
    limits: Limits,
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> LoginThrottle {
        LoginThrottle { limits }
    }

    /// `Err` while the pair or the address is delayed.
    pub async fn check(
        &self,
        store: &dyn AuthStore,
        keys: &AttemptKeys,
    ) -> Result<Result<(), Throttled>, StoreError> {
        let Some(until) = store.throttle_blocked_until(&keys.all()).await? else {
            return Ok(Ok(()));
        };
        let millis = (until - Utc::now()).num_milliseconds().max(1);
        Ok(Err(Throttled {
            // Rounded up: a client retrying exactly then must not be refused again.
            retry_after_secs: u64::try_from(millis).unwrap_or(1).div_ceil(1000),
        }))
    }

    /// Counts a failed attempt.
    pub async fn failed(
        &self,
        store: &dyn AuthStore,
        keys: &AttemptKeys,
    ) -> Result<(), StoreError> {
        let window = self.limits.window;
        store
            .throttle_failure(&keys.pair, self.limits.per_account, window)
            .await?;
        if let Some(address) = &keys.address {
            store
                .throttle_failure(address, self.limits.per_ip, window)
                .await?;
        }
        Ok(())
    }

    /// A successful login: the pair's failures are forgotten (the address's are not: they may
    /// be guesses at other accounts).
    pub async fn succeeded(
        &self,
        store: &dyn AuthStore,
        keys: &AttemptKeys,
    ) -> Result<(), StoreError> {
        store.throttle_clear(&keys.pair).await
    }
}

/// A token bucket for audit rows that unauthenticated requests cause: at most `burst` at once and
/// `per_sec` on average, per process. Rows over budget are counted in
/// `auth_audit_suppressed_total` instead.
#[derive(Debug)]
pub struct AuditBudget {
    per_sec: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl AuditBudget {
    pub fn new(per_sec: f64, burst: f64) -> AuditBudget {
        AuditBudget {
            per_sec,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes one row from the budget; `false` (and counted) when it is spent.
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        // The state is two numbers updated together; a poisoned lock still holds valid ones.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = *state;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.per_sec)
            .min(self.burst);
        if refilled >= 1.0 {
            *state = (refilled - 1.0, now);
            true
        } else {
            *state = (refilled, now);
            metrics::counter!("auth_audit_suppressed_total").increment(1);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::store::testing::sqlite_store;

    fn limits() -> Limits {
        Limits {
            per_account: 3,
            per_ip: 5,
            window: TimeDelta::seconds(900),
        }
    }

    #[tokio::test]
    async fn failures_delay_the_pair_and_the_address_but_not_other_addresses() {
        let (store, _dir) = sqlite_store().await;
        let throttle = LoginThrottle::new(limits());
        let attacker = AttemptKeys::new("admin@x.org", Some("10.0.0.1"));
        for _ in 0..3 {
            assert_eq!(
                throttle.check(&*store, &attacker).await.expect("db"),
                Ok(())
            );
            throttle.failed(&*store, &attacker).await.expect("db");
        }
        let refused = throttle
            .check(&*store, &attacker)
            .await
            .expect("db")
            .expect_err("the pair is delayed after its free failures");
        assert!((1..=5).contains(&refused.retry_after_secs), "{refused:?}");
        // The owner, from another address, is not affected.
        let owner = AttemptKeys::new("admin@x.org", Some("10.0.0.2"));
        assert_eq!(throttle.check(&*store, &owner).await.expect("db"), Ok(()));
        // More failures from the attacker's address (other accounts) delay the address.
        let other = AttemptKeys::new("someone@x.org", Some("10.0.0.1"));
        for _ in 0..2 {
            throttle.failed(&*store, &other).await.expect("db");
        }
        assert!(throttle.check(&*store, &other).await.expect("db").is_err());
        assert_eq!(throttle.check(&*store, &owner).await.expect("db"), Ok(()));
        // Success clears the pair.
        throttle.succeeded(&*store, &attacker).await.expect("db");
        let pair_only = AttemptKeys::new("admin@x.org", None);
        throttle.failed(&*store, &pair_only).await.expect("db");
        assert_eq!(
            throttle.check(&*store, &pair_only).await.expect("db"),
            Ok(())
        );
    }

    #[test]
    fn keys_are_hashes_and_separate_their_parts() {
        let a = AttemptKeys::new("ab", Some("c"));
        let b = AttemptKeys::new("a", Some("bc"));
        assert_ne!(a.pair, b.pair);
        assert_ne!(a.address, b.address);
        assert_eq!(format!("{:?}", a.pair), "ThrottleKey(..)");
        assert_eq!(AttemptKeys::new("a", None).all().len(), 1);
    }

    #[test]
    fn the_audit_budget_refills_at_its_rate() {
        let budget = AuditBudget::new(2.0, 3.0);
        let start = Instant::now();
        assert!((0..3).all(|_| budget.allow_at(start)));
        assert!(!budget.allow_at(start));
        assert!(budget.allow_at(start + Duration::from_millis(500)));
        assert!(!budget.allow_at(start + Duration::from_millis(500)));
        assert!((0..3).all(|_| budget.allow_at(start + Duration::from_secs(10))));
        assert!(!budget.allow_at(start + Duration::from_secs(10)));
    }
}
