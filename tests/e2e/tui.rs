//! `pms-tui` end to end: the real binary in a real pseudo-terminal (tmux, private socket)
//! against a real all-in-one `pms-server`: log in, create a patient through the form (after a
//! validation error), find it with `/`, see its PATIENT_CREATED arrive live on the Events tab,
//! record a payment on Billing, open the help, and quit with the terminal restored. Every wait
//! is bounded and fails with the screen as it was. Prints the first-frame time and the RSS.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use pms_cli::api::PatientQuery;
use pms_e2e::binary;
use pms_proto::rest::{CreateInvoiceRequest, InvoiceLineRequest};

use crate::cli::{Backend, Server};

const WAIT: Duration = Duration::from_secs(30);

/// A tmux server of our own (never the user's), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("pms-tui-e2e-{}", uuid::Uuid::new_v4().simple()),
        };
        let size = (width.to_string(), height.to_string());
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &size.0,
            "-y",
            &size.1,
            command,
        ]);
        tmux.run(&["set-option", "-t", "main", "remain-on-exit", "on"]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            // UTF-8 whatever the test's locale: the screen has box drawing and symbols.
            .env("LC_ALL", "C.UTF-8")
            .arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("tmux is required for this test (apt-get install tmux): {e}")
            });
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "main"])
    }

    fn format(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "main", format])
            .trim()
            .to_owned()
    }

    /// Literal text.
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
    }

    /// tmux key names: Enter, Tab, C-s, BSpace, …
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Polls the screen until `check` holds; panics with the screen after [`WAIT`].
    async fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < WAIT,
                "waited {WAIT:?} for {what}; the screen was:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("`{text}`"), |s| s.contains(text))
            .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// Resident set size of a process, in KiB (Linux).
fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn tui_login_create_search_live_event_payment_quit() {
    let server = Server::start(Backend::Sqlite).await;
    let config = tempfile::tempdir().expect("temp dir");
    let tui: PathBuf = binary("pms-tui");
    // The shell records pms-tui's exit status in a file: tmux's own `pane_dead_status` was
    // sometimes never filled in on a loaded machine.
    let status_file = config.path().join("exit-status");
    let command = format!(
        "env -u NO_COLOR -u PMS_TOKEN -u PMS_PROFILE TERM=xterm-256color PMS_CONFIG_DIR={} PMS_TOKEN_STORE=file PMS_SERVER={} {}; echo $? > {}",
        config.path().display(),
        server.base,
        tui.display(),
        status_file.display()
    );
    let started = Instant::now();
    let tmux = Tmux::start(120, 40, &command);

    // Login screen first: there is no session in this config directory.
    tmux.wait_text("Log in").await;
    println!(
        "figure: first frame (login screen) {} ms after start",
        started.elapsed().as_millis()
    );
    tmux.type_text(&server.admin_email);
    tmux.keys(&["Tab"]);
    tmux.type_text(&server.admin_password);
    tmux.keys(&["Enter"]);
    tmux.wait_text("no patients yet").await;
    tmux.wait_text("● live").await;
    assert!(
        config.path().join("config.toml").exists(),
        "the session was stored like `pms login` does"
    );

    // The form: submit empty first, the server's field errors show inline.
    tmux.keys(&["n"]);
    tmux.wait_text("New patient").await;
    tmux.keys(&["C-s"]);
    let screen = tmux.wait_text("error(s)").await;
    assert!(screen.contains("✗"), "field errors are marked:\n{screen}");
    let name = format!(
        "Tuitest {}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let email = format!("{}@pms.test", name.replace(' ', ".")).to_lowercase();
    tmux.type_text(&name); // focus is on the first bad field: name
    tmux.keys(&["Tab"]);
    tmux.type_text(&email);
    tmux.keys(&["Tab"]);
    tmux.type_text("1 Test Street");
    tmux.keys(&["Tab"]);
    tmux.type_text("1990-05-06");
    tmux.keys(&["C-s"]);
    tmux.wait_text(&format!("created {name}")).await;

    // Find it with `/` (server-side search).
    tmux.keys(&["/"]);
    tmux.type_text(&name);
    tmux.keys(&["Enter"]);
    // The list already shows the new patient before the search answers: wait for the search's
    // own header, not just a matching row.
    let searched = format!("search: “{name}”");
    let screen = tmux
        .wait_for("the search result", |s| {
            s.contains(&searched) && s.contains("1 loaded") && s.contains(&name)
        })
        .await;
    assert!(screen.contains(&searched), "{screen}");

    // The live event for that patient on the Events tab.
    let admin = server.admin_client().await;
    let query = PatientQuery {
        q: Some(name.clone()),
        ..PatientQuery::default()
    };
    let patient = admin
        .list_patients(&query, false)
        .await
        .expect("list")
        .items
        .pop()
        .expect("the patient the form created");
    assert_eq!(patient.email, email);
    tmux.keys(&["4"]);
    let id = patient.id.to_string();
    tmux.wait_for("PATIENT_CREATED of the new patient", |s| {
        s.lines()
            .any(|l| l.contains("PATIENT_CREATED") && l.contains(&id))
    })
    .await;

    // A payment on Billing: an issued invoice on the patient's account (made through the API).
    let started_wait = Instant::now();
    let account = loop {
        let accounts = admin
            .billing_accounts(Some(&id), None)
            .await
            .expect("accounts");
        if let Some(account) = accounts.into_iter().next() {
            break account;
        }
        assert!(started_wait.elapsed() < WAIT, "no billing account for {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let invoice = admin
        .create_invoice(
            account.id,
            &CreateInvoiceRequest {
                currency: "USD".into(),
                due_date: None,
                lines: vec![InvoiceLineRequest {
                    description: "Consultation".into(),
                    quantity: 1,
                    unit_price: 12_500,
                }],
            },
            None,
        )
        .await
        .expect("invoice");
    admin
        .invoice_action(invoice.id, "issue", None)
        .await
        .expect("issue");
    tmux.keys(&["2"]);
    tmux.wait_text("1 accounts").await;
    tmux.keys(&["Enter"]);
    tmux.wait_text(&invoice.number).await;
    tmux.keys(&["p"]);
    tmux.wait_text("Record payment").await;
    for _ in 0..8 {
        tmux.keys(&["BSpace"]);
    }
    tmux.type_text("12.50");
    tmux.keys(&["Enter"]);
    tmux.wait_text("payment of 12.50 USD recorded").await;
    let paid = admin.invoice(invoice.id).await.expect("invoice");
    assert_eq!(paid.paid, 1_250, "exactly one payment of 12.50 USD");

    // Help overlay, then quit.
    tmux.keys(&["?"]);
    tmux.wait_text("Keys — ? or Esc closes").await;
    tmux.keys(&["?"]);
    tmux.wait_for("help closed", |s| !s.contains("Keys — ?"))
        .await;
    // The pane runs a shell; pms-tui is its child.
    let shell = tmux.format("#{pane_pid}");
    let children = Command::new("pgrep").args(["-P", &shell]).output();
    let pid = children
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or(shell);
    if let Some(kib) = rss_kib(&pid) {
        println!(
            "figure: pms-tui RSS after the session: {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    tmux.keys(&["q"]);
    let started_quit = Instant::now();
    while tmux.format("#{pane_dead}") != "1" {
        assert!(
            started_quit.elapsed() < WAIT,
            "pms-tui did not exit on q:\n{}",
            tmux.screen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = std::fs::read_to_string(&status_file).unwrap_or_default();
    assert_eq!(
        status.trim(),
        "0",
        "pms-tui's exit status (128+n: killed by signal n); screen:\n{}",
        tmux.screen()
    );
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "0",
        "mouse capture is off"
    );
    let after = tmux.screen();
    assert!(
        !after.contains("1 Patients"),
        "the TUI's screen is gone after exit:\n{after}"
    );
}
