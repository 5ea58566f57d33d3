//! Every path of the session store, with in-memory keyrings (`keyring_core::mock`), keyrings
//! that are down, and keyrings that hang.

use super::keyring::testing::{down, hanging, mock};
use super::*;
use chrono::TimeZone;

const T: Duration = Duration::from_secs(5);
/// The server of [`session`].
const S: &str = "http://127.0.0.1:4004";
/// The keyring user of the `default` profile's session on `S` (default config dir).
const USER: &str = "default@http://127.0.0.1:4004";

fn session(tag: &str) -> Session {
    Session {
        server: "http://127.0.0.1:4004".into(),
        email: "admin@pms.test".into(),
        role: Some(Role::Admin),
        access_token: format!("access-{tag}"),
        refresh_token: format!("refresh-{tag}"),
        expires_at: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    }
}

fn store(mode: StoreMode, backends: Vec<Backend>, dir: &Path) -> TokenStore {
    TokenStore::new(mode, backends, dir.join("sessions"), T)
}

#[test]
fn keyring_round_trip_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ss, _) = mock("secret-service");
    let tokens = store(StoreMode::Auto, vec![ss.clone()], dir.path());
    let saved = tokens.save("default", &session("a")).unwrap();
    assert_eq!(saved.location, Location::Keyring("secret-service"));
    assert!(saved.warnings.is_empty());
    assert!(!tokens.file_path("default").exists());
    let loaded = tokens.load("default", S, None).unwrap().found.unwrap();
    assert_eq!(loaded.session, session("a"));
    assert_eq!(loaded.location, Location::Keyring("secret-service"));
    assert!(
        tokens.load("other", S, None).unwrap().found.is_none(),
        "per profile"
    );
    let (removed, errors) = tokens.clear("default", S).unwrap();
    assert_eq!(removed, vec![Location::Keyring("secret-service")]);
    assert!(errors.is_empty());
    assert!(tokens.load("default", S, None).unwrap().found.is_none());
}

#[test]
fn first_backend_down_uses_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let (keyutils, _) = mock("keyutils");
    let tokens = store(
        StoreMode::Auto,
        vec![down("secret-service"), keyutils],
        dir.path(),
    );
    let saved = tokens.save("default", &session("b")).unwrap();
    assert_eq!(saved.location, Location::Keyring("keyutils"));
    let outcome = tokens.load("default", S, Some("keyutils")).unwrap();
    assert_eq!(outcome.found.unwrap().session, session("b"));
    assert!(
        outcome.errors.is_empty(),
        "the pinned backend answered first"
    );
}

#[test]
fn no_keyring_falls_back_to_a_private_file_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = store(
        StoreMode::Auto,
        vec![down("secret-service"), down("keyutils")],
        dir.path(),
    );
    let saved = tokens.save("default", &session("c")).unwrap();
    let path = tokens.file_path("default");
    assert_eq!(saved.location, Location::File(path.clone()));
    assert_eq!(saved.warnings.len(), 1);
    let warning = &saved.warnings[0];
    assert!(
        warning.contains("secret-service: no access (keyring is down)"),
        "{warning}"
    );
    assert!(warning.contains(&path.display().to_string()), "{warning}");
    assert!(warning.contains("PMS_TOKEN_STORE=keyring"), "{warning}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    let loaded = tokens
        .load("default", S, Some("file"))
        .unwrap()
        .found
        .unwrap();
    assert_eq!(loaded.session, session("c"));
    assert_eq!(loaded.location, Location::File(path));
}

#[test]
fn keyring_mode_fails_closed_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = store(
        StoreMode::Keyring,
        vec![down("secret-service"), down("keyutils")],
        dir.path(),
    );
    let err = tokens.save("default", &session("d")).unwrap_err();
    assert!(matches!(err, crate::Error::Keyring(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("no usable OS keyring"), "{text}");
    assert!(text.contains("nothing was written"), "{text}");
    assert!(text.contains("PMS_TOKEN_STORE=file"), "{text}");
    assert!(
        !dir.path().join("sessions").exists(),
        "no file, no directory"
    );
}

#[test]
fn keyring_mode_ignores_a_stray_file() {
    let dir = tempfile::tempdir().unwrap();
    let file_store = store(StoreMode::File, vec![], dir.path());
    file_store.save("default", &session("stray")).unwrap();
    let (ss, _) = mock("secret-service");
    let tokens = store(StoreMode::Keyring, vec![ss], dir.path());
    assert!(
        tokens
            .load("default", S, Some("file"))
            .unwrap()
            .found
            .is_none()
    );
}

#[test]
fn file_mode_never_touches_the_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let (ss, _) = mock("secret-service");
    let tokens = store(
        StoreMode::File,
        vec![ss.clone(), hanging("keyutils")],
        dir.path(),
    );
    let started = std::time::Instant::now();
    let saved = tokens.save("default", &session("e")).unwrap();
    assert_eq!(saved.location, Location::File(tokens.file_path("default")));
    assert!(saved.warnings.is_empty(), "asked for: no warning");
    assert_eq!(ss.get(KEYRING_SERVICE, USER, T), Ok(None));
    assert_eq!(
        tokens
            .load("default", S, None)
            .unwrap()
            .found
            .unwrap()
            .session,
        session("e")
    );
    tokens.clear("default", S).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the hanging backend was never called"
    );
}

#[test]
fn a_transient_error_goes_to_the_file_and_the_next_save_moves_back() {
    let dir = tempfile::tempdir().unwrap();
    let (ss, mock_store) = mock("secret-service");
    let tokens = store(StoreMode::Auto, vec![ss], dir.path());
    let entry =
        keyring_core::api::CredentialStoreApi::build(&*mock_store, KEYRING_SERVICE, USER, None)
            .unwrap();
    entry
        .as_any()
        .downcast_ref::<keyring_core::mock::Cred>()
        .unwrap()
        .set_error(keyring_core::Error::NoStorageAccess("locked".into()));
    let first = tokens.save("default", &session("f1")).unwrap();
    assert!(matches!(first.location, Location::File(_)));
    let second = tokens.save("default", &session("f2")).unwrap();
    assert_eq!(second.location, Location::Keyring("secret-service"));
    assert!(second.warnings[0].contains("removed the old plain-text session file"));
    assert!(!tokens.file_path("default").exists());
    assert_eq!(
        tokens
            .load("default", S, None)
            .unwrap()
            .found
            .unwrap()
            .session,
        session("f2")
    );
}

#[test]
fn a_stale_copy_in_another_backend_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (ss, _) = mock("secret-service");
    let (keyutils, _) = mock("keyutils");
    keyutils
        .set(
            KEYRING_SERVICE,
            USER,
            &serde_json::to_string(&session("old")).unwrap(),
            T,
        )
        .unwrap();
    let tokens = store(StoreMode::Auto, vec![ss, keyutils.clone()], dir.path());
    tokens.save("default", &session("new")).unwrap();
    assert_eq!(keyutils.get(KEYRING_SERVICE, USER, T), Ok(None));
}

#[test]
fn the_pinned_backend_is_read_first() {
    let dir = tempfile::tempdir().unwrap();
    let (ss, _) = mock("secret-service");
    let (keyutils, _) = mock("keyutils");
    let put = |b: &Backend, tag: &str| {
        b.set(
            KEYRING_SERVICE,
            USER,
            &serde_json::to_string(&session(tag)).unwrap(),
            T,
        )
        .unwrap()
    };
    put(&ss, "stale");
    put(&keyutils, "fresh");
    let tokens = store(StoreMode::Auto, vec![ss, keyutils], dir.path());
    let pinned = tokens
        .load("default", S, Some("keyutils"))
        .unwrap()
        .found
        .unwrap();
    assert_eq!(pinned.session, session("fresh"));
    let unpinned = tokens.load("default", S, None).unwrap().found.unwrap();
    assert_eq!(
        unpinned.session,
        session("stale"),
        "without a pin: preference order"
    );
}

#[test]
fn a_hanging_keyring_is_cut_off_by_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenStore::new(
        StoreMode::Auto,
        vec![hanging("secret-service")],
        dir.path().join("sessions"),
        Duration::from_millis(200),
    );
    let started = std::time::Instant::now();
    let saved = tokens.save("default", &session("g")).unwrap();
    assert!(matches!(saved.location, Location::File(_)));
    assert!(
        saved.warnings[0].contains("no answer within"),
        "{:?}",
        saved.warnings
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let outcome = tokens.load("default", S, Some("file")).unwrap();
    assert_eq!(outcome.found.unwrap().session, session("g"));
}

#[test]
fn unreadable_backends_are_reported_when_nothing_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = store(StoreMode::Auto, vec![down("secret-service")], dir.path());
    let outcome = tokens.load("default", S, None).unwrap();
    assert!(outcome.found.is_none());
    assert_eq!(
        outcome.errors,
        vec!["secret-service: no access (keyring is down)".to_owned()]
    );
}

#[test]
fn a_keyring_that_cannot_open_is_silent_on_read_and_clear_but_named_on_save() {
    let dir = tempfile::tempdir().unwrap();
    let closed = Backend::new("secret-service", || {
        Err(keyring_core::Error::PlatformFailure("no bus".into()))
    });
    let tokens = store(StoreMode::Auto, vec![closed], dir.path());
    assert!(tokens.load("default", S, None).unwrap().errors.is_empty());
    assert_eq!(tokens.clear("default", S).unwrap(), (vec![], vec![]));
    let saved = tokens.save("default", &session("h")).unwrap();
    assert!(
        saved.warnings[0].contains("secret-service: no bus"),
        "{:?}",
        saved.warnings
    );
}

#[test]
fn store_mode_parsing() {
    assert_eq!(StoreMode::parse(None).unwrap(), StoreMode::Auto);
    assert_eq!(
        StoreMode::parse(Some("KEYRING")).unwrap(),
        StoreMode::Keyring
    );
    assert_eq!(StoreMode::parse(Some("file")).unwrap(), StoreMode::File);
    let err = StoreMode::parse(Some("vault")).unwrap_err();
    assert!(matches!(err, crate::Error::Usage(_)), "{err:?}");
}

#[test]
fn debug_output_never_shows_tokens() {
    let text = format!("{:?}", session("secret"));
    assert!(
        !text.contains("access-secret") && !text.contains("refresh-secret"),
        "{text}"
    );
}

#[test]
fn entries_are_namespaced_by_server_and_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (ss, _) = mock("secret-service");
    let here =
        store(StoreMode::Keyring, vec![ss.clone()], dir.path()).with_namespace(Some("aaaa".into()));
    let there =
        store(StoreMode::Keyring, vec![ss.clone()], dir.path()).with_namespace(Some("bbbb".into()));
    here.save("default", &session("here")).unwrap();
    there.save("default", &session("there")).unwrap();
    assert_eq!(
        ss.get(KEYRING_SERVICE, &format!("{USER} (config aaaa)"), T)
            .unwrap()
            .map(|s| s.contains("access-here")),
        Some(true)
    );
    let (removed, _) = here.clear("default", S).unwrap();
    assert_eq!(removed, vec![Location::Keyring("secret-service")]);
    assert!(here.load("default", S, None).unwrap().found.is_none());
    assert_eq!(
        there
            .load("default", S, None)
            .unwrap()
            .found
            .unwrap()
            .session,
        session("there"),
        "logout under one config dir leaves the other's session"
    );
    assert!(
        there
            .load("default", "https://other.example", None)
            .unwrap()
            .found
            .is_none(),
        "per server"
    );
    let mut elsewhere = session("elsewhere");
    elsewhere.server = "https://other.example".into();
    there.save("default", &elsewhere).unwrap();
    assert_eq!(
        there.clear_keyring("default", "https://other.example"),
        (vec![Location::Keyring("secret-service")], vec![])
    );
    assert_eq!(
        there
            .load("default", S, None)
            .unwrap()
            .found
            .unwrap()
            .session,
        session("there"),
        "clearing one server's entry leaves the other server's"
    );
}

#[test]
fn an_old_entry_is_migrated_on_first_read_by_the_profile_that_pinned_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ss, _) = mock("secret-service");
    let old = serde_json::to_string(&session("old")).unwrap();
    ss.set(KEYRING_SERVICE, "default", &old, T).unwrap();
    let tokens =
        store(StoreMode::Auto, vec![ss.clone()], dir.path()).with_namespace(Some("cfg1".into()));
    assert!(
        tokens.load("default", S, None).unwrap().found.is_none(),
        "not pinned: not ours to take"
    );
    assert!(
        tokens
            .load("default", "https://other.example", Some("secret-service"))
            .unwrap()
            .found
            .is_none(),
        "another server's session stays where it is"
    );
    assert_eq!(ss.get(KEYRING_SERVICE, "default", T), Ok(Some(old.clone())));
    let found = tokens
        .load("default", S, Some("secret-service"))
        .unwrap()
        .found
        .unwrap();
    assert_eq!(found.session, session("old"));
    assert_eq!(found.location, Location::Keyring("secret-service"));
    assert_eq!(
        ss.get(KEYRING_SERVICE, "default", T),
        Ok(None),
        "old name gone"
    );
    assert_eq!(
        ss.get(KEYRING_SERVICE, &format!("{USER} (config cfg1)"), T),
        Ok(Some(old)),
        "moved to the new name"
    );
}
