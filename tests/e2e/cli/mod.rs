//! The `pms` CLI end to end: the real binary against real `pms-server` processes (embedded
//! SQLite and PostgreSQL), with real session stores (file, kernel keyutils, Secret Service).
//!
//! Every `pms` run gets a clean environment: no inherited `PMS_*`, its own config directory, no
//! terminal on stdin, and a unique profile (the kernel keyring is shared by every test).

mod billing;
mod ci_path;
mod endpoints;
mod exit_codes;
mod keyrings;
mod private_files;
mod request;
mod session;
mod shapes;
mod tail;
mod throttle;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pms_e2e::{ServerProcess, binary, free_port, fresh_postgres_url};
use serde_json::Value;

pub const READY: Duration = Duration::from_secs(60);

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running all-in-one server with a known admin.
pub struct Server {
    pub process: ServerProcess,
    pub base: String,
    pub admin_email: String,
    pub admin_password: String,
    pub data: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Server {
    /// Starts `pms-server all` on a free port and waits until it is ready.
    pub async fn start(backend: Backend) -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let admin_email = format!("admin-{}@pms.test", uuid::Uuid::new_v4().simple());
        let admin_password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let mut env = vec![
            ("PMS_GATEWAY__PORT", port.to_string()),
            ("PMS_ADMIN_EMAIL", admin_email.clone()),
            ("PMS_ADMIN_PASSWORD", admin_password.clone()),
        ];
        if backend == Backend::Postgres {
            env.push(("PMS_DATABASE__URL", fresh_postgres_url().await));
        }
        let data_dir = data.path().to_string_lossy().into_owned();
        let mut process =
            ServerProcess::spawn("pms-server", &["all", "--data-dir", &data_dir], &env);
        let base = format!("http://127.0.0.1:{port}");
        process.wait_ready(&base, READY).await;
        Server {
            process,
            base,
            admin_email,
            admin_password,
            data,
            env,
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same port and data.
    pub async fn restart(&mut self) {
        assert!(
            self.process
                .terminate(Duration::from_secs(20))
                .await
                .success(),
            "graceful exit:\n{}",
            self.process.stderr()
        );
        let data_dir = self.data.path().to_string_lossy().into_owned();
        self.process =
            ServerProcess::spawn("pms-server", &["all", "--data-dir", &data_dir], &self.env);
        self.process.wait_ready(&self.base, READY).await;
    }

    /// An access token for the admin, straight from the API.
    pub async fn admin_token(&self) -> String {
        let client =
            pms_cli::ApiClient::new(&self.base, pms_cli::api::Credentials::None).expect("client");
        client
            .login(&self.admin_email, &self.admin_password)
            .await
            .expect("admin login")
            .token
    }

    /// An authenticated `pms_cli::ApiClient` for the admin.
    pub async fn admin_client(&self) -> pms_cli::ApiClient {
        let token = self.admin_token().await;
        pms_cli::ApiClient::new(&self.base, pms_cli::api::Credentials::Token(token))
            .expect("client")
    }
}

/// What a `pms` run did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self:?}"))
    }

    /// Asserts the exit code, showing everything on failure.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A `pms` user: a config directory, a profile, and environment variables.
pub struct Pms {
    pub config: tempfile::TempDir,
    pub profile: String,
    pub env: Vec<(String, String)>,
    /// Run under this umask (through `sh`), e.g. `000`.
    pub umask: Option<&'static str>,
}

impl Pms {
    /// A fresh user with its own config dir and a unique profile; sessions in files unless the
    /// test says otherwise.
    pub fn new() -> Pms {
        let config = tempfile::tempdir().expect("temp dir");
        // Like the directory `pms` itself creates (a looser one is fixed with a warning).
        std::fs::set_permissions(
            config.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod");
        Pms {
            config,
            profile: format!("e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            env: vec![("PMS_TOKEN_STORE".into(), "file".into())],
            umask: None,
        }
    }

    /// Sets (or replaces) an environment variable for every later run.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Pms {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Removes a variable set with [`Pms::set`].
    pub fn unset(&mut self, key: &str) -> &mut Pms {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        self.config.path()
    }

    /// The session file of this profile (file store).
    pub fn session_file(&self) -> PathBuf {
        self.dir()
            .join("sessions")
            .join(format!("{}.json", self.profile))
    }

    /// Runs `pms <args>` with `stdin` (none: an empty, non-terminal stdin).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut command = match self.umask {
            None => Command::new(binary("pms")),
            Some(umask) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
                    .arg(binary("pms"));
                sh
            }
        };
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars() {
            if key.starts_with("PMS_") || key == "NO_COLOR" || key == "DBUS_SESSION_BUS_ADDRESS" {
                command.env_remove(key);
            }
        }
        command
            .env("PMS_CONFIG_DIR", self.dir())
            .env("PMS_PROFILE", &self.profile);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn pms");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        let output = child.wait_with_output().expect("wait pms");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `pms login` as the server's admin, password on stdin.
    pub fn login(&self, server: &Server) -> Run {
        self.run(
            &[
                "login",
                "--server",
                &server.base,
                "--email",
                &server.admin_email,
                "--password-stdin",
            ],
            Some(&format!("{}\n", server.admin_password)),
        )
    }

    /// Every file under the config directory (relative paths, sorted).
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(
                        path.strip_prefix(self.dir())
                            .expect("prefix")
                            .display()
                            .to_string(),
                    );
                }
            }
        }
        out.sort();
        out
    }
}

/// A patient body for `--from-file` / the API with a unique email.
pub fn patient_json(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "email": format!("{}-{}@example.com", name.to_lowercase().replace(' ', "."), uuid::Uuid::new_v4().simple()),
        "address": "1 Main St",
        "dateOfBirth": "1990-04-01",
        "registeredDate": "2024-11-28"
    })
}

/// The sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Where the workspace's `api-requests/` folder is.
pub fn api_requests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../api-requests")
}

/// A port nobody listens on.
pub fn dead_server() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A plain HTTP listener on loopback that records every request it gets (request line and
/// headers, as raw text) and answers `200 {}`: "another origin" for credential tests.
pub struct Recorder {
    pub port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind(("127.0.0.1", free_port())).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                log.lock().expect("lock").push(head);
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                );
            }
        });
        Recorder { port, seen }
    }

    /// Every request so far (request line and headers).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}
