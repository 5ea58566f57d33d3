//! `pms request` over the whole `api-requests/` folder against fresh servers (the CI command),
//! the JUnit report, and the same files through a third-party runner (httpyac).

use super::{Backend, Pms, Recorder, Server, api_requests_dir};

async fn whole_folder(backend: Backend) {
    let server = Server::start(backend).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);
    let report = pms.dir().join("report.xml");
    let folder = api_requests_dir();
    let run = pms.run(
        &[
            "request",
            &folder.to_string_lossy(),
            "--report",
            &format!("junit={}", report.display()),
        ],
        None,
    );
    let run = run.expect(0);
    let summary = run.stdout.lines().last().expect("summary line").to_owned();
    // billing/grpc.http's gRPC request is skipped (counted apart), never failed.
    assert!(
        summary.ends_with(" passed, 0 failed, 1 skipped"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("→ skipped: gRPC request"),
        "{}",
        run.stdout
    );
    let passed: usize = summary
        .split(' ')
        .next()
        .expect("count")
        .parse()
        .expect("number");
    assert!(passed >= 63, "every endpoint is covered: {summary}");
    for file in [
        "analytics/analytics.http",
        "auth/auth.http",
        "billing/billing.http",
        "billing/grpc.http",
        "patients/patients.http",
    ] {
        assert!(run.stdout.contains(file), "ran {file}: {}", run.stdout);
    }
    let xml = std::fs::read_to_string(&report).expect("report");
    assert!(
        xml.contains(&format!(
            "tests=\"{}\" failures=\"0\" errors=\"0\" skipped=\"1\"",
            passed + 1
        )),
        "{xml}"
    );
    // Again, as a quoted glob (no shell expansion), on the same server: the files are re-runnable.
    let glob = format!("{}/**/*.http", folder.display());
    let again = pms
        .run(&["request", &glob, "-o", "json"], None)
        .expect(0)
        .json();
    let results = again.as_array().expect("array");
    assert_eq!(results.len(), passed + 1);
    let (skipped, ran): (Vec<_>, Vec<_>) = results.iter().partition(|r| r["skipped"].is_string());
    assert_eq!(skipped.len(), 1, "{again}");
    assert_eq!(skipped[0]["method"], "GRPC");
    assert!(
        ran.iter()
            .all(|r| r["error"].is_null() && r["status"].is_u64()),
        "{again}"
    );
}

#[tokio::test]
async fn api_requests_folder_passes_on_sqlite() {
    whole_folder(Backend::Sqlite).await;
}

#[tokio::test]
async fn api_requests_folder_passes_on_postgres() {
    whole_folder(Backend::Postgres).await;
}

#[tokio::test]
async fn failures_are_reported_in_junit_and_the_exit_code() {
    let server = Server::start(Backend::Sqlite).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("t.http");
    std::fs::write(
        &file,
        "@who = {{me.email}}\n\n# @name me\nGET {{baseUrl}}/auth/me\nAuthorization: Bearer {{token}}\n\n?? status == 200\n?? body email == {{expected}}\n\n###\nGET {{baseUrl}}/auth/users/{{missing.id}}\n",
    )
    .expect("write");
    let report = dir.path().join("junit.xml");
    let run = pms
        .run(
            &[
                "request",
                &file.to_string_lossy(),
                "--var",
                "expected=someone-else@pms.test",
                "--report",
                &format!("junit={}", report.display()),
            ],
            None,
        )
        .expect(1);
    assert!(run.stdout.contains("0 passed, 2 failed"), "{run:?}");
    assert!(
        run.stderr.trim().ends_with("2 of 2 requests failed"),
        "{run:?}"
    );
    let xml = std::fs::read_to_string(&report).expect("report");
    assert!(
        xml.contains("tests=\"2\" failures=\"1\" errors=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("(actual: {})", server.admin_email)),
        "{xml}"
    );
    assert!(xml.contains("unknown variable `missing.id`"), "{xml}");
    let ok = pms
        .run(
            &[
                "request",
                &file.to_string_lossy(),
                "--var",
                &format!("expected={}", server.admin_email),
            ],
            None,
        )
        .expect(1);
    assert!(ok.stdout.contains("1 passed, 1 failed"), "{ok:?}");
}

#[tokio::test]
async fn api_requests_run_with_httpyac_too() {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v httpyac"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "httpyac is missing: `npm install -g httpyac@6` (.ci/run installs it)"
    );
    let server = Server::start(Backend::Sqlite).await;
    let token = server.admin_token().await;
    for file in [
        "analytics/analytics.http",
        "auth/auth.http",
        "billing/billing.http",
        "patients/patients.http",
    ] {
        // httpyac only runs files below its working directory.
        let dir = api_requests_dir().canonicalize().expect("api-requests");
        let out = std::process::Command::new("httpyac")
            .current_dir(&dir)
            .env("PWD", &dir)
            .args(["send", file, "--all", "--bail", "-o", "short"])
            .args([
                "--var",
                &format!("baseUrl={}", server.base),
                "--var",
                &format!("token={token}"),
            ])
            .env("NO_COLOR", "1")
            .output()
            .expect("httpyac");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "httpyac {file}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.contains("✖"), "{file}: {stdout}");
    }
}

#[tokio::test]
async fn a_request_to_another_origin_gets_no_token_and_nothing_shows_it() {
    let server = Server::start(Backend::Sqlite).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pms.session_file()).expect("session"))
            .expect("json");
    let token = session["accessToken"].as_str().expect("token").to_owned();
    let refresh = session["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let other = Recorder::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("t.http");
    std::fs::write(
        &file,
        format!(
            "# @name me\nGET {{{{baseUrl}}}}/auth/me?echo={{{{token}}}}\nAuthorization: Bearer {{{{token}}}}\n\n?? status == 200\n?? body email == nobody@pms.test\n\n###\nGET http://127.0.0.1:{port}/collect?t={{{{token}}}}\nAuthorization: Bearer {{{{token}}}}\nX-Token: {{{{token}}}}\n\n?? status == 200\n\n###\nGET http://127.0.0.1:{port}/copied\nX-Copied: {{{{me.request.headers.Authorization}}}}\n",
            port = other.port
        ),
    )
    .expect("write");
    let report = dir.path().join("junit.xml");
    let run = pms
        .run(
            &[
                "request",
                &file.to_string_lossy(),
                "-v",
                "--report",
                &format!("junit={}", report.display()),
            ],
            None,
        )
        .expect(1);
    assert!(run.stdout.contains("2 passed, 1 failed"), "{run:?}");
    // The other origin got its requests, without the token anywhere in them — also not when a
    // request copies it from an earlier one's captured `Authorization`.
    let seen = other.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(!seen[1].contains(&token), "{seen:?}");
    assert!(
        seen[1]
            .to_ascii_lowercase()
            .contains("x-copied: bearer \r\n"),
        "{seen:?}"
    );
    assert!(
        seen[0].starts_with("GET /collect?t= HTTP/1.1\r\n"),
        "{seen:?}"
    );
    assert!(!seen[0].contains(&token), "{seen:?}");
    assert!(
        seen[0].to_ascii_lowercase().contains("x-token: \r\n"),
        "{seen:?}"
    );
    // Warned, naming the file line and both origins.
    assert!(
        run.stderr.contains(&format!(
            "t.http:9: {{{{token}}}} left empty: http://127.0.0.1:{} is not the session's server ({})",
            other.port, server.base
        )),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("t.http:16: {{token}} left empty"),
        "{run:?}"
    );
    // The session's own server got it (the first request passed its status check) — and no
    // output, the report included, shows it.
    assert!(run.stdout.contains("/auth/me?echo=[redacted]"), "{run:?}");
    let xml = std::fs::read_to_string(&report).expect("report");
    let json = pms
        .run(&["request", &file.to_string_lossy(), "-o", "json"], None)
        .expect(1);
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("junit", &xml),
        ("json", &json.stdout),
        ("json stderr", &json.stderr),
    ] {
        assert!(
            !text.contains(&token),
            "{what} shows the access token:\n{text}"
        );
        assert!(!text.contains(&refresh), "{what} shows the refresh token");
        assert!(!text.contains("eyJ"), "{what} shows a JWT:\n{text}");
    }
    assert!(xml.contains("echo=[redacted]"), "{xml}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&report)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the report is private");
}

#[tokio::test]
async fn a_file_that_sets_its_own_token_sends_it_where_it_says() {
    let server = Server::start(Backend::Sqlite).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);
    let other = Recorder::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("own.http");
    std::fs::write(
        &file,
        format!(
            "@token = file-own-api-key-123\n\nGET http://127.0.0.1:{}/x\nAuthorization: Bearer {{{{token}}}}\n",
            other.port
        ),
    )
    .expect("write");
    let run = pms
        .run(&["request", &file.to_string_lossy()], None)
        .expect(0);
    assert!(!run.stderr.contains("left empty"), "{run:?}");
    let seen = other.seen();
    assert!(
        seen[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer file-own-api-key-123\r\n"),
        "{seen:?}"
    );
    assert!(!run.stdout.contains("file-own-api-key-123"), "{run:?}");
}
