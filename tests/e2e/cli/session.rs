//! Login, status, token, whoami, logout with the file store; the refresh token is revoked on
//! logout; an expired access token is refreshed transparently; profiles keep sessions apart.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use super::{Backend, Pms, Server};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

async fn round_trip(backend: Backend) {
    let server = Server::start(backend).await;
    let pms = Pms::new();
    let login = pms.login(&server);
    if login.code != 0 {
        eprintln!("SERVER STDERR:\n{}", server.process.stderr());
    }
    let login = login.expect(0);
    assert!(
        login.stdout.is_empty(),
        "login prints nothing on stdout: {login:?}"
    );
    assert!(
        login.stderr.contains(&format!(
            "Logged in to {} as {} (ADMIN)",
            server.base, server.admin_email
        )),
        "{login:?}"
    );
    assert!(
        login.stderr.contains("plain-text file"),
        "names the store: {login:?}"
    );
    let file = pms.session_file();
    assert_eq!(mode(&file), 0o600, "session file mode");
    assert_eq!(mode(file.parent().expect("dir")), 0o700, "session dir mode");
    let config = std::fs::read_to_string(pms.dir().join("config.toml")).expect("config.toml");
    assert!(
        config.contains(&format!("[profiles.{}]", pms.profile)),
        "{config}"
    );
    assert!(
        !config.contains(&server.admin_password) && !config.contains("eyJ"),
        "no secrets in config.toml"
    );

    let status = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(status["loggedIn"], true);
    assert_eq!(status["store"], "file");
    assert_eq!(status["source"], "file");
    assert_eq!(status["storePath"], file.display().to_string());
    assert_eq!(status["email"], server.admin_email.as_str());
    assert_eq!(status["role"], "ADMIN");
    assert_eq!(status["verified"], true);
    assert_eq!(status["server"], server.base.as_str());

    let human = pms.run(&["auth", "status"], None).expect(0);
    assert!(human.stdout.contains("file ("), "{human:?}");
    assert!(human.stdout.contains("plain text"), "{human:?}");

    let whoami = pms.run(&["whoami"], None).expect(0);
    assert_eq!(
        whoami.stdout,
        format!("{} (ADMIN) on {}\n", server.admin_email, server.base)
    );
    let token = pms.run(&["auth", "token"], None).expect(0).stdout;
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    // An access token past its expiry is refreshed before use, and the rotated pair stored.
    let mut session: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    let old_refresh = session["refreshToken"].clone();
    session["expiresAt"] = Value::String("2000-01-01T00:00:00Z".into());
    std::fs::write(&file, session.to_string()).expect("write");
    pms.run(&["patients", "list", "-o", "json"], None).expect(0);
    let refreshed: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert_ne!(
        refreshed["refreshToken"], old_refresh,
        "rotated refresh token stored"
    );
    assert_eq!(mode(&file), 0o600, "still 0600 after the refresh");

    // Logout revokes the refresh token on the server and removes the file.
    let refresh_token = refreshed["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let logout = pms.run(&["logout"], None).expect(0);
    assert!(logout.stderr.contains("session revoked"), "{logout:?}");
    assert!(!file.exists(), "session file removed");
    let anonymous =
        pms_cli::ApiClient::new(&server.base, pms_cli::api::Credentials::None).expect("client");
    let err = anonymous
        .refresh(&refresh_token)
        .await
        .expect_err("revoked");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    let after = pms.run(&["whoami"], None).expect(4);
    assert!(after.stderr.contains("not logged in"), "{after:?}");
    assert!(after.stderr.contains("run `pms login`"), "{after:?}");
    pms.run(&["logout"], None).expect(0);
    let status = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(4)
        .json();
    assert_eq!(status["loggedIn"], false);
    assert_eq!(status["store"], Value::Null);
}

#[tokio::test]
async fn login_logout_round_trip_with_the_file_store_on_sqlite() {
    round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn login_logout_round_trip_with_the_file_store_on_postgres() {
    round_trip(Backend::Postgres).await;
}

#[tokio::test]
async fn login_with_json_output_prints_the_status_shape() {
    let server = Server::start(Backend::Sqlite).await;
    let pms = Pms::new();
    let login = pms.run(
        &[
            "login",
            "--server",
            &server.base,
            "--email",
            &server.admin_email,
            "--password-stdin",
            "-o",
            "json",
        ],
        Some(&format!("{}\n", server.admin_password)),
    );
    let status = login.expect(0).json();
    assert_eq!(status["loggedIn"], true);
    assert_eq!(status["store"], "file");
    assert_eq!(status["role"], "ADMIN");
    assert_eq!(status["profile"], pms.profile.as_str());
}

#[tokio::test]
async fn a_revoked_session_exits_4_with_the_fix() {
    let server = Server::start(Backend::Sqlite).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);
    // The server forgets the session (revoked elsewhere), and the access token has expired.
    let file = pms.session_file();
    let mut session: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    let anonymous =
        pms_cli::ApiClient::new(&server.base, pms_cli::api::Credentials::None).expect("client");
    anonymous
        .logout(session["refreshToken"].as_str().expect("refresh"))
        .await
        .expect("logout");
    session["expiresAt"] = Value::String("2000-01-01T00:00:00Z".into());
    std::fs::write(&file, session.to_string()).expect("write");
    let run = pms.run(&["patients", "list"], None).expect(4);
    assert_eq!(
        run.stderr.trim(),
        "error: session expired or revoked: run `pms login`"
    );
}

#[tokio::test]
async fn profiles_keep_sessions_apart_and_pms_token_wins() {
    let server = Server::start(Backend::Sqlite).await;
    let mut pms = Pms::new();
    pms.login(&server).expect(0);
    let other_profile = format!("{}-b", pms.profile);
    let other = pms
        .run(&["--profile", &other_profile, "whoami"], None)
        .expect(4);
    assert!(
        other
            .stderr
            .contains(&format!("not logged in (profile `{other_profile}`)")),
        "{other:?}"
    );
    // A stored session for one server is not sent to another.
    let mismatch = pms
        .run(&["--server", "http://127.0.0.1:9", "whoami"], None)
        .expect(4);
    assert!(mismatch.stderr.contains("is logged in to"), "{mismatch:?}");
    // PMS_TOKEN overrides the stored session (and a bad one is reported as such).
    pms.set("PMS_TOKEN", "not-a-token");
    let bad = pms.run(&["whoami"], None).expect(4);
    assert!(
        bad.stderr.contains("the token in PMS_TOKEN was rejected"),
        "{bad:?}"
    );
    let status = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(4)
        .json();
    assert_eq!(status["store"], "PMS_TOKEN");
    assert_eq!(status["verified"], false);
    assert_eq!(status["loggedIn"], false, "a refused token is no login");
    let login = pms.login(&server).expect(0);
    assert!(
        login.stderr.contains("PMS_TOKEN is set"),
        "warns: {login:?}"
    );
}
