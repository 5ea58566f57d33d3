//! `spawn_app()`: a whole PMS (all-in-one topology) on ephemeral ports with its own data dir or
//! its own fresh PostgreSQL database, plus helpers to log in and create users.

use std::net::SocketAddr;

use pms_proto::rest::{Role, TokenResponse, User};
use pms_server::app::{self, Running, Topology};
use pms_server::config::Settings;
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Which database the app under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Both backends, for tests that must hold on each.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

pub struct TestApp {
    /// Gateway base URL, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    pub auth_addr: SocketAddr,
    pub patient_addr: SocketAddr,
    /// Billing REST (`/billing/...`), on loopback.
    pub billing_addr: SocketAddr,
    /// Billing gRPC, on loopback.
    pub billing_grpc_addr: SocketAddr,
    pub client: reqwest::Client,
    pub admin_email: String,
    pub admin_password: String,
    pub settings: Settings,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

/// `TEST_LOG=1`: the apps' logs at their configured level on stderr. Otherwise their warnings
/// and errors go to the test's captured output, which a failing test prints: the reason behind
/// a 503 (a dependency that timed out, say) is then in the failure report.
fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        pms_server::telemetry::init_logging(&Settings::default().log);
    } else {
        // A second call (every app after the first) is a no-op.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_test_writer()
            .try_init();
    }
}

/// Test settings: port 0, a private data dir, a known admin password.
pub async fn test_settings(backend: Backend, dir: &std::path::Path) -> Settings {
    let mut settings = Settings {
        data_dir: dir.to_owned(),
        ..Settings::default()
    };
    settings.gateway.port = 0;
    // Tests run many apps at once: billing's gRPC on any free port, not 9001.
    settings.billing.grpc_port = 0;
    settings.auth.admin_email = format!("admin-{}@pms.test", uuid::Uuid::new_v4().simple());
    settings.auth.admin_password = Some(SecretString::from(format!(
        "admin-pw-{}",
        uuid::Uuid::new_v4().simple()
    )));
    if backend == Backend::Postgres {
        settings.database.url = Some(SecretString::from(
            pms_server::store::testing::fresh_postgres_url().await,
        ));
        settings.database.max_connections = 5;
    }
    settings
}

/// A whole app on SQLite.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Sqlite).await
}

pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A whole app whose settings `tweak` may change first.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_logging();
    pms_server::telemetry::init_metrics();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(backend, dir.path()).await;
    tweak(&mut settings);
    let running = app::start(Topology::All, settings.clone(), CancellationToken::new())
        .await
        .expect("app starts");
    let gateway = running.gateway.expect("gateway address");
    let admin_password = settings
        .auth
        .admin_password
        .as_ref()
        .map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned())
        .expect("admin password");
    TestApp {
        base: format!("http://{gateway}"),
        auth_addr: running.auth.expect("auth address"),
        patient_addr: running.patient.expect("patient address"),
        billing_addr: running.billing.expect("billing address"),
        billing_grpc_addr: running.billing_grpc.expect("billing gRPC address"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        admin_email: settings.auth.admin_email.clone(),
        admin_password,
        settings,
        running: Some(running),
        _dir: dir,
    }
}

impl TestApp {
    /// Gateway URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs in through the gateway; panics unless 200.
    pub async fn login(&self, email: &str, password: &str) -> TokenResponse {
        let response = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("login request");
        assert_eq!(
            response.status(),
            200,
            "login of {email} failed: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("token response")
    }

    /// An access token of the bootstrap admin.
    pub async fn admin_token(&self) -> String {
        self.login(&self.admin_email, &self.admin_password)
            .await
            .token
    }

    /// Creates a user with `role` (as admin) and returns it with its password and an access token.
    pub async fn user_with_role(&self, role: Role) -> (User, String, String) {
        let admin = self.admin_token().await;
        let email = format!(
            "{}-{}@pms.test",
            role.as_str().to_lowercase(),
            uuid::Uuid::new_v4().simple()
        );
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let response = self
            .client
            .post(self.url("/auth/users"))
            .bearer_auth(&admin)
            .json(&json!({ "email": email, "password": password, "role": role }))
            .send()
            .await
            .expect("create user");
        assert_eq!(
            response.status(),
            201,
            "create user: {}",
            response.text().await.unwrap_or_default()
        );
        let user: User = response.json().await.expect("user body");
        let token = self.login(&email, &password).await.token;
        (user, password, token)
    }

    /// Stops the app gracefully.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
    }
}
