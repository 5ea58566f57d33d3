//! `pms-server`: runs PMS services. With no command it runs everything in one process on embedded
//! SQLite (`./pms-data`); `gateway`, `auth`, `patient` and `billing` run one service each
//! (distributed mode).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pms_server::app::{self, Topology};
use pms_server::config::{Fixtures, Settings, default_config_toml};
use pms_server::{shutdown, telemetry};
use tokio_util::sync::CancellationToken;

/// PMS — Patient Management System server.
///
/// With no command, runs every service in one process on an embedded SQLite database in
/// `--data-dir` (no external services needed). Configuration: built-in defaults, then the
/// `--config` TOML file, then `PMS_<SECTION>__<KEY>` environment variables
/// (`pms-server default-config` prints every key).
#[derive(Debug, Parser)]
#[command(name = "pms-server", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(short, long, env = "PMS_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the embedded databases and the generated admin password
    /// [default: ./pms-data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Throwaway instance: data in a temporary directory deleted at exit.
    #[arg(long, global = true)]
    ephemeral: bool,
    /// Development fixtures (only with --ephemeral): `reference` creates the reference system's
    /// test account testuser@test.com / password123 (ADMIN).
    #[arg(long, global = true, value_enum, value_name = "SET")]
    fixtures: Option<Fixtures>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every service in one process; only the gateway (port 4004) is public. The default.
    All,
    /// The API gateway (port 4004): routing, token verification, docs.
    Gateway,
    /// The auth service (port 4005): login, tokens, users.
    Auth,
    /// The patient service (port 4000).
    Patient,
    /// The billing service: REST (port 4001) and gRPC (port 9001).
    Billing,
    /// The analytics service (port 4002): event consumer, aggregates, live stream.
    Analytics,
    /// Print a commented configuration file with every key and its default.
    DefaultConfig,
    /// Load and validate the configuration (file + environment), print a summary without secrets,
    /// and exit: 0 if valid, 2 if not. Without ROLE, for `pms-server all` (only the ports it
    /// listens on); with one (gateway, auth, patient, billing, analytics), for the services run
    /// one per process.
    CheckConfig {
        /// The role the configuration is for [default: all].
        #[arg(value_parser = ["all", "gateway", "auth", "patient", "billing", "analytics"])]
        role: Option<String>,
    },
}

/// glibc's malloc raises its mmap threshold to the size of the largest block freed (up to 32 MiB),
/// so after the first Argon2 hash (19 MiB) every later one came from the arena of whichever
/// blocking thread ran it and stayed there: 486 MB resident after a login flood, 42 MB idle. A
/// fixed threshold (which also stops the adjustment) maps large blocks and unmaps them when
/// freed: 62 MB after the same flood, 23 MB idle (`scripts/bench` prints these figures).
#[allow(unsafe_code)]
fn bound_malloc_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters and is thread-safe in glibc; it is called
    // first thing in `main`, before this process starts any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    // Before anything creates a file or a thread: nothing this process writes is for others.
    pms_server::private::restrict_umask();
    bound_malloc_retention();
    let cli = Cli::parse();
    let topology = match cli.command {
        Some(Command::DefaultConfig) => {
            print!("{}", default_config_toml());
            return ExitCode::SUCCESS;
        }
        Some(Command::CheckConfig { .. }) => None,
        None | Some(Command::All) => Some(Topology::All),
        Some(Command::Gateway) => Some(Topology::Gateway),
        Some(Command::Auth) => Some(Topology::Auth),
        Some(Command::Patient) => Some(Topology::Patient),
        Some(Command::Analytics) => Some(Topology::Analytics),
        Some(Command::Billing) => Some(Topology::Billing),
    };
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pms-server: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = cli.data_dir {
        settings.data_dir = dir;
    }
    settings.ephemeral |= cli.ephemeral;
    if cli.fixtures.is_some() {
        settings.fixtures = cli.fixtures;
    }
    if let Err(e) = settings.check_fixtures() {
        eprintln!("pms-server: {e:#}");
        return ExitCode::from(2);
    }
    let Some(topology) = topology else {
        let all_in_one = match &cli.command {
            Some(Command::CheckConfig { role }) => role.as_deref().is_none_or(|r| r == "all"),
            _ => true,
        };
        if all_in_one {
            print!("{}", settings.summary_all_in_one());
        } else {
            print!("{}", settings.summary());
        }
        return ExitCode::SUCCESS;
    };
    telemetry::init_logging(&settings.log);
    telemetry::init_metrics();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pms-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(topology, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "pms-server stopped");
            eprintln!("pms-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(topology: Topology, mut settings: Settings) -> anyhow::Result<()> {
    // Keep the temporary directory alive until every service has stopped.
    let _ephemeral_dir = if settings.ephemeral {
        let dir = tempfile::Builder::new()
            .prefix("pms-ephemeral-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        settings.data_dir = dir.path().to_owned();
        tracing::info!(data_dir = %dir.path().display(), "ephemeral instance: data is deleted at exit");
        Some(dir)
    } else {
        None
    };
    // The data dir holds the databases (SQLite) and the generated admin password: 0700, its
    // files 0600, repaired with a warning if an older version or a copy left them open. (Created
    // only when something is stored in it: a PostgreSQL deployment may never need it.)
    if settings.data_dir.exists() {
        pms_server::private::private_dir(&settings.data_dir)?;
    }
    let token = CancellationToken::new();
    shutdown::cancel_on_signal(token.clone());
    let running = app::start(topology, settings, token).await?;
    if let Some(addr) = running.gateway {
        tracing::info!(%addr, "PMS gateway ready: http://{addr}/docs");
    }
    running.wait().await
}
