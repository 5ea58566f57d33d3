//! Process behaviour: first-start admin password, persistence across restarts, graceful
//! shutdown, configuration errors.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pms_e2e::{ServerProcess, binary, free_port};

use crate::scenario::Api;

#[tokio::test]
async fn first_start_generates_the_admin_password_once_and_data_survives_restarts() {
    let data = tempfile::tempdir().expect("temp dir");
    let data_dir = data.path().to_string_lossy().into_owned();
    let port = free_port();
    let env = [("PMS_GATEWAY__PORT", port.to_string())];
    let api = Api::new(format!("http://127.0.0.1:{port}"));

    let mut first = ServerProcess::spawn("first", &["--data-dir", &data_dir], &env);
    first.wait_ready(&api.base, Duration::from_secs(60)).await;
    let file = data.path().join("admin-password");
    let password = std::fs::read_to_string(&file)
        .expect("admin-password file")
        .trim()
        .to_owned();
    assert!(password.len() >= 16, "a strong generated password");
    assert_eq!(
        std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777,
        0o600,
        "mode 0600"
    );
    assert_eq!(
        first.stderr().matches(&password).count(),
        1,
        "printed exactly once"
    );
    let token = api.login("admin@pms.local", &password).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let email = format!("persist-{}@example.com", uuid::Uuid::new_v4().simple());
    let created = api
        .client
        .post(api.url("/api/patients"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "Persistent Pat", "email": email, "address": "x", "dateOfBirth": "1980-01-01", "registeredDate": "2024-01-01" }))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(
        first.terminate(Duration::from_secs(20)).await.success(),
        "graceful exit:\n{}",
        first.stderr()
    );

    let mut second = ServerProcess::spawn("second", &["--data-dir", &data_dir], &env);
    second.wait_ready(&api.base, Duration::from_secs(60)).await;
    assert!(
        !second.stderr().contains(&password),
        "the password is never printed again"
    );
    let token = api.login("admin@pms.local", &password).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let got = api
        .client
        .get(api.url(&format!("/api/patients/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), 200, "the patient survived the restart");
    assert!(second.terminate(Duration::from_secs(20)).await.success());
}

#[tokio::test]
async fn invalid_configuration_fails_fast_naming_the_key() {
    for (key, value, expected) in [
        (
            "PMS_AUTH__ACCESS_TOKEN_TTL_SECS",
            "3600",
            "auth.access_token_ttl_secs",
        ),
        ("PMS_DATABASE__URLL", "postgres://x", "urll"),
        ("PMS_GATEWAY__PORT", "not-a-port", "gateway.port"),
        ("PMS_DATABASE__URL", "mysql://x", "database.url"),
        // Typed values: figment names the key (and the variable) of a value of the wrong form.
        (
            "PMS_GATEWAY__PATIENT_URL",
            "patient:4000",
            "`gateway.patient_url` (PMS_GATEWAY__PATIENT_URL): must be an http:// or https:// URL",
        ),
        (
            "PMS_HTTP__REQUEST_TIMEOUT_SECS",
            "30s",
            "`http.request_timeout_secs` (PMS_HTTP__REQUEST_TIMEOUT_SECS)",
        ),
        (
            "PMS_AUTH__BIND",
            "0.0.0.0:4005",
            "`auth.bind` (PMS_AUTH__BIND)",
        ),
        (
            "PMS_HTTP__TRUSTED_PROXIES",
            "10.0.0.0/8,proxy.local",
            "`http.trusted_proxies` (PMS_HTTP__TRUSTED_PROXIES): `proxy.local` is not an IP network",
        ),
    ] {
        let mut server =
            ServerProcess::spawn("bad-config", &["--ephemeral"], &[(key, value.to_owned())]);
        let status = server.wait_exit(Duration::from_secs(20)).await;
        assert_eq!(
            status.code(),
            Some(2),
            "{key}={value} exits 2:\n{}",
            server.stderr()
        );
        assert!(
            server.stderr().contains(expected),
            "{key}: the message names `{expected}`:\n{}",
            server.stderr()
        );
    }
}

#[test]
fn default_config_prints_every_section() {
    let output = std::process::Command::new(binary("pms-server"))
        .arg("default-config")
        .output()
        .expect("run");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("utf-8");
    for section in [
        "[log]",
        "[http]",
        "[database]",
        "[gateway]",
        "[auth]",
        "[patient]",
        "[billing]",
    ] {
        assert!(text.contains(section), "default-config has {section}");
    }
}
