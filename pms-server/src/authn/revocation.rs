//! Revocation of access tokens before they expire (DESIGN §6): disabling a user, changing their
//! role or password bumps the user's *token epoch*; logout and refresh-token reuse revoke a
//! *session* (the refresh-token family, claim `sid`). Access tokens carry both (`epoch`, `sid`).
//!
//! The auth service keeps active revocations in its database and serves them at
//! `GET /revocations?since=<time>` ([`RevocationFeed`]). Every remote [`Verifier`](super::Verifier)
//! polls that feed every [`POLL_INTERVAL`] in a background task and keeps a [`Denylist`]; a
//! restarted verifier starts from the full active list. The auth service itself checks its
//! database on every request ([`RevocationCheck`]), so `/validate` and `/me` refuse at once.
//!
//! Entries live as long as a token issued before them can (the maximum access-token lifetime plus
//! margin), then they are dropped on both sides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How often verifiers poll the feed (revocation takes effect within about twice this).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Each poll asks again for this much before the previous poll's server time: a revocation
/// committed a little after the time it carries is still seen (entries are idempotent).
const OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// What a revocation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevocationKind {
    /// Every token of user `id` with an epoch below `epoch`.
    User,
    /// Every token of session (`sid`) `id`.
    Session,
}

/// One active revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    pub kind: RevocationKind,
    pub id: Uuid,
    /// For `user`: tokens with a lower epoch are revoked.
    #[serde(default)]
    pub epoch: i64,
    /// When every token it can apply to has expired.
    pub expires_at: DateTime<Utc>,
}

/// `GET /revocations` of the auth service.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevocationFeed {
    /// The server's time at the read; ask `since` a little before it next time.
    pub now: DateTime<Utc>,
    pub revocations: Vec<Revocation>,
    /// `kid`s of the published signing keys: a verifier fetches the JWKS as soon as one it does
    /// not know appears (a key rotation), without waiting for a token to carry it.
    #[serde(default)]
    pub kids: Vec<String>,
}

/// The session-related claims of a token, as the revocation checks need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSession {
    pub user_id: Uuid,
    /// `sid`: absent in tokens minted outside a session (tests, older versions).
    pub session_id: Option<Uuid>,
    /// `epoch`: 0 when absent.
    pub epoch: i64,
}

/// An authoritative check (the auth service's database).
#[async_trait]
pub trait RevocationCheck: Send + Sync {
    /// `Ok(true)` if the token must be refused.
    async fn is_revoked(&self, token: &TokenSession) -> Result<bool, String>;
}

/// Active revocations known to a verifier.
#[derive(Debug, Default)]
pub struct Denylist {
    users: HashMap<Uuid, (i64, DateTime<Utc>)>,
    sessions: HashMap<Uuid, DateTime<Utc>>,
}

impl Denylist {
    /// Adds entries (idempotent; a higher epoch wins) and drops expired ones.
    pub fn merge(&mut self, entries: &[Revocation], now: DateTime<Utc>) {
        for entry in entries {
            match entry.kind {
                RevocationKind::User => {
                    let slot = self
                        .users
                        .entry(entry.id)
                        .or_insert((entry.epoch, entry.expires_at));
                    if entry.epoch >= slot.0 {
                        *slot = (entry.epoch, entry.expires_at.max(slot.1));
                    }
                }
                RevocationKind::Session => {
                    let until = self.sessions.entry(entry.id).or_insert(entry.expires_at);
                    *until = (*until).max(entry.expires_at);
                }
            }
        }
        self.users.retain(|_, (_, until)| *until > now);
        self.sessions.retain(|_, until| *until > now);
    }

    /// Whether a token with these claims is revoked.
    pub fn denies(&self, token: &TokenSession) -> bool {
        let by_user = self
            .users
            .get(&token.user_id)
            .is_some_and(|(epoch, _)| token.epoch < *epoch);
        let by_session = token
            .session_id
            .is_some_and(|sid| self.sessions.contains_key(&sid));
        by_user || by_session
    }
}

/// A denylist kept current by polling the auth service's feed.
pub struct FeedFollower {
    url: String,
    http: reqwest::Client,
    state: Mutex<FollowerState>,
    started: tokio::sync::OnceCell<()>,
}

#[derive(Default)]
struct FollowerState {
    denylist: Denylist,
    /// Server time of the last successful poll.
    last: Option<DateTime<Utc>>,
    /// Published `kid`s as of the last poll.
    kids: std::collections::HashSet<String>,
    failing: bool,
}

impl FeedFollower {
    /// Follows `{auth_url}/revocations`.
    pub fn new(auth_url: &str, http: reqwest::Client) -> Arc<FeedFollower> {
        Arc::new(FeedFollower {
            url: format!("{}/revocations", auth_url.trim_end_matches('/')),
            http,
            state: Mutex::new(FollowerState::default()),
            started: tokio::sync::OnceCell::new(),
        })
    }

    /// On first use: polls once (so a fresh verifier knows every active revocation before it
    /// accepts a token) and starts the polling task, which stops when the follower is dropped.
    pub async fn ensure_started(self: &Arc<Self>) {
        self.started
            .get_or_init(|| async {
                if let Err(reason) = self.poll().await {
                    self.lock().failing = true;
                    tracing::warn!(%reason, "cannot read the revocation feed of auth yet");
                }
                tokio::spawn(follow(Arc::downgrade(self)));
            })
            .await;
    }

    /// Whether the token is revoked, as far as this verifier knows.
    pub fn denies(&self, token: &TokenSession) -> bool {
        self.lock().denylist.denies(token)
    }

    /// One poll: fetches entries since the last poll (all active ones the first time).
    pub async fn poll(&self) -> Result<(), String> {
        let since = self.lock().last.map(|t| t - OVERLAP);
        let mut request = self.http.get(&self.url);
        if let Some(since) = since {
            request = request.query(&[("since", since.to_rfc3339())]);
        }
        let feed: RevocationFeed = async {
            request
                .send()
                .await?
                .error_for_status()?
                .json::<RevocationFeed>()
                .await
        }
        .await
        .map_err(|e| e.without_url().to_string())?;
        let mut state = self.lock();
        state.denylist.merge(&feed.revocations, Utc::now());
        state.last = Some(feed.now);
        state.kids = feed.kids.into_iter().collect();
        Ok(())
    }

    /// Whether the auth service announced `kid` as published.
    pub fn announces(&self, kid: &str) -> bool {
        self.lock().kids.contains(kid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FollowerState> {
        // The state is a cache rebuilt by the next poll; a poisoned lock loses nothing.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn follow(follower: Weak<FeedFollower>) {
    loop {
        tokio::time::sleep(POLL_INTERVAL).await;
        let Some(this) = follower.upgrade() else {
            return;
        };
        let result = this.poll().await;
        {
            let mut state = this.lock();
            match &result {
                Ok(()) if state.failing => {
                    state.failing = false;
                    tracing::info!("revocation feed reachable again");
                }
                Err(reason) if !state.failing => {
                    state.failing = true;
                    tracing::warn!(%reason, "cannot poll the revocation feed of auth; revoked tokens are refused only once it is back");
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn later(secs: i64) -> DateTime<Utc> {
        Utc::now() + chrono::TimeDelta::seconds(secs)
    }

    #[test]
    fn the_denylist_refuses_older_epochs_and_revoked_sessions_until_they_expire() {
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let token = |epoch, session_id| TokenSession {
            user_id: user,
            session_id,
            epoch,
        };
        let mut list = Denylist::default();
        assert!(!list.denies(&token(0, Some(sid))));
        list.merge(
            &[Revocation {
                kind: RevocationKind::User,
                id: user,
                epoch: 2,
                expires_at: later(60),
            }],
            Utc::now(),
        );
        assert!(list.denies(&token(1, None)));
        assert!(
            !list.denies(&token(2, None)),
            "tokens issued after the bump"
        );
        // An older entry seen again (overlapping polls) does not lower the epoch.
        list.merge(
            &[Revocation {
                kind: RevocationKind::User,
                id: user,
                epoch: 1,
                expires_at: later(60),
            }],
            Utc::now(),
        );
        assert!(list.denies(&token(1, None)));
        list.merge(
            &[Revocation {
                kind: RevocationKind::Session,
                id: sid,
                epoch: 0,
                expires_at: later(60),
            }],
            Utc::now(),
        );
        assert!(list.denies(&token(5, Some(sid))));
        assert!(!list.denies(&token(5, Some(Uuid::new_v4()))));
        // Expired entries are dropped.
        list.merge(&[], later(120));
        assert!(!list.denies(&token(0, Some(sid))));
    }
}
