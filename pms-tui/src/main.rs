//! `pms-tui`: finds the session like `pms` does (`PMS_TOKEN`, else the profile's stored
//! session; `--profile`, `--server`), enters the terminal UI and restores the terminal on
//! every exit path. Without a session it opens on the login screen.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use clap::Parser;
use pms_cli::Error;
use pms_cli::config::EnvSnapshot;
use pms_cli::session::Context;
use pms_tui::app::App;
use pms_tui::theme::Theme;
use pms_tui::tui::TerminalGuard;
use pms_tui::{Warnings, worker};

/// pms-tui — patients, billing, analytics, live events and admin in one terminal screen.
///
/// Uses the same server, profile and session as `pms` (log in here or with `pms login`).
/// Keys: 1–5 tabs, ? help, : commands, q quit.
#[derive(Debug, Parser)]
#[command(name = "pms-tui", version)]
struct Args {
    /// Profile: a named server and session [default: default].
    #[arg(long, env = "PMS_PROFILE", value_name = "NAME")]
    profile: Option<String>,
    /// Gateway URL [default: the profile's, else http://127.0.0.1:4004].
    #[arg(long, env = "PMS_SERVER", value_name = "URL")]
    server: Option<String>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pms-tui: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err("needs a terminal (stdin and stdout); for scripts use `pms`".into());
    }
    let env = EnvSnapshot::from_process();
    let theme = Theme::new(env.no_color);
    let warnings: Warnings = Arc::new(Mutex::new(Vec::new()));
    let sink = warnings.clone();
    let warn: pms_cli::session::Warn = Arc::new(move |text: &str| {
        if let Ok(mut w) = sink.lock() {
            w.push(text.to_owned());
        }
    });
    let ctx = Context::new(env, args.profile, args.server, warn).map_err(|e| e.to_string())?;
    let client = match ctx.client() {
        Ok((client, _)) => Some(client),
        Err(Error::NotLoggedIn { .. } | Error::ServerMismatch { .. }) => None,
        Err(e) => return Err(e.to_string()),
    };
    let server = client
        .as_ref()
        .map(|c| c.base().to_owned())
        .unwrap_or_else(|| ctx.server());
    let last_email = ctx.profile_settings().email;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(async move {
        let (answers_tx, answers) = tokio::sync::mpsc::unbounded_channel();
        let logged_in = client.is_some();
        let requests = worker::spawn(ctx, client, answers_tx);
        let app = App::new(theme, server, logged_in, last_email);
        let mut guard = TerminalGuard::enter()?;
        let result = pms_tui::run(&mut guard, app, requests, answers, warnings).await;
        drop(guard);
        result
    });
    // A keyring call cut off by its timeout may still hold a thread: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result.map_err(|e| format!("terminal error: {e}"))
}
