//! `pms auth …`: the session itself, and the auth audit log.

mod audit;
mod password;
mod status;
mod token;

use clap::Subcommand;
use pms_cli::Result;

use super::App;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Which store holds the session, who it belongs to, when the access token expires, and
    /// whether the server still accepts it (exit 4 when not logged in).
    Status(status::StatusArgs),
    /// Print a valid access token for scripts (refreshed first if it is about to expire).
    Token,
    /// Change your own password.
    Password(password::PasswordArgs),
    /// The auth audit log (ADMIN): logins, refreshes, logouts, user changes, newest first.
    Audit(audit::AuditArgs),
}

pub async fn run(app: &App, command: AuthCommand) -> Result<()> {
    match command {
        AuthCommand::Status(args) => status::run(app, args).await,
        AuthCommand::Token => token::run(app).await,
        AuthCommand::Password(args) => password::run(app, args).await,
        AuthCommand::Audit(args) => audit::run(app, args).await,
    }
}
