//! The API documents agree with the API: schemathesis (PyPI, installed by
//! `scripts/test-services`) fuzzes every operation of each service's OpenAPI document, served by
//! the gateway at `/api-docs/{service}`, against the embedded server, with `--checks all`, a fixed
//! seed and a bounded number of examples. Each document has its own settings file beside this
//! one (`schemathesis/<service>.toml`) naming the few rules JSON Schema cannot state.
//!
//! Takes about three minutes in a debug build on two busy cores (one run per document, in turn).
//! A missing schemathesis fails the test: it never skips.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use pms_e2e::{ServerProcess, free_port};

use crate::scenario::Api;

/// Examples per operation and phase: enough to reach every status the documents list, bounded
/// for CI.
const MAX_EXAMPLES: &str = "30";

/// The schemathesis executable: `$PMS_TEST_SCHEMATHESIS` (what `scripts/test-services` prints),
/// else `schemathesis` on the `PATH`.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("PMS_TEST_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("schemathesis"));
    let found = Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "schemathesis is not installed ({}): run `eval \"$(scripts/test-services)\"`, which \
         installs it and sets PMS_TEST_SCHEMATHESIS",
        path.display()
    );
    path
}

#[tokio::test]
async fn schemathesis_finds_no_failure_in_any_api_document() {
    let schemathesis = schemathesis();
    let port = free_port();
    let password = format!("Fuzz-{}", uuid::Uuid::new_v4().simple());
    let mut server = ServerProcess::spawn(
        "fuzzed",
        &["--ephemeral"],
        &[
            ("PMS_GATEWAY__PORT", port.to_string()),
            ("PMS_ADMIN_PASSWORD", password.clone()),
        ],
    );
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    server.wait_ready(&api.base, Duration::from_secs(60)).await;
    let settings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("e2e/schemathesis");
    let work = tempfile::tempdir().expect("temp dir");

    let mut failures = Vec::new();
    // Auth last: it rotates signing keys and creates users, which the others need not see.
    for service in ["patient", "billing", "analytics", "auth"] {
        // A deleted patient's history stays readable by design (see `schemathesis/patient.toml`).
        let excluded: &[&str] = match service {
            "patient" => &["--exclude-checks", "use_after_free"],
            _ => &[],
        };
        // A fresh token per document: none outlives its access-token lifetime.
        let token = api.login("admin@pms.local", &password).await["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let started = Instant::now();
        let mut command = Command::new(&schemathesis);
        command
            .arg("--config-file")
            .arg(settings.join(format!("{service}.toml")))
            .args(["run", &api.url(&format!("/api-docs/{service}"))])
            .args([
                "--checks",
                "all",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                "1",
            ])
            .args(excluded)
            .args(["--generation-database", "none", "--no-color"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .current_dir(work.path());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("run schemathesis");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary = stdout
            .lines()
            .rev()
            .find(|l| l.contains(" in "))
            .unwrap_or("");
        eprintln!(
            "schemathesis {service}: {summary} ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        if !output.status.success() {
            failures.push(format!(
                "--- schemathesis on /api-docs/{service} exited with {}:\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n--- server log (tail):\n{}",
        failures.join("\n"),
        tail(&server.stderr(), 40)
    );
    assert!(server.terminate(Duration::from_secs(20)).await.success());
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
