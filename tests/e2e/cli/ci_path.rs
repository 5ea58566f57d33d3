//! The CI path: only `PMS_SERVER` and `PMS_TOKEN`, no terminal, no login. Create, list and
//! delete patients relying on JSON and exit codes (3 missing, 4 bad token, 6 server stopped),
//! and nothing is ever written to disk.

use std::time::Duration;

use super::{Backend, Pms, Server, patient_json};

async fn ci_script(backend: Backend) {
    let mut server = Server::start(backend).await;
    let mut pms = Pms::new();
    pms.unset("PMS_TOKEN_STORE")
        .set("PMS_SERVER", &server.base)
        .set("PMS_TOKEN", server.admin_token().await);

    let body = patient_json("Casey Ci");
    let body_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(body_file.path(), body.to_string()).expect("write");
    let created = pms
        .run(
            &[
                "patients",
                "create",
                "--from-file",
                &body_file.path().to_string_lossy(),
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["email"], body["email"]);
    // Flags work as well as files, and `-` reads the body from stdin.
    let second = pms
        .run(
            &[
                "patients",
                "create",
                "--from-file",
                "-",
                "--name",
                "Casey Two",
                "-o",
                "json",
            ],
            Some(&patient_json("Ignored Name").to_string()),
        )
        .expect(0)
        .json();
    assert_eq!(second["name"], "Casey Two", "flags override the file");

    let list = pms
        .run(&["patients", "list", "-o", "json", "--all"], None)
        .expect(0)
        .json();
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&second["id"].as_str().expect("id")),
        "{list}"
    );

    pms.run(&["patients", "get", &id], None).expect(0);
    pms.run(&["patients", "delete", &id, "--yes"], None)
        .expect(0);
    let missing = pms.run(&["patients", "get", &id], None).expect(3);
    assert_eq!(
        missing.stderr.trim(),
        format!("error: patient {id} not found")
    );
    assert!(missing.stdout.is_empty(), "stdout carries data only");

    pms.set("PMS_TOKEN", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln");
    let bad = pms.run(&["patients", "list"], None).expect(4);
    assert!(
        bad.stderr.contains("the token in PMS_TOKEN was rejected"),
        "{bad:?}"
    );

    assert!(
        server
            .process
            .terminate(Duration::from_secs(20))
            .await
            .success()
    );
    let down = pms.run(&["patients", "list"], None).expect(6);
    assert!(
        down.stderr
            .contains(&format!("cannot reach {}", server.base)),
        "{down:?}"
    );
    assert!(down.stderr.contains("is the server running?"), "{down:?}");
    assert_eq!(down.stderr.lines().count(), 1, "one line: {down:?}");

    assert!(
        pms.files().is_empty(),
        "PMS_TOKEN is never written anywhere: {:?}",
        pms.files()
    );
    drop(server);
}

#[tokio::test]
async fn ci_script_with_pms_token_on_sqlite() {
    ci_script(Backend::Sqlite).await;
}

#[tokio::test]
async fn ci_script_with_pms_token_on_postgres() {
    ci_script(Backend::Postgres).await;
}

#[tokio::test]
async fn the_ci_recipe_in_a_shell_with_jq() {
    // The README's recipe, run by a real shell without a terminal.
    let server = Server::start(Backend::Sqlite).await;
    let token = server.admin_token().await;
    let pms = pms_e2e::binary("pms");
    let config = tempfile::tempdir().expect("temp dir");
    let script = r#"
set -u
id=$("$PMS" patients create --name "Robin Script" --email "robin-$(date +%s%N)@example.com" \
      --address "1 Main St" --date-of-birth 1990-04-01 -o json | jq -r .id) || exit 10
"$PMS" patients list -o json --all | jq -e --arg id "$id" 'any(.[]; .id == $id)' >/dev/null || exit 11
"$PMS" patients delete "$id" --yes || exit 12
"$PMS" patients get "$id" >/dev/null 2>&1; [ $? -eq 3 ] || exit 13
PMS_TOKEN=bad "$PMS" patients list >/dev/null 2>&1; [ $? -eq 4 ] || exit 14
echo ok
"#;
    let has_jq = std::process::Command::new("sh")
        .args(["-c", "command -v jq"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_jq,
        "jq is missing: apt-get install -y jq (.ci/run installs it)"
    );
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PMS", &pms)
        .env("PMS_SERVER", &server.base)
        .env("PMS_TOKEN", &token)
        .env("PMS_CONFIG_DIR", config.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "exit {:?}, stderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_dir(config.path())
            .expect("dir")
            .next()
            .is_none(),
        "nothing written"
    );
}
