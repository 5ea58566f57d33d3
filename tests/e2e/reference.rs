//! The reference system's own request files, unchanged but for the port, through httpyac against
//! `pms-server --ephemeral --fixtures reference` (its test account `testuser@test.com` /
//! `password123`): login 200, validate 200, create 201, list 200. And billing's gRPC request file
//! (`api-requests/billing/grpc.http`) through httpyac against the same server's gRPC port.
//! Bounded: one server start and two httpyac runs, about 10 s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pms_e2e::{ServerProcess, free_port};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Copies `from` (a directory) to `to`, rewriting `replace` in every `.http` file.
fn copy_rewritten(from: &Path, to: &Path, replace: &[(&str, String)]) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_rewritten(&path, &target, replace);
        } else if path.extension().is_some_and(|e| e == "http") {
            let mut text = std::fs::read_to_string(&path).expect("read");
            for (old, new) in replace {
                text = text.replace(old, new);
            }
            std::fs::write(&target, text).expect("write");
        }
    }
}

/// Runs `httpyac send FILES --all --json` in `dir`; returns the parsed report.
fn httpyac(dir: &Path, files: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new("httpyac")
        .current_dir(dir)
        .env("PWD", dir)
        .env("NO_COLOR", "1")
        .arg("send")
        .args(files)
        .args(["--all", "--json"])
        .output()
        .expect("httpyac is installed (scripts/test-services installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "httpyac: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("httpyac --json: {e}: {stdout}"))
}

#[tokio::test]
async fn reference_request_files_run_unchanged_against_the_reference_fixtures() {
    let (port, grpc_port) = (free_port(), free_port());
    let mut server = ServerProcess::spawn(
        "reference",
        &["--ephemeral", "--fixtures", "reference"],
        &[
            ("PMS_GATEWAY__PORT", port.to_string()),
            ("PMS_BILLING__GRPC_PORT", grpc_port.to_string()),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    server.wait_ready(&base, Duration::from_secs(60)).await;
    let stderr = server.stderr();
    assert!(
        stderr.contains("PMS FIXTURES (reference)") && stderr.contains("testuser@test.com"),
        "announced on stderr: {stderr}"
    );
    assert!(
        stderr.contains("\"level\":\"WARN\"") && stderr.contains("reference fixtures loaded"),
        "and as a warning in the log: {stderr}"
    );

    let work = tempfile::tempdir().expect("temp dir");
    let reference = repo_root().join("tests/fixtures/reference-requests/api-requests");
    copy_rewritten(
        &reference,
        work.path(),
        &[("localhost:4004", format!("127.0.0.1:{port}"))],
    );
    // In the order a user runs them; the login's `client.global.set("token", …)` feeds the rest.
    let report = httpyac(
        work.path(),
        &[
            "auth-service/login.http",
            "auth-service/validate.http",
            "patient-service/create-patient.http",
            "patient-service/get-patients.http",
        ],
    );
    let statuses: Vec<(String, u64)> = report["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .map(|r| {
            (
                r["response"]["request"]["method"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
                r["response"]["statusCode"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected = [("POST", 200), ("GET", 200), ("POST", 201), ("GET", 200)];
    assert_eq!(
        statuses,
        expected.map(|(m, s)| (m.to_owned(), s)).to_vec(),
        "login, validate, create, list: {report}"
    );

    // The gRPC request file, with httpyac's gRPC client, on the configured gRPC port.
    let grpc_dir = tempfile::tempdir().expect("temp dir");
    let proto = repo_root().join("proto/proto/");
    copy_rewritten(
        &repo_root().join("api-requests/billing"),
        grpc_dir.path(),
        &[
            ("localhost:9001", format!("127.0.0.1:{grpc_port}")),
            ("../../proto/proto/", proto.display().to_string()),
        ],
    );
    let report = httpyac(grpc_dir.path(), &["grpc.http"]);
    let summary = &report["summary"];
    assert_eq!(summary["totalRequests"], 1, "{report}");
    assert_eq!(summary["successTests"], 2, "status 0 and ACTIVE: {report}");
    assert_eq!(summary["failedTests"], 0, "{report}");
    assert!(
        server.terminate(Duration::from_secs(20)).await.success(),
        "{}",
        server.stderr()
    );
}

#[test]
fn fixtures_are_refused_without_ephemeral() {
    let data = tempfile::tempdir().expect("temp dir");
    for (args, env) in [
        (vec!["--fixtures", "reference"], vec![]),
        (vec![], vec![("PMS_FIXTURES", "reference")]),
    ] {
        let output = std::process::Command::new(pms_e2e::binary("pms-server"))
            .args(&args)
            .args(["--data-dir", &data.path().to_string_lossy()])
            .env_remove("PMS_FIXTURES")
            .envs(env)
            .env("PMS_GATEWAY__PORT", "0")
            .env("PMS_BILLING__GRPC_PORT", "0")
            .output()
            .expect("run pms-server");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--ephemeral"), "{stderr}");
        assert!(
            std::fs::read_dir(data.path())
                .expect("dir")
                .next()
                .is_none(),
            "nothing was created"
        );
    }
}
