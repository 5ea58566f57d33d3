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
