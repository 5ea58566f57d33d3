//! `pms events …`.

mod tail;
pub use tail::parse_type;

use clap::Subcommand;
use pms_cli::Result;

use super::App;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Follow the live event stream: one event per line (NDJSON with -o json). Reconnects with
    /// backoff and resumes where it left off; a marker line on stderr tells each reconnect.
    /// Ctrl-C stops it (exit 0).
    Tail(tail::TailArgs),
}

pub async fn run(app: &App, command: EventsCommand) -> Result<()> {
    match command {
        EventsCommand::Tail(args) => tail::run(app, args).await,
    }
}
