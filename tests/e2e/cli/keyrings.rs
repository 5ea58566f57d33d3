//! Real OS keyrings: the kernel keyutils store (no D-Bus, the usual headless case), a real
//! Secret Service (gnome-keyring on a private D-Bus), and `PMS_TOKEN_STORE=keyring` with no
//! usable keyring (fails, writes nothing).

use std::process::{Command, Stdio};

use super::{Backend, Pms, Server};

/// A D-Bus address where nothing listens: the Secret Service is unreachable.
const NO_BUS: &str = "unix:path=/nonexistent/pms-e2e-bus";

#[tokio::test]
async fn keyutils_holds_the_session_when_there_is_no_secret_service() {
    let server = Server::start(Backend::Sqlite).await;
    let mut pms = Pms::new();
    pms.unset("PMS_TOKEN_STORE")
        .set("DBUS_SESSION_BUS_ADDRESS", NO_BUS);
    let login = pms.login(&server).expect(0);
    assert!(login.stderr.contains("OS keyring (keyutils)"), "{login:?}");
    assert!(
        !login.stderr.contains("warning"),
        "no fallback warning: {login:?}"
    );
    assert!(!pms.session_file().exists(), "no plain-text file");
    assert_eq!(
        pms.files(),
        ["config.toml"],
        "only the (secret-free) config"
    );
    let config = std::fs::read_to_string(pms.dir().join("config.toml")).expect("config");
    assert!(config.contains("token_store = \"keyutils\""), "{config}");
    // Another process (its own session keyring) finds it through the persistent keyring.
    let status = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(status["store"], "keyutils");
    assert_eq!(status["source"], "keyring");
    assert_eq!(status["verified"], true);
    pms.run(&["whoami"], None).expect(0);
    pms.run(&["logout"], None).expect(0);
    let after = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(4)
        .json();
    assert_eq!(after["loggedIn"], false, "removed from the kernel keyring");
}

#[tokio::test]
async fn keyring_only_mode_without_a_keyring_fails_clearly_and_writes_nothing() {
    let server = Server::start(Backend::Sqlite).await;
    let mut pms = Pms::new();
    pms.set("PMS_TOKEN_STORE", "keyring")
        .set("PMS_KEYRING_BACKEND", "secret-service")
        .set("DBUS_SESSION_BUS_ADDRESS", NO_BUS);
    let login = pms.login(&server).expect(1);
    let line = login.stderr.trim();
    assert!(
        line.starts_with("error: no usable OS keyring (secret-service:"),
        "{login:?}"
    );
    assert!(line.contains("nothing was written"), "{login:?}");
    assert!(
        line.contains("PMS_TOKEN_STORE=file"),
        "says how to allow a file: {login:?}"
    );
    assert_eq!(line.lines().count(), 1, "one line: {login:?}");
    assert!(pms.files().is_empty(), "no file at all: {:?}", pms.files());
    // In auto mode the same machine falls back to a 0600 file, loudly.
    pms.set("PMS_TOKEN_STORE", "auto");
    let fallback = pms.login(&server).expect(0);
    assert!(
        fallback.stderr.contains("warning: no usable OS keyring"),
        "{fallback:?}"
    );
    assert!(
        fallback
            .stderr
            .contains("PMS_TOKEN_STORE=keyring to forbid this"),
        "{fallback:?}"
    );
    assert!(pms.session_file().exists());
    let status = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(status["store"], "file");
}

/// A private session bus with an unlocked gnome-keyring on it; both go away on drop.
struct SecretService {
    bus: String,
    dbus_pid: u32,
    _dirs: tempfile::TempDir,
}

impl SecretService {
    fn start() -> SecretService {
        for tool in ["dbus-daemon", "gnome-keyring-daemon"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "{tool} is missing: install it with `apt-get install -y --no-install-recommends gnome-keyring` (.ci/run does)"
            );
        }
        let dirs = tempfile::tempdir().expect("temp dir");
        let runtime = dirs.path().join("run");
        let data = dirs.path().join("data");
        std::fs::create_dir_all(&runtime).expect("mkdir");
        std::fs::create_dir_all(&data).expect("mkdir");
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .env("XDG_RUNTIME_DIR", &runtime)
            .stderr(Stdio::null())
            .output()
            .expect("dbus-daemon");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let bus = lines.next().expect("bus address").trim().to_owned();
        let dbus_pid: u32 = lines.next().expect("pid").trim().parse().expect("pid");
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", &data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon");
        {
            use std::io::Write;
            let mut stdin = keyring.stdin.take().expect("stdin");
            stdin
                .write_all(b"e2e-keyring-password")
                .expect("unlock password");
        }
        // The launcher exits once the daemon runs in the background.
        assert!(
            keyring.wait().expect("wait").success(),
            "gnome-keyring-daemon did not start"
        );
        SecretService {
            bus,
            dbus_pid,
            _dirs: dirs,
        }
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        // gnome-keyring leaves with its bus.
        let _ = Command::new("kill").arg(self.dbus_pid.to_string()).status();
    }
}

#[tokio::test]
async fn a_real_secret_service_holds_the_session() {
    let secrets = SecretService::start();
    let server = Server::start(Backend::Sqlite).await;
    let mut pms = Pms::new();
    pms.unset("PMS_TOKEN_STORE")
        .set("DBUS_SESSION_BUS_ADDRESS", &secrets.bus);
    let login = pms.login(&server).expect(0);
    assert!(
        login.stderr.contains("OS keyring (secret-service)"),
        "{login:?}"
    );
    assert_eq!(pms.files(), ["config.toml"], "no plain-text file");
    let status = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(status["store"], "secret-service");
    assert_eq!(status["email"], server.admin_email.as_str());
    assert_eq!(status["verified"], true);
    pms.run(&["patients", "list", "-o", "json"], None).expect(0);
    let logout = pms.run(&["logout"], None).expect(0);
    assert!(
        logout.stderr.contains("OS keyring (secret-service)"),
        "removed from it: {logout:?}"
    );
    let after = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(4)
        .json();
    assert_eq!(after["loggedIn"], false);
}

/// Two users of one OS account: the same profile name in two config directories.
fn same_profile_elsewhere(a: &Pms) -> Pms {
    let mut b = Pms::new();
    b.profile = a.profile.clone();
    b.env = a.env.clone();
    b
}

async fn logout_in_one_config_dir_keeps_the_other(bus: &str, store: &str) {
    let server = Server::start(Backend::Sqlite).await;
    let mut a = Pms::new();
    a.unset("PMS_TOKEN_STORE")
        .set("DBUS_SESSION_BUS_ADDRESS", bus);
    let b = same_profile_elsewhere(&a);
    a.login(&server).expect(0);
    b.login(&server).expect(0);
    let logout = a.run(&["logout"], None).expect(0);
    assert!(
        logout.stderr.contains(&format!("OS keyring ({store})")),
        "{logout:?}"
    );
    let gone = a
        .run(&["auth", "status", "-o", "json"], None)
        .expect(4)
        .json();
    assert_eq!(gone["loggedIn"], false);
    let kept = b
        .run(&["auth", "status", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(kept["store"], store, "{kept}");
    assert_eq!(
        kept["verified"], true,
        "the other config dir's session is intact"
    );
    b.run(&["patients", "list", "-o", "json"], None).expect(0);
    b.run(&["logout"], None).expect(0);
}

#[tokio::test]
async fn keyutils_logout_under_one_config_dir_leaves_another_intact() {
    logout_in_one_config_dir_keeps_the_other(NO_BUS, "keyutils").await;
}

#[tokio::test]
async fn secret_service_logout_under_one_config_dir_leaves_another_intact() {
    let secrets = SecretService::start();
    logout_in_one_config_dir_keeps_the_other(&secrets.bus, "secret-service").await;
}

#[tokio::test]
async fn an_entry_named_the_old_way_is_migrated_on_first_read() {
    use pms_cli::credentials::{KEYRING_SERVICE, Session, keyring};
    let server = Server::start(Backend::Sqlite).await;
    let mut pms = Pms::new();
    pms.unset("PMS_TOKEN_STORE")
        .set("DBUS_SESSION_BUS_ADDRESS", NO_BUS);
    // What an earlier `pms login` left: the session under the bare profile name, pinned.
    let tokens = pms_cli::ApiClient::new(&server.base, pms_cli::api::Credentials::None)
        .expect("client")
        .login(&server.admin_email, &server.admin_password)
        .await
        .expect("login");
    let session = Session {
        server: server.base.clone(),
        email: server.admin_email.clone(),
        role: None,
        access_token: tokens.token,
        refresh_token: tokens.refresh_token,
        expires_at: pms_cli::api::expires_at(tokens.expires_in),
    };
    let keyutils = keyring::platform_backends()
        .into_iter()
        .find(|b| b.name() == "keyutils")
        .expect("keyutils backend");
    let timeout = std::time::Duration::from_secs(10);
    keyutils
        .set(
            KEYRING_SERVICE,
            &pms.profile,
            &serde_json::to_string(&session).expect("json"),
            timeout,
        )
        .expect("old-style entry");
    std::fs::write(
        pms.dir().join("config.toml"),
        format!(
            "[profiles.{}]\nserver = \"{}\"\nemail = \"{}\"\ntoken_store = \"keyutils\"\n",
            pms.profile, server.base, server.admin_email
        ),
    )
    .expect("config");
    let status = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(status["store"], "keyutils", "{status}");
    assert_eq!(status["verified"], true);
    assert_eq!(
        keyutils.get(KEYRING_SERVICE, &pms.profile, timeout),
        Ok(None),
        "the old name is gone"
    );
    // Later processes read it under its new name.
    pms.run(&["whoami"], None).expect(0);
    pms.run(&["logout"], None).expect(0);
    let after = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(4)
        .json();
    assert_eq!(after["loggedIn"], false);
}
