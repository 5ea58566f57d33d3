//! Failed-login throttling, in memory: at most N failures per account (lowercased email) and M
//! per client IP within a sliding window; past that, 429 with the seconds until the window frees.
//!
//! An attempt is *counted before* the password is checked ([`LoginThrottle::attempt`] checks and
//! records atomically), so a burst of parallel guesses cannot slip through between check and
//! record; a successful login then takes its attempt back ([`Attempt::succeeded`]) and clears the
//! account's counter. Refused (throttled) attempts are not counted, so an attacker hammering an
//! account cannot extend its lock-out beyond one window.
//!
//! Per process: replicas of the auth service throttle independently (documented limitation).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked per map before expired entries are pruned (and, if still full, the stalest key is
/// evicted): bounds memory under a flood of made-up account names.
const MAX_KEYS: usize = 100_000;

/// Limits of a [`LoginThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: u32,
    pub per_ip: u32,
    pub window: Duration,
}

/// The per-account and per-IP failure windows.
#[derive(Debug)]
pub struct LoginThrottle {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    accounts: Windows,
    ips: Windows,
}

/// Failure instants per key, oldest first.
#[derive(Debug, Default)]
struct Windows(HashMap<String, VecDeque<Instant>>);

/// Too many failures: retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// `Retry-After` in whole seconds, rounded up (never 0: that would invite an immediate retry).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        if self.retry_after.subsec_nanos() > 0 || secs == 0 {
            secs + 1
        } else {
            secs
        }
    }
}

/// A counted login attempt. Dropping it leaves it counted as a failure.
#[must_use = "call `succeeded()` when the login succeeds"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    account: String,
    ip: Option<String>,
    at: Instant,
}

impl Attempt<'_> {
    /// The login succeeded: clears the account's failures and takes back the IP's attempt.
    pub fn succeeded(self) {
        let mut state = self.throttle.lock();
        state.accounts.0.remove(&self.account);
        if let Some(ip) = &self.ip {
            state.ips.forget(ip, self.at);
        }
    }
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> LoginThrottle {
        LoginThrottle {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// Refuses the attempt if the account or the IP is over its limit; otherwise counts it.
    pub fn attempt(&self, account: &str, ip: Option<&str>) -> Result<Attempt<'_>, Throttled> {
        self.attempt_at(account, ip, Instant::now())
    }

    /// [`LoginThrottle::attempt`] with an explicit clock.
    pub fn attempt_at(
        &self,
        account: &str,
        ip: Option<&str>,
        now: Instant,
    ) -> Result<Attempt<'_>, Throttled> {
        let window = self.limits.window;
        let mut state = self.lock();
        let blocked_account =
            state
                .accounts
                .blocked_for(account, self.limits.per_account, window, now);
        let blocked_ip =
            ip.and_then(|ip| state.ips.blocked_for(ip, self.limits.per_ip, window, now));
        if let Some(retry_after) = blocked_account.max(blocked_ip) {
            return Err(Throttled { retry_after });
        }
        state.accounts.record(account, window, now);
        if let Some(ip) = ip {
            state.ips.record(ip, window, now);
        }
        Ok(Attempt {
            throttle: self,
            account: account.to_owned(),
            ip: ip.map(str::to_owned),
            at: now,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps inconsistent in a way that
        // matters (worst case: one attempt more or less is counted), so recover from poisoning.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Windows {
    /// `Some(wait)` if `key` has `limit` failures within `window` before `now`.
    fn blocked_for(
        &mut self,
        key: &str,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Option<Duration> {
        let failures = self.0.get_mut(key)?;
        expire(failures, window, now);
        let limit = limit as usize;
        if failures.len() < limit {
            return None;
        }
        // The window frees when enough of the oldest failures expire to fall under the limit.
        let freeing = failures[failures.len() - limit];
        Some((freeing + window).saturating_duration_since(now))
    }

    fn record(&mut self, key: &str, window: Duration, now: Instant) {
        if !self.0.contains_key(key) && self.0.len() >= MAX_KEYS {
            self.make_room(window, now);
        }
        self.0.entry(key.to_owned()).or_default().push_back(now);
    }

    fn forget(&mut self, key: &str, at: Instant) {
        if let Some(failures) = self.0.get_mut(key) {
            if let Some(pos) = failures.iter().rposition(|t| *t == at) {
                failures.remove(pos);
            }
            if failures.is_empty() {
                self.0.remove(key);
            }
        }
    }

    fn make_room(&mut self, window: Duration, now: Instant) {
        self.0.retain(|_, failures| {
            expire(failures, window, now);
            !failures.is_empty()
        });
        if self.0.len() >= MAX_KEYS {
            let stalest = self
                .0
                .iter()
                .min_by_key(|(_, failures)| failures.back().copied())
                .map(|(key, _)| key.clone());
            if let Some(key) = stalest {
                tracing::warn!("login throttle is full; evicting the stalest entry");
                self.0.remove(&key);
            }
        }
    }
}

fn expire(failures: &mut VecDeque<Instant>, window: Duration, now: Instant) {
    while failures
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        failures.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);

    fn throttle(per_account: u32, per_ip: u32) -> LoginThrottle {
        LoginThrottle::new(Limits {
            per_account,
            per_ip,
            window: WINDOW,
        })
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn an_account_is_throttled_after_its_limit_until_the_window_frees() {
        let t = throttle(3, 100);
        let start = Instant::now();
        for i in 0..3 {
            drop(
                t.attempt_at("jane@x.org", Some("10.0.0.1"), start + secs(i * 10))
                    .expect("allowed"),
            );
        }
        let refused = t
            .attempt_at("jane@x.org", Some("10.0.0.2"), start + secs(100))
            .err()
            .expect("fourth attempt refused");
        // The oldest failure (at 0 s) leaves the window at 900 s.
        assert_eq!(refused.retry_after, secs(800));
        assert_eq!(refused.retry_after_secs(), 800);
        // Other accounts are unaffected.
        assert!(
            t.attempt_at("john@x.org", Some("10.0.0.1"), start + secs(100))
                .is_ok()
        );
        // Refused attempts are not counted: once the first failure expires, one attempt is allowed.
        assert!(t.attempt_at("jane@x.org", None, start + secs(900)).is_ok());
        assert!(t.attempt_at("jane@x.org", None, start + secs(901)).is_err());
    }

    #[test]
    fn an_ip_is_throttled_across_accounts() {
        let t = throttle(100, 2);
        let start = Instant::now();
        drop(
            t.attempt_at("a@x.org", Some("10.0.0.1"), start)
                .expect("allowed"),
        );
        drop(
            t.attempt_at("b@x.org", Some("10.0.0.1"), start + secs(1))
                .expect("allowed"),
        );
        let refused = t
            .attempt_at("c@x.org", Some("10.0.0.1"), start + secs(2))
            .err()
            .expect("ip over its limit");
        assert_eq!(refused.retry_after, secs(898));
        assert!(
            t.attempt_at("c@x.org", Some("10.0.0.9"), start + secs(2))
                .is_ok()
        );
        assert!(
            t.attempt_at("c@x.org", None, start + secs(3)).is_ok(),
            "no ip, no ip limit"
        );
    }

    #[test]
    fn the_longer_wait_wins_when_both_limits_are_hit() {
        let t = throttle(1, 1);
        let start = Instant::now();
        drop(
            t.attempt_at("a@x.org", Some("10.0.0.1"), start)
                .expect("allowed"),
        );
        drop(
            t.attempt_at("b@x.org", Some("10.0.0.2"), start + secs(50))
                .expect("allowed"),
        );
        let refused = t
            .attempt_at("b@x.org", Some("10.0.0.1"), start + secs(60))
            .err()
            .expect("both over");
        assert_eq!(
            refused.retry_after,
            secs(890),
            "account b frees at 950 s, ip at 900 s"
        );
    }

    #[test]
    fn success_clears_the_account_and_refunds_the_ip() {
        let t = throttle(2, 2);
        let start = Instant::now();
        drop(
            t.attempt_at("a@x.org", Some("10.0.0.1"), start)
                .expect("allowed"),
        );
        t.attempt_at("a@x.org", Some("10.0.0.1"), start + secs(1))
            .expect("allowed")
            .succeeded();
        // The account is clear; the ip holds only the one real failure.
        drop(
            t.attempt_at("a@x.org", Some("10.0.0.1"), start + secs(2))
                .expect("allowed"),
        );
        assert!(
            t.attempt_at("a@x.org", Some("10.0.0.1"), start + secs(3))
                .is_err()
        );
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let r = |d| Throttled { retry_after: d }.retry_after_secs();
        assert_eq!(r(Duration::from_millis(1500)), 2);
        assert_eq!(r(Duration::ZERO), 1);
        assert_eq!(r(secs(7)), 7);
    }

    #[test]
    fn memory_is_bounded() {
        let t = throttle(5, u32::MAX);
        let start = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            drop(
                t.attempt_at(&format!("user{i}@x.org"), None, start)
                    .expect("allowed"),
            );
        }
        let state = t.lock();
        assert!(state.accounts.0.len() <= MAX_KEYS);
        assert!(
            state
                .accounts
                .0
                .contains_key(&format!("user{}@x.org", MAX_KEYS + 9))
        );
    }
}
