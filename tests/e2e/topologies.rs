//! The same scenario against the three topologies: all-in-one on embedded SQLite, all-in-one on
//! PostgreSQL, and one process per service on PostgreSQL.

use std::time::Duration;

use pms_e2e::{ServerProcess, free_port, fresh_postgres_url};

use crate::scenario::{Api, auth_checks, forged_tokens, patient_lifecycle};

const READY: Duration = Duration::from_secs(60);

fn admin() -> (String, String) {
    (
        format!("admin-{}@pms.test", uuid::Uuid::new_v4().simple()),
        format!("pw-{}", uuid::Uuid::new_v4().simple()),
    )
}

#[tokio::test]
async fn all_in_one_on_embedded_sqlite() {
    let data = tempfile::tempdir().expect("temp dir");
    let (email, password) = admin();
    let port = free_port();
    let mut server = ServerProcess::spawn(
        "pms-server",
        &["--data-dir", &data.path().to_string_lossy()],
        &[
            ("PMS_GATEWAY__PORT", port.to_string()),
            ("PMS_ADMIN_EMAIL", email.clone()),
            ("PMS_ADMIN_PASSWORD", password.clone()),
        ],
    );
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    server.wait_ready(&api.base, READY).await;
    let token = auth_checks(&api, &email, &password).await;
    patient_lifecycle(&api, &token).await;
    assert!(
        data.path().join("patient.db").exists() && data.path().join("auth.db").exists(),
        "embedded databases in the data dir"
    );
    assert!(
        server.terminate(Duration::from_secs(20)).await.success(),
        "graceful exit:\n{}",
        server.stderr()
    );
}

#[tokio::test]
async fn all_in_one_on_postgres() {
    let db = fresh_postgres_url().await;
    let (email, password) = admin();
    let port = free_port();
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProcess::spawn(
        "pms-server",
        &["all", "--data-dir", &data.path().to_string_lossy()],
        &[
            ("PMS_GATEWAY__PORT", port.to_string()),
            ("PMS_DATABASE__URL", db),
            ("PMS_ADMIN_EMAIL", email.clone()),
            ("PMS_ADMIN_PASSWORD", password.clone()),
        ],
    );
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    server.wait_ready(&api.base, READY).await;
    let token = auth_checks(&api, &email, &password).await;
    patient_lifecycle(&api, &token).await;
    assert!(
        !data.path().join("patient.db").exists(),
        "no SQLite file when PostgreSQL is configured"
    );
    assert!(
        server.terminate(Duration::from_secs(20)).await.success(),
        "graceful exit:\n{}",
        server.stderr()
    );
}

#[tokio::test]
async fn one_process_per_service_on_postgres() {
    let db = fresh_postgres_url().await;
    let (email, password) = admin();
    let (auth_port, patient_port, gateway_port, billing_port) =
        (free_port(), free_port(), free_port(), free_port());
    let auth_url = format!("http://127.0.0.1:{auth_port}");
    let patient_url = format!("http://127.0.0.1:{patient_port}");
    let data = tempfile::tempdir().expect("temp dir");
    let data_dir = data.path().to_string_lossy().into_owned();
    let common = |extra: Vec<(&'static str, String)>| {
        let mut env = vec![
            ("PMS_DATABASE__URL", db.clone()),
            ("PMS_AUTH__URL", auth_url.clone()),
            ("PMS_GATEWAY__PATIENT_URL", patient_url.clone()),
            // No billing process here: patient creation must still succeed.
            (
                "PMS_PATIENT__BILLING_GRPC_URL",
                format!("http://127.0.0.1:{billing_port}"),
            ),
        ];
        env.extend(extra);
        env
    };
    let mut auth = ServerProcess::spawn(
        "auth",
        &["auth", "--data-dir", &data_dir],
        &common(vec![
            ("PMS_AUTH__PORT", auth_port.to_string()),
            ("PMS_ADMIN_EMAIL", email.clone()),
            ("PMS_ADMIN_PASSWORD", password.clone()),
        ]),
    );
    auth.wait_ready(&auth_url, READY).await;
    let mut patient = ServerProcess::spawn(
        "patient",
        &["patient", "--data-dir", &data_dir],
        &common(vec![("PMS_PATIENT__PORT", patient_port.to_string())]),
    );
    patient.wait_ready(&patient_url, READY).await;
    let mut gateway = ServerProcess::spawn(
        "gateway",
        &["gateway", "--data-dir", &data_dir],
        &common(vec![("PMS_GATEWAY__PORT", gateway_port.to_string())]),
    );
    let api = Api::new(format!("http://127.0.0.1:{gateway_port}"));
    gateway.wait_ready(&api.base, READY).await;

    let token = auth_checks(&api, &email, &password).await;
    patient_lifecycle(&api, &token).await;

    // The patient service verifies tokens itself: reaching its port is not enough.
    let client = reqwest::Client::new();
    let direct = format!("{patient_url}/patients");
    assert_eq!(
        client.get(&direct).send().await.expect("send").status(),
        401,
        "no token at the service port"
    );
    for (what, forged) in forged_tokens(&token) {
        let response = client
            .get(&direct)
            .bearer_auth(&forged)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401, "{what} token at the service port");
    }
    assert_eq!(
        client
            .get(&direct)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send")
            .status(),
        200,
        "valid token at the service port"
    );

    for process in [&mut gateway, &mut patient, &mut auth] {
        let status = process.terminate(Duration::from_secs(20)).await;
        assert!(
            status.success(),
            "{} exits cleanly on SIGTERM:\n{}",
            process.name,
            process.stderr()
        );
    }
}
