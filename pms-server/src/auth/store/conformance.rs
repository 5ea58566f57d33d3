//! The [`AuthStore`] conformance suite: one set of generic checks, run against SQLite (a temp
//! file) and PostgreSQL (a fresh database from `PMS_TEST_DATABASE_URL`; missing → panic).

use chrono::{Duration, Utc};
use pms_proto::rest::Role;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::*;
use crate::auth::keys::{self, StoredKey};
use crate::auth::tokens::NewRefreshToken;

const TTL: Duration = Duration::seconds(900);

pub(super) fn origin() -> RequestMeta {
    RequestMeta {
        client_ip: Some("192.0.2.7".parse().expect("ip")),
        request_id: Some(crate::audit::RequestId::generate()),
    }
}

fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        id: Uuid::now_v7(),
        email: Email::parse(email).expect("valid email"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        role,
    }
}

pub(super) fn event(action: Action) -> AuditEvent {
    AuditEvent::new(action, Outcome::Success, &origin())
}

pub(super) async fn create(store: &dyn AuthStore, email: &str, role: Role) -> UserRecord {
    let user = new_user(email, role);
    store
        .create_user(&user, &event(Action::UserCreate).about(user.id))
        .await
        .expect("create user")
}

/// A live session of `user`; returns its refresh-token hash.
pub(super) async fn session(
    store: &dyn AuthStore,
    user: &UserRecord,
    ttl: Duration,
) -> RefreshTokenHash {
    let token = NewRefreshToken::generate().expect("token");
    let new = NewSession {
        token_hash: token.hash,
        family_id: Uuid::new_v4(),
        user_id: user.id,
        expires_at: Utc::now() + ttl,
    };
    store
        .start_session(
            &new,
            &event(Action::Login).by(user.id, user.role).about(user.id),
        )
        .await
        .expect("start session");
    token.hash
}

pub(super) async fn rotate(
    store: &dyn AuthStore,
    presented: &RefreshTokenHash,
) -> (Rotation, RefreshTokenHash) {
    let next = NewRefreshToken::generate().expect("token").hash;
    let rotation = store
        .rotate_refresh_token(presented, &next, Utc::now() + Duration::days(1), &origin())
        .await
        .expect("rotate");
    (rotation, next)
}

async fn actions(store: &dyn AuthStore, n: i64) -> Vec<(String, String)> {
    store
        .recent_audit(n)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect()
}

pub async fn users_are_created_found_listed_and_unique_by_email(store: &dyn AuthStore) {
    assert_eq!(store.count_users().await.expect("count"), 0);
    let jane = create(store, "Jane@Example.org", Role::Clinician).await;
    assert_eq!(jane.email, "jane@example.org");
    assert_eq!(jane.role, Role::Clinician);
    assert!(!jane.disabled);
    assert_eq!(jane.created_at, jane.updated_at);
    assert!(jane.password_hash.expose_secret().starts_with("$argon2id$"));

    let by_id = store
        .user_by_id(jane.id)
        .await
        .expect("by id")
        .expect("found");
    assert_eq!(by_id.to_api(), jane.to_api());
    let by_email = store
        .user_by_email("JANE@example.ORG")
        .await
        .expect("by email")
        .expect("found");
    assert_eq!(by_email.id, jane.id);
    assert!(
        store
            .user_by_email("nobody@example.org")
            .await
            .expect("lookup")
            .is_none()
    );
    assert!(
        store
            .user_by_id(Uuid::new_v4())
            .await
            .expect("lookup")
            .is_none()
    );

    let dup = new_user("JANE@EXAMPLE.ORG", Role::Viewer);
    match store.create_user(&dup, &event(Action::UserCreate)).await {
        Err(StoreError::Conflict(name)) => assert!(name.contains(EMAIL_CONSTRAINT), "{name}"),
        other => panic!("expected a conflict on {EMAIL_CONSTRAINT}, got {other:?}"),
    }
    let adam = create(store, "adam@example.org", Role::Admin).await;
    let listed: Vec<Uuid> = store
        .list_users()
        .await
        .expect("list")
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(listed, vec![adam.id, jane.id], "ordered by email");
    assert_eq!(store.count_users().await.expect("count"), 2);
    // The failed duplicate left no audit row behind.
    assert_eq!(actions(store, 10).await.len(), 2);
}

pub async fn the_first_user_is_created_only_once(store: &dyn AuthStore) {
    let admin = new_user("root@example.org", Role::Admin);
    assert!(store.create_first_user(&admin).await.expect("bootstrap"));
    assert!(
        !store
            .create_first_user(&new_user("other@example.org", Role::Admin))
            .await
            .expect("bootstrap")
    );
    assert_eq!(store.count_users().await.expect("count"), 1);
    let audit = store.recent_audit(10).await.expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "user.bootstrap");
    assert_eq!(audit[0].subject_user_id, Some(admin.id));
}

pub async fn updates_change_role_and_disable_and_keep_an_admin(store: &dyn AuthStore) {
    let admin = create(store, "admin@example.org", Role::Admin).await;
    let jane = create(store, "jane@example.org", Role::Clinician).await;
    let live = session(store, &jane, Duration::days(1)).await;

    let audit = event(Action::UserUpdate)
        .by(admin.id, Role::Admin)
        .about(jane.id);
    let promoted = store
        .update_user(
            jane.id,
            UserChange {
                role: Some(Role::Billing),
                disabled: None,
            },
            &audit,
        )
        .await
        .expect("update");
    assert_eq!((promoted.role, promoted.disabled), (Role::Billing, false));
    assert!(promoted.updated_at >= promoted.created_at);
    // Role changes keep sessions (the next refresh carries the new role).
    let (rotation, next) = rotate(store, &live).await;
    match rotation {
        Rotation::Rotated { user, .. } => assert_eq!(user.role, Role::Billing),
        other => panic!("expected a rotation, got {other:?}"),
    }

    let disabled = store
        .update_user(
            jane.id,
            UserChange {
                role: None,
                disabled: Some(true),
            },
            &audit,
        )
        .await
        .expect("disable");
    assert!(disabled.disabled);
    assert_eq!(disabled.role, Role::Billing);
    assert!(
        matches!(rotate(store, &next).await.0, Rotation::Reused),
        "disabling revoked the session"
    );

    match store
        .update_user(Uuid::new_v4(), UserChange::default(), &audit)
        .await
    {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    for change in [
        UserChange {
            role: Some(Role::Viewer),
            disabled: None,
        },
        UserChange {
            role: None,
            disabled: Some(true),
        },
    ] {
        match store.update_user(admin.id, change, &audit).await {
            Err(StoreError::Conflict(name)) => assert_eq!(name, LAST_ADMIN),
            other => panic!("expected the last-admin conflict, got {other:?}"),
        }
    }
    let still = store
        .user_by_id(admin.id)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(
        (still.role, still.disabled),
        (Role::Admin, false),
        "refused change rolled back"
    );
    let updates = actions(store, 50)
        .await
        .into_iter()
        .filter(|(a, _)| a == "user.update")
        .count();
    assert_eq!(updates, 2, "only the applied updates are audited");
}

pub async fn refresh_tokens_rotate_and_reuse_revokes_the_family(store: &dyn AuthStore) {
    let jane = create(store, "jane@example.org", Role::Viewer).await;
    let first = session(store, &jane, Duration::days(1)).await;
    let other_family = session(store, &jane, Duration::days(1)).await;

    let (rotation, second) = rotate(store, &first).await;
    match rotation {
        Rotation::Rotated { user, .. } => assert_eq!((user.id, user.role), (jane.id, Role::Viewer)),
        other => panic!("expected a rotation, got {other:?}"),
    }
    let (rotation, third) = rotate(store, &second).await;
    assert!(matches!(rotation, Rotation::Rotated { .. }));
    // Presenting `first` again is reuse: the whole family (incl. the live `third`) dies.
    assert!(matches!(rotate(store, &first).await.0, Rotation::Reused));
    assert!(matches!(rotate(store, &third).await.0, Rotation::Reused));
    // Other families of the same user are untouched.
    assert!(matches!(
        rotate(store, &other_family).await.0,
        Rotation::Rotated { .. }
    ));
    let unknown = NewRefreshToken::generate().expect("token").hash;
    assert!(matches!(rotate(store, &unknown).await.0, Rotation::Unknown));

    // Unknown tokens are audited by the service within its budget, not by the store.
    let audit = store.recent_audit(3).await.expect("audit");
    let got: Vec<(&str, &str, Option<Uuid>)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str(), e.subject_user_id))
        .collect();
    assert_eq!(
        got,
        vec![
            ("auth.refresh", "SUCCESS", Some(jane.id)),
            ("auth.refresh_reuse", "DENIED", Some(jane.id)),
            ("auth.refresh_reuse", "DENIED", Some(jane.id)),
        ]
    );
    assert_eq!(audit[0].actor_id, Some(jane.id));
    assert_eq!(audit[0].client_ip.as_deref(), Some("192.0.2.7"));
}

pub async fn expired_and_disabled_sessions_do_not_rotate(store: &dyn AuthStore) {
    let admin = create(store, "admin@example.org", Role::Admin).await;
    let jane = create(store, "jane@example.org", Role::Viewer).await;
    let expired = session(store, &jane, Duration::seconds(-1)).await;
    assert!(matches!(rotate(store, &expired).await.0, Rotation::Expired));
    assert!(matches!(rotate(store, &expired).await.0, Rotation::Reused));

    let live = session(store, &jane, Duration::days(1)).await;
    // Disabling revokes the session; re-enabling the account does not bring it back.
    let audit = event(Action::UserUpdate)
        .by(admin.id, Role::Admin)
        .about(jane.id);
    store
        .update_user(
            jane.id,
            UserChange {
                role: None,
                disabled: Some(true),
            },
            &audit,
        )
        .await
        .expect("disable");
    assert!(matches!(rotate(store, &live).await.0, Rotation::Reused));
    store
        .update_user(
            jane.id,
            UserChange {
                role: None,
                disabled: Some(false),
            },
            &audit,
        )
        .await
        .expect("enable");
    assert!(
        matches!(rotate(store, &live).await.0, Rotation::Reused),
        "re-enabling revives nothing"
    );
}

pub async fn logout_and_password_changes_revoke_sessions(store: &dyn AuthStore) {
    let jane = create(store, "jane@example.org", Role::Viewer).await;
    let a = session(store, &jane, Duration::days(1)).await;
    let b = session(store, &jane, Duration::days(1)).await;
    let c = session(store, &jane, Duration::days(1)).await;

    assert!(store.end_session(&a, &origin()).await.expect("logout"));
    assert!(
        store
            .end_session(&a, &origin())
            .await
            .expect("logout again"),
        "idempotent"
    );
    let unknown = NewRefreshToken::generate().expect("token").hash;
    assert!(
        !store
            .end_session(&unknown, &origin())
            .await
            .expect("logout unknown")
    );
    assert!(matches!(rotate(store, &a).await.0, Rotation::Reused));
    let (rotation, b2) = rotate(store, &b).await;
    assert!(
        matches!(rotation, Rotation::Rotated { .. }),
        "logout ends one family only"
    );

    let audit = event(Action::UserPassword)
        .by(jane.id, jane.role)
        .about(jane.id);
    store
        .set_password(jane.id, "$argon2id$new", &audit)
        .await
        .expect("set password");
    let changed = store
        .user_by_id(jane.id)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(changed.password_hash.expose_secret(), "$argon2id$new");
    assert!(matches!(rotate(store, &b2).await.0, Rotation::Reused));
    assert!(matches!(rotate(store, &c).await.0, Rotation::Reused));
    match store
        .set_password(Uuid::new_v4(), "$argon2id$x", &audit)
        .await
    {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

pub async fn audit_rows_are_listed_newest_first(store: &dyn AuthStore) {
    let actor = Uuid::new_v4();
    let subject = Uuid::new_v4();
    for action in [Action::LoginFailed, Action::Login, Action::Logout] {
        let mut e = AuditEvent::new(action, Outcome::Failed, &origin())
            .by(actor, Role::Billing)
            .about(subject);
        e.meta.request.request_id = crate::audit::RequestId::parse(action.as_str());
        store.record(&e).await.expect("record");
    }
    let rows = store.recent_audit(2).await.expect("audit");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].action, "auth.logout");
    assert_eq!(rows[1].action, "auth.login");
    assert_eq!(rows[0].actor_id, Some(actor));
    assert_eq!(rows[0].actor_role, Some(Role::Billing));
    assert_eq!(rows[0].subject_user_id, Some(subject));
    assert_eq!(rows[0].outcome, "FAILED");
    assert_eq!(rows[0].request_id.as_deref(), Some("auth.logout"));
    assert!((Utc::now() - rows[0].occurred_at).num_seconds().abs() < 60);
    assert_ne!(rows[0].id, rows[1].id);
    assert_eq!(store.recent_audit(100).await.expect("audit").len(), 3);
}

pub async fn the_signing_key_is_created_once(store: &dyn AuthStore) {
    assert!(store.signing_keys().await.expect("keys").is_empty());
    let (a, b) = tokio::join!(
        keys::load_or_create(store, None, TTL),
        keys::load_or_create(store, None, TTL)
    );
    let (a, b) = (a.expect("ring a"), b.expect("ring b"));
    assert_eq!(a.kid, b.kid, "racing starts agree on one key");
    let stored = store.signing_keys().await.expect("keys");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kid, a.kid);
    assert_eq!(stored[0].generation, keys::FIRST_GENERATION);
    assert!(
        !store
            .insert_signing_key(&StoredKey::generate(keys::FIRST_GENERATION).expect("key"))
            .await
            .expect("insert")
    );
    let again = keys::load_or_create(store, None, TTL)
        .await
        .expect("reload");
    assert_eq!(again.kid, a.kid);
    assert_eq!(again.jwks.keys[0].x, a.jwks.keys[0].x);
}

conformance!(
    users_are_created_found_listed_and_unique_by_email,
    the_first_user_is_created_only_once,
    updates_change_role_and_disable_and_keep_an_admin,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    expired_and_disabled_sessions_do_not_rotate,
    logout_and_password_changes_revoke_sessions,
    audit_rows_are_listed_newest_first,
    the_signing_key_is_created_once,
);

/// The audit table refuses updates and deletes on both backends (a trigger, not just the API).
mod append_only {
    use super::super::{AuditEvent, MIGRATIONS, for_db};
    use super::{Action, Outcome, origin};
    use crate::store::{Db, ServiceDb, connect};

    async fn check(db: Db) {
        let store = for_db(db.clone());
        let event = AuditEvent::new(Action::Login, Outcome::Success, &origin());
        store.record(&event).await.expect("record");
        for sql in [
            "UPDATE auth_audit SET outcome = 'FAILED'",
            "DELETE FROM auth_audit",
        ] {
            let refused = match &db {
                Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.err(),
                Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.err(),
            };
            let err = refused.unwrap_or_else(|| panic!("`{sql}` must be refused"));
            assert!(err.to_string().contains("append-only"), "{err}");
        }
        let rows = store.recent_audit(10).await.expect("audit");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].outcome, "SUCCESS");
    }

    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().expect("dir");
        let db = connect(ServiceDb::Auth, None, dir.path(), 2, &MIGRATIONS)
            .await
            .expect("db");
        check(db).await;
    }

    #[tokio::test]
    async fn postgres() {
        let url = secrecy::SecretString::from(crate::store::testing::fresh_postgres_url().await);
        let db = connect(
            ServiceDb::Auth,
            Some(&url),
            std::path::Path::new("."),
            2,
            &MIGRATIONS,
        )
        .await
        .expect("db");
        check(db).await;
    }
}
