//! `pms users …` (ADMIN): accounts and roles.

mod create;
mod list;
mod update;

use clap::{Args, Subcommand};
use pms_cli::Result;
use pms_cli::output;
use uuid::Uuid;

use super::App;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List user accounts.
    List,
    /// Show one user.
    Get(GetArgs),
    /// Create a user (the password is prompted, or read with --password-stdin).
    Create(create::CreateArgs),
    /// Change a user's role, or disable/enable the account.
    Update(update::UpdateArgs),
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// User id.
    #[arg(value_parser = parse_id)]
    pub id: Uuid,
}

pub async fn run(app: &App, command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::List => list::run(app).await,
        UsersCommand::Get(args) => {
            let user = app.client()?.get_user(args.id).await?;
            app.print(&output::one(&user, app.style)?)
        }
        UsersCommand::Create(args) => create::run(app, args).await,
        UsersCommand::Update(args) => update::run(app, args).await,
    }
}

/// Parses a user id argument.
pub fn parse_id(raw: &str) -> std::result::Result<Uuid, String> {
    Uuid::parse_str(raw.trim()).map_err(|_| format!("`{raw}` is not a user id (a UUID)"))
}

/// Parses a role (case-insensitive).
pub fn parse_role(raw: &str) -> std::result::Result<pms_proto::rest::Role, String> {
    raw.parse()
}
