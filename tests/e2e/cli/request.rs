//! `pms request` over the whole `api-requests/` folder against fresh servers (the CI command),
//! the JUnit report, and the same files through a third-party runner (httpyac).

use super::{Backend, Pms, Server, api_requests_dir};

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
    assert!(summary.ends_with(" passed, 0 failed"), "{}", run.stdout);
    let passed: usize = summary
        .split(' ')
        .next()
        .expect("count")
        .parse()
        .expect("number");
    assert!(passed >= 63, "every endpoint is covered: {summary}");
    for file in [
        "auth/auth.http",
        "billing/billing.http",
        "patients/patients.http",
    ] {
        assert!(run.stdout.contains(file), "ran {file}: {}", run.stdout);
    }
    let xml = std::fs::read_to_string(&report).expect("report");
    assert!(
        xml.contains(&format!("tests=\"{passed}\" failures=\"0\" errors=\"0\"")),
        "{xml}"
    );
    // Again, as a quoted glob (no shell expansion), on the same server: the files are re-runnable.
    let glob = format!("{}/**/*.http", folder.display());
    let again = pms
        .run(&["request", &glob, "-o", "json"], None)
        .expect(0)
        .json();
    let results = again.as_array().expect("array");
    assert_eq!(results.len(), passed);
    assert!(
        results
            .iter()
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
