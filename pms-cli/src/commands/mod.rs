//! The command tree of `pms` (clap derive; doc comments are the help text) and what every
//! command shares: the resolved [`Context`], the output style, and stdout/stderr helpers
//! (stdout carries data only; notes, warnings and errors go to stderr).

mod analytics;
mod audit;
mod auth;
mod billing;
mod completion;
mod events;
mod help;
mod login;
mod logout;
mod man;
mod patients;
pub mod present;
mod prompt;
mod request;
mod tui;
mod users;
mod whoami;

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use pms_cli::config::EnvSnapshot;
use pms_cli::output::{Format, Style};
use pms_cli::session::Context;
use pms_cli::{ApiClient, Error, Result};

/// The PMS command line: sessions, patients, billing, users, audit, live events, request files.
///
/// Log in once (`pms login`); the session is kept in the OS keyring and refreshed as needed.
/// In CI, set PMS_SERVER and PMS_TOKEN instead: they override everything and are never stored.
#[derive(Debug, Parser)]
#[command(
    name = "pms",
    version,
    disable_help_subcommand = true,
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 auth, 5 rejected, 6 unreachable (`pms help exit-codes`).\nEnvironment: `pms help environment`."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Profile: a named server and session (see `pms help environment`) [default: default].
    #[arg(long, global = true, env = "PMS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Gateway URL [default: the profile's, else http://127.0.0.1:4004]. Without a scheme,
    /// http:// for this machine (localhost, 127.0.0.1, ::1) and https:// for any other host;
    /// plain http:// to another host works but warns.
    #[arg(long, global = true, env = "PMS_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Output format: table (default: the main columns, fitted to the terminal), wide (every
    /// column), json (stable shapes) or csv (lists, every column).
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,
    /// The columns of tables and CSV, in order: names as in the JSON (`mrn,name,phone`).
    #[arg(long, global = true, value_name = "A,B,C", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// With -o json, print a list as {"items": [...], "next": CURSOR} instead of an array;
    /// `next` (null on the last page) goes to --cursor (--after for `analytics events`).
    #[arg(long, global = true)]
    pub page_info: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in and store the session in the OS keyring.
    Login(login::LoginArgs),
    /// Revoke the session on the server and remove it from this machine.
    Logout,
    /// Show who the current token belongs to.
    Whoami,
    /// Session details: status, token, password; the auth audit log.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Patients: list, get, create, update, delete, history, deleted, restore.
    #[command(subcommand)]
    Patients(patients::PatientsCommand),
    /// Billing: accounts, invoices, payments, statements (amounts like 45.00).
    #[command(subcommand)]
    Billing(billing::BillingCommand),
    /// User accounts (ADMIN): list, get, create, update.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// The patient audit log (ADMIN): who read or changed what; filters by patient, actor,
    /// action and time.
    Audit(audit::AuditArgs),
    /// Analytics: summary figures, registrations over time, stored events.
    #[command(subcommand)]
    Analytics(analytics::AnalyticsCommand),
    /// Live events: tail the event stream.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Run `.http` request files (requests, captures, `??` assertions).
    Request(request::RequestArgs),
    /// The interactive terminal UI (runs `pms-tui` with the same profile and server).
    Tui,
    /// Print a shell completion script: bash, zsh, fish, powershell, elvish.
    Completion(completion::CompletionArgs),
    /// Print the man page (roff): `pms man > pms.1`; `pms man --dir DIR` writes every page.
    Man(man::ManArgs),
    /// Help on a command or a topic: `pms help exit-codes`, `pms help environment`.
    Help(help::HelpArgs),
}

/// What a running command has at hand.
pub struct App {
    pub ctx: Context,
    pub style: Style,
    /// stdin is a terminal (prompts allowed).
    pub stdin_tty: bool,
    /// `--page-info`: lists are `{"items", "next"}` objects (JSON only).
    pub page_info: bool,
}

impl App {
    /// An authenticated client (`PMS_TOKEN`, else the stored session).
    pub fn client(&self) -> Result<ApiClient> {
        Ok(self.ctx.client()?.0)
    }

    /// Writes data to stdout (a closed pipe surfaces as a broken-pipe error: exit 0).
    pub fn print(&self, text: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("writing to stdout", e))
    }

    /// Prints a list: an array (`-o json`), a `{"items", "next"}` object with `--page-info`, or
    /// a table / CSV. `next` is the next page's cursor.
    pub fn print_page<T: serde::Serialize + pms_cli::output::Tabular>(
        &self,
        items: &[T],
        next: Option<String>,
    ) -> Result<()> {
        if self.style.format == Format::Json {
            return self.print_json_page(items, next);
        }
        self.print(&pms_cli::output::list(items, self.style)?)
    }

    /// The JSON of [`Self::print_page`]: an array, or with `--page-info` `{"items", "next"}`.
    pub fn print_json_page<T: serde::Serialize>(
        &self,
        items: &[T],
        next: Option<String>,
    ) -> Result<()> {
        if self.page_info {
            let page = pms_cli::output::shapes::PageInfo { items, next };
            return self.print(&pms_cli::output::json(&page)?);
        }
        self.print(&pms_cli::output::json(items)?)
    }

    /// A note for people, on stderr.
    pub fn note(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// `warning: …` on stderr (yellow on a terminal unless NO_COLOR).
pub fn warn(text: &str, color: bool) {
    if color {
        eprintln!("\x1b[33mwarning:\x1b[0m {text}");
    } else {
        eprintln!("warning: {text}");
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli, env: EnvSnapshot) -> Result<()> {
    let stdout_tty = std::io::stdout().is_terminal();
    let stderr_tty = std::io::stderr().is_terminal();
    let stderr_color = stderr_tty && !env.no_color;
    // Kept for the life of the process so that `Style` stays `Copy` (one small list per run).
    let columns: Option<&'static [String]> = cli
        .global
        .columns
        .clone()
        .map(|c| &*Box::leak(c.into_boxed_slice()));
    let style = Style {
        format: cli.global.output.unwrap_or_default(),
        color: stdout_tty && !env.no_color,
        width: pms_cli::output::fit::terminal_width(stdout_tty, env.columns.as_deref()),
        columns,
    };
    // Commands that need no session or config.
    match &cli.command {
        Command::Completion(args) => return completion::run(args),
        Command::Man(args) => return man::run(args),
        Command::Help(args) => return help::run(args),
        Command::Tui => return tui::run(cli.global.profile, cli.global.server),
        _ => {}
    }
    let warn_fn: pms_cli::session::Warn = Arc::new(move |text: &str| warn(text, stderr_color));
    let ctx = Context::new(env, cli.global.profile, cli.global.server, warn_fn)?;
    // Once per command, before anything is sent.
    if let Some(warning) = pms_cli::config::plain_http_warning(&ctx.server()) {
        (ctx.warn)(&warning);
    }
    if cli.global.page_info && style.format != Format::Json {
        return Err(Error::Usage(
            "--page-info shapes JSON lists: add -o json".to_owned(),
        ));
    }
    let app = App {
        ctx,
        style,
        stdin_tty: std::io::stdin().is_terminal(),
        page_info: cli.global.page_info,
    };
    match cli.command {
        Command::Login(args) => login::run(&app, args).await,
        Command::Logout => logout::run(&app).await,
        Command::Whoami => whoami::run(&app).await,
        Command::Auth(command) => auth::run(&app, command).await,
        Command::Patients(command) => patients::run(&app, command).await,
        Command::Billing(command) => billing::run(&app, command).await,
        Command::Users(command) => users::run(&app, command).await,
        Command::Audit(args) => audit::run(&app, args).await,
        Command::Analytics(command) => analytics::run(&app, command).await,
        Command::Events(command) => events::run(&app, command).await,
        Command::Request(args) => request::run(&app, args).await,
        Command::Completion(_) | Command::Man(_) | Command::Help(_) | Command::Tui => Ok(()),
    }
}

/// Refuses formats a command cannot produce.
pub fn reject_csv(style: Style, what: &str) -> Result<()> {
    if style.format == Format::Csv {
        return Err(Error::Usage(format!(
            "{what} has no CSV form: use -o table or -o json"
        )));
    }
    Ok(())
}
