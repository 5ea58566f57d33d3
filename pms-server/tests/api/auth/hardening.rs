//! Issue 8/9 hardening of auth: throttling that cannot lock out the rightful user, revocation at
//! the gateway and at every service within seconds, key rotation, bounded audit growth, streams
//! that end with the session, the common-password blocklist.

use std::time::{Duration, Instant};

use futures::StreamExt;
use pms_proto::rest::{Role, TokenResponse};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Auth, problem};
use crate::helpers::{BACKENDS, Backend, TestApp, spawn_app_on, spawn_app_with};

/// The deadline the issue sets for revocation everywhere.
const REVOCATION_DEADLINE: Duration = Duration::from_secs(5);

/// A login as if from `address`: sent through the gateway with `X-Forwarded-For` from a
/// trusted (loopback) proxy, which the gateway extends and auth believes. (Auth's internal port
/// believes only its own gateway in all-in-one.)
async fn login_from(auth: &Auth<'_>, email: &str, password: &str, address: &str) -> StatusCode {
    auth.send_json(
        reqwest::Method::POST,
        "/login",
        None,
        json!({ "email": email, "password": password }),
    )
    .header("x-forwarded-for", address)
    .send()
    .await
    .expect("login")
    .status()
}

#[tokio::test]
async fn fifty_wrong_passwords_from_one_address_do_not_lock_the_owner_out_from_another() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::through_gateway(&app);
        let mut statuses = Vec::new();
        for _ in 0..50 {
            statuses
                .push(login_from(&auth, &app.admin_email, "wrong password!", "203.0.113.10").await);
        }
        let free = app.settings.auth.max_failed_logins_per_account as usize;
        assert!(
            statuses[..free]
                .iter()
                .all(|s| *s == StatusCode::UNAUTHORIZED)
        );
        assert!(
            statuses[free..]
                .iter()
                .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
            "{backend:?}: the attacker's address is delayed: {statuses:?}"
        );
        // The owner, from another address, gets in at once.
        assert_eq!(
            login_from(
                &auth,
                &app.admin_email,
                &app.admin_password,
                "198.51.100.20"
            )
            .await,
            StatusCode::OK,
            "{backend:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn twenty_four_parallel_correct_logins_all_succeed() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let auth = Auth::direct(&app);
    let logins = (0..24).map(|_| auth.try_login(&app.admin_email, &app.admin_password));
    let statuses: Vec<u16> = futures::future::join_all(logins)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses, vec![200; 24]);
    app.stop().await;
}

#[tokio::test]
async fn an_overlong_login_email_is_refused_before_any_work() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let auth = Auth::direct(&app);
    let email = format!("{}@pms.test", "a".repeat(900_000));
    let response = auth.try_login(&email, "whatever password").await;
    let problem = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem.errors[0].field, "email");
    app.stop().await;
}

/// Polls `url` with `token` until it answers 401; returns how long that took.
async fn until_refused(app: &TestApp, url: &str, token: &str) -> Duration {
    let start = Instant::now();
    loop {
        let status = app
            .client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
            .status();
        if status == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(
            start.elapsed() < REVOCATION_DEADLINE,
            "{url} still accepts the token after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_disabled_viewer_is_refused_everywhere_within_seconds() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let admin = app.admin_token().await;
        let (viewer, _, token) = app.user_with_role(Role::Viewer).await;
        let gateway = app.url("/api/patients");
        let service = format!("http://{}/patients", app.patient_addr);
        let validate = format!("http://{}/validate", app.auth_addr);
        for url in [&gateway, &service, &validate] {
            let status = app
                .client
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("get");
            assert_eq!(status.status(), StatusCode::OK, "{url}");
        }
        let response = app
            .client
            .patch(app.url(&format!("/auth/users/{}", viewer.id)))
            .bearer_auth(&admin)
            .json(&json!({ "disabled": true }))
            .send()
            .await
            .expect("disable");
        assert_eq!(response.status(), StatusCode::OK);
        // Auth itself checks its database: refused at once.
        for path in ["/validate", "/me"] {
            let url = format!("http://{}{path}", app.auth_addr);
            let status = app
                .client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("get");
            assert_eq!(status.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        // A verifier that starts now (a restarted service) knows the revocation from its start.
        let fresh = pms_server::authn::Verifier::remote(
            &format!("http://{}", app.auth_addr),
            &app.settings.auth.issuer,
            &app.settings.auth.audience,
        );
        assert!(matches!(
            fresh.verify(&token).await,
            Err(pms_server::authn::TokenError::Revoked)
        ));
        let at_gateway = until_refused(&app, &gateway, &token).await;
        let at_service = until_refused(&app, &service, &token).await;
        println!(
            "{backend:?}: refused at the gateway after {at_gateway:?}, at the patient service after {at_service:?} more"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn logout_password_and_role_changes_revoke_access_tokens() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let auth = Auth::direct(&app);
    let admin = app.admin_token().await;
    let (user, password, _) = app.user_with_role(Role::Clinician).await;
    let gateway = app.url("/api/patients");

    // Logout ends that session's access token, not the user's other sessions.
    let one = auth.login(&user.email, &password).await;
    let other = auth.login(&user.email, &password).await;
    let response = auth
        .post(
            "/logout",
            None,
            json!({ "refreshToken": one.refresh_token }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    until_refused(&app, &gateway, &one.token).await;
    let status = app
        .client
        .get(&gateway)
        .bearer_auth(&other.token)
        .send()
        .await
        .expect("get");
    assert_eq!(status.status(), StatusCode::OK, "other sessions live on");

    // A role change: old tokens refused; the refreshed token carries the new role and works.
    let response = auth
        .patch(
            &format!("/users/{}", user.id),
            &admin,
            json!({ "role": "VIEWER" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    until_refused(&app, &gateway, &other.token).await;
    let refreshed: TokenResponse = auth
        .refresh(&other.refresh_token)
        .await
        .json()
        .await
        .expect("refresh");
    let me: Value = auth
        .fetch("/me", Some(&refreshed.token))
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me["role"], "VIEWER");
    let status = app
        .client
        .get(&gateway)
        .bearer_auth(&refreshed.token)
        .send()
        .await
        .expect("get");
    assert_eq!(status.status(), StatusCode::OK);

    // A password change ends every token of the user.
    let response = auth
        .post(
            "/me/password",
            Some(&refreshed.token),
            json!({ "currentPassword": password, "newPassword": "vivid otter lamp 42" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    until_refused(&app, &gateway, &refreshed.token).await;
    app.stop().await;
}

#[tokio::test]
async fn the_revocation_feed_is_for_internal_callers_and_admins() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let (_, _, viewer) = app.user_with_role(Role::Viewer).await;
    let admin = app.admin_token().await;
    let direct = format!("http://{}/revocations", app.auth_addr);
    let feed: Value = app
        .client
        .get(&direct)
        .send()
        .await
        .expect("feed")
        .json()
        .await
        .expect("json");
    assert!(feed["revocations"].is_array() && feed["now"].is_string());
    let anonymous = app
        .client
        .get(app.url("/auth/revocations"))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let as_viewer = app
        .client
        .get(app.url("/auth/revocations"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("get");
    assert_eq!(as_viewer.status(), StatusCode::FORBIDDEN);
    let as_admin = app
        .client
        .get(app.url("/auth/revocations"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get");
    assert_eq!(as_admin.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn key_rotation_signs_with_a_new_key_and_keeps_old_tokens_valid() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let (_, _, viewer) = app.user_with_role(Role::Viewer).await;
    let rotate = |token: &str| {
        app.client
            .post(app.url("/auth/keys/rotate"))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(
        rotate(&viewer).await.expect("rotate").status(),
        StatusCode::FORBIDDEN
    );
    let rotated: Value = rotate(&admin)
        .await
        .expect("rotate")
        .json()
        .await
        .expect("json");
    let kid = rotated["kid"].as_str().expect("kid").to_owned();
    assert_eq!(rotated["published"].as_array().expect("kids").len(), 2);
    let jwks: Value = app
        .client
        .get(app.url("/auth/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
    // The old token still works; a new one is signed with the new key and works too.
    let gateway = app.url("/api/patients");
    for token in [&viewer, &admin] {
        let status = app
            .client
            .get(&gateway)
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        assert_eq!(status.status(), StatusCode::OK);
    }
    let fresh = app.admin_token().await;
    let (header, _) = super::jwt_parts(&fresh);
    assert_eq!(header["kid"], kid.as_str());
    let status = app
        .client
        .get(&gateway)
        .bearer_auth(&fresh)
        .send()
        .await
        .expect("get");
    assert_eq!(status.status(), StatusCode::OK);
    let audit: Value = app
        .client
        .get(app.url("/auth/audit?limit=5"))
        .bearer_auth(&fresh)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    assert!(
        audit
            .as_array()
            .expect("rows")
            .iter()
            .any(|row| row["action"] == "key.rotate")
    );
    app.stop().await;
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("data dir")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

#[tokio::test]
async fn garbage_refreshes_with_huge_request_ids_barely_grow_the_auth_database() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let before = dir_size(&app.settings.data_dir);
    // A 400 KB head is refused at the edge (431); one just under the header limit reaches auth,
    // which stores a bounded request id and audits garbage within its budget.
    let huge = "r".repeat(400 * 1024);
    let large = "r".repeat(12 * 1024);
    for i in 0..100 {
        for (request_id, expected) in [
            (&huge, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            (&large, StatusCode::UNAUTHORIZED),
        ] {
            let response = app
                .client
                .post(format!("http://{}/refresh", app.auth_addr))
                .header("x-request-id", request_id)
                .json(&json!({ "refreshToken": format!("garbage-{i}") }))
                .send()
                .await
                .expect("refresh");
            assert_eq!(response.status(), expected);
        }
    }
    let grown = dir_size(&app.settings.data_dir).saturating_sub(before);
    println!(
        "100 garbage refreshes with a 400 KB and 100 with a 12 KB request id grew the data dir by \
         {grown} bytes"
    );
    assert!(grown < 1024 * 1024, "grew by {grown} bytes");
    app.stop().await;
}

#[tokio::test]
async fn common_passwords_are_refused_with_a_field_error() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let auth = Auth::direct(&app);
    let admin = app.admin_token().await;
    let response = auth
        .post(
            "/users",
            Some(&admin),
            json!({ "email": "weak@pms.test", "password": "passwordpassword", "role": "VIEWER" }),
        )
        .await;
    let problem = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem.errors[0].field, "password");
    assert!(
        problem.errors[0].message.contains("choose another"),
        "{problem:?}"
    );
    app.stop().await;
}

/// Reads an SSE response until `needle` appears; returns the text read and the time it took.
async fn read_until(
    response: reqwest::Response,
    needle: &str,
    limit: Duration,
) -> (String, Duration) {
    let start = Instant::now();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while !text.contains(needle) {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, body.next()).await {
            Ok(Some(chunk)) => text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk"))),
            Ok(None) => break,
            Err(_) => panic!("no {needle:?} within {limit:?}; got {text:?}"),
        }
    }
    (text, start.elapsed())
}

#[tokio::test]
async fn a_disabled_users_open_stream_ends_with_a_reauthenticate_event() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.analytics.max_streams_per_user = 2).await;
    let admin = app.admin_token().await;
    let (viewer, _, token) = app.user_with_role(Role::Viewer).await;
    let open = || {
        app.client
            .get(app.url("/api/analytics/events/stream"))
            .bearer_auth(&token)
            .send()
    };
    let stream = open().await.expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    let _second = open().await.expect("stream");
    let third = open().await.expect("stream");
    assert!(third.headers().contains_key("retry-after"));
    problem(third, StatusCode::TOO_MANY_REQUESTS).await;
    let response = app
        .client
        .patch(app.url(&format!("/auth/users/{}", viewer.id)))
        .bearer_auth(&admin)
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .expect("disable");
    assert_eq!(response.status(), StatusCode::OK);
    let (text, took) = read_until(stream, "event: reauthenticate", REVOCATION_DEADLINE).await;
    println!("the stream of a disabled user ended after {took:?}");
    assert!(text.contains(r#"data: {"reason":"revoked"}"#), "{text}");
    app.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_fresh_data_dir_is_private_under_umask_022() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("pms-data");
    // The real binary, started the way a user would: a permissive umask.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 022; exec "$0" --data-dir "$1""#)
        .arg(env!("CARGO_BIN_EXE_pms-server"))
        .arg(&data)
        .env("PMS_GATEWAY__PORT", "0")
        .env("PMS_BILLING__GRPC_PORT", "0")
        .env_remove("PMS_ADMIN_PASSWORD")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pms-server starts");
    let expected = [
        "auth.db",
        "patient.db",
        "billing.db",
        "analytics.db",
        "events.db",
        "admin-password",
    ];
    let start = Instant::now();
    while !expected.iter().all(|f| data.join(f).exists()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pms-server did not create its files"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the services finish opening (WAL and SHM files appear with the first writes).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data dir");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&data).expect("list") {
        let path = entry.expect("entry").path();
        files.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(
        files.iter().any(|f| f.ends_with("-wal")),
        "WAL files checked too: {files:?}"
    );
    child.kill().expect("kill");
    child.wait().expect("wait");
}
