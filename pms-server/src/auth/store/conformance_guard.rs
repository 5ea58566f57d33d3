//! Conformance of [`GuardStore`] (revocations, throttle, key maintenance) on both backends, like
//! [`super::conformance`].

use chrono::{Duration, TimeDelta};
use pms_proto::rest::Role;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::conformance::{create, event, origin, rotate, session};
use super::*;
use crate::auth::kek::{Kek, is_sealed};
use crate::auth::keys;
use crate::authn::revocation::{RevocationKind, TokenSession};

const TTL: Duration = Duration::seconds(900);
const KEK_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEK_B: &str = "HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=";

fn token(user_id: Uuid, session_id: Option<Uuid>, epoch: i64) -> TokenSession {
    TokenSession {
        user_id,
        session_id,
        epoch,
    }
}

pub async fn disable_role_and_password_changes_revoke_by_epoch(store: &dyn AuthStore) {
    let admin = create(store, "admin@example.org", Role::Admin).await;
    let jane = create(store, "jane@example.org", Role::Viewer).await;
    assert_eq!(jane.token_epoch, 0);
    assert!(
        store
            .revocations_since(None)
            .await
            .expect("feed")
            .revocations
            .is_empty()
    );
    assert!(
        !store
            .is_revoked(&token(jane.id, None, 0))
            .await
            .expect("check")
    );
    let by_admin = || {
        event(Action::UserUpdate)
            .by(admin.id, Role::Admin)
            .about(jane.id)
    };
    let change = |role, disabled| UserChange { role, disabled };
    store
        .update_user(jane.id, change(Some(Role::Clinician), None), &by_admin())
        .await
        .expect("role change");
    assert!(
        store
            .is_revoked(&token(jane.id, None, 0))
            .await
            .expect("check")
    );
    assert!(
        !store
            .is_revoked(&token(jane.id, None, 1))
            .await
            .expect("check")
    );
    let feed = store.revocations_since(None).await.expect("feed");
    assert_eq!(feed.revocations.len(), 1);
    let entry = &feed.revocations[0];
    assert_eq!(
        (entry.kind, entry.id, entry.epoch),
        (RevocationKind::User, jane.id, 1)
    );
    assert!(
        entry.expires_at > feed.now + TTL,
        "outlives every token issued before it"
    );
    // Only newer entries are returned for a later `since`.
    let later = store
        .revocations_since(Some(feed.now + TimeDelta::seconds(1)))
        .await
        .expect("feed");
    assert!(later.revocations.is_empty());
    store
        .set_password(
            jane.id,
            "$argon2id$new",
            &event(Action::UserPassword).about(jane.id),
        )
        .await
        .expect("password");
    assert!(
        store
            .is_revoked(&token(jane.id, None, 1))
            .await
            .expect("check")
    );
    assert_eq!(
        store
            .user_by_id(jane.id)
            .await
            .expect("db")
            .expect("jane")
            .token_epoch,
        2
    );
    store
        .update_user(jane.id, change(None, Some(true)), &by_admin())
        .await
        .expect("disable");
    // Disabled: refused whatever the epoch.
    assert!(
        store
            .is_revoked(&token(jane.id, None, 99))
            .await
            .expect("check")
    );
    assert!(
        store
            .is_revoked(&token(Uuid::new_v4(), None, 0))
            .await
            .expect("unknown user")
    );
    // Re-enabling publishes nothing new.
    store
        .update_user(jane.id, change(None, Some(false)), &by_admin())
        .await
        .expect("enable");
    assert_eq!(
        store
            .revocations_since(None)
            .await
            .expect("feed")
            .revocations
            .len(),
        3
    );
}

pub async fn logout_and_reuse_revoke_the_session(store: &dyn AuthStore) {
    let jane = create(store, "jane@example.org", Role::Viewer).await;
    let first = session(store, &jane, Duration::days(1)).await;
    let (rotation, _second) = rotate(store, &first).await;
    let Rotation::Rotated { session_id, .. } = rotation else {
        panic!("expected a rotation, got {rotation:?}");
    };
    assert!(
        !store
            .is_revoked(&token(jane.id, Some(session_id), 0))
            .await
            .expect("check")
    );
    assert!(matches!(rotate(store, &first).await.0, Rotation::Reused));
    assert!(
        store
            .is_revoked(&token(jane.id, Some(session_id), 0))
            .await
            .expect("check")
    );
    let other = session(store, &jane, Duration::days(1)).await;
    let (
        Rotation::Rotated {
            session_id: other_sid,
            ..
        },
        next,
    ) = rotate(store, &other).await
    else {
        panic!("expected a rotation");
    };
    assert!(
        !store
            .is_revoked(&token(jane.id, Some(other_sid), 0))
            .await
            .expect("check")
    );
    assert!(store.end_session(&next, &origin()).await.expect("logout"));
    assert!(
        store
            .is_revoked(&token(jane.id, Some(other_sid), 0))
            .await
            .expect("check")
    );
    let feed = store.revocations_since(None).await.expect("feed");
    let sessions: Vec<Uuid> = feed
        .revocations
        .iter()
        .filter(|r| r.kind == RevocationKind::Session)
        .map(|r| r.id)
        .collect();
    assert_eq!(sessions, vec![session_id, other_sid]);
}

pub async fn throttle_state_is_stored_and_cleared(store: &dyn AuthStore) {
    let key = ThrottleKey([7; 32]);
    let other = ThrottleKey([8; 32]);
    let window = TimeDelta::seconds(900);
    assert_eq!(
        store.throttle_blocked_until(&[key]).await.expect("db"),
        None
    );
    store.throttle_failure(&key, 2, window).await.expect("db");
    assert_eq!(
        store.throttle_blocked_until(&[key]).await.expect("db"),
        None
    );
    store.throttle_failure(&key, 2, window).await.expect("db");
    let until = store
        .throttle_blocked_until(&[other, key])
        .await
        .expect("db")
        .expect("blocked after the free failures");
    let wait = until - chrono::Utc::now();
    assert!(
        wait > TimeDelta::zero() && wait <= TimeDelta::seconds(5),
        "{wait}"
    );
    store.throttle_failure(&key, 2, window).await.expect("db");
    let longer = store
        .throttle_blocked_until(&[key])
        .await
        .expect("db")
        .expect("blocked");
    assert!(
        longer - chrono::Utc::now() > TimeDelta::seconds(5),
        "the delay doubles"
    );
    store.throttle_clear(&key).await.expect("db");
    assert_eq!(
        store.throttle_blocked_until(&[key]).await.expect("db"),
        None
    );
}

pub async fn signing_keys_are_sealed_with_the_kek_and_rotate(store: &dyn AuthStore) {
    // A plaintext key from a start without KEK is sealed by the first start with one.
    let plain = keys::load_or_create(store, None, TTL).await.expect("ring");
    let stored = store.signing_keys().await.expect("keys");
    assert!(!is_sealed(stored[0].pkcs8.expose_secret()));
    let kek = Kek::parse(KEK_A).expect("kek");
    let sealed = keys::load_or_create(store, Some(&kek), TTL)
        .await
        .expect("ring");
    assert_eq!(sealed.kid, plain.kid);
    let stored = store.signing_keys().await.expect("keys");
    assert!(is_sealed(stored[0].pkcs8.expose_secret()));
    // Without the KEK, or with another one, the start fails with a clear error.
    let missing = keys::load_or_create(store, None, TTL)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{missing:#}").contains("key_encryption_key"),
        "{missing:#}"
    );
    let wrong = Kek::parse(KEK_B).expect("kek");
    let wrong = keys::load_or_create(store, Some(&wrong), TTL)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{wrong:#}").contains("key-encryption key"),
        "{wrong:#}"
    );
    // Rotation: the new key signs, the old one stays published (its tokens still live).
    let audit = event(Action::KeyRotate);
    let kid = keys::rotate(store, Some(&kek), &audit)
        .await
        .expect("rotated");
    let ring = keys::load_or_create(store, Some(&kek), TTL)
        .await
        .expect("ring");
    assert_eq!(ring.kid, kid);
    let published: Vec<&str> = ring.jwks.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(published, vec![kid.as_str(), plain.kid.as_str()]);
    let stored = store.signing_keys().await.expect("keys");
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|k| is_sealed(k.pkcs8.expose_secret())));
    assert_eq!(
        store.recent_audit(1).await.expect("audit")[0].action,
        "key.rotate"
    );
    // Once tokens signed with the old key expired, it is retired and deleted.
    let ring = keys::load_or_create(store, Some(&kek), TimeDelta::seconds(-120))
        .await
        .expect("ring");
    assert_eq!(ring.jwks.keys.len(), 1);
    assert_eq!(store.signing_keys().await.expect("keys").len(), 1);
}

conformance!(
    disable_role_and_password_changes_revoke_by_epoch,
    logout_and_reuse_revoke_the_session,
    throttle_state_is_stored_and_cleared,
    signing_keys_are_sealed_with_the_kek_and_rotate,
);
