//! `pms users …` (ADMIN): accounts and roles.

mod create;
mod list;
mod update;

use clap::{Args, Subcommand};
use pms_cli::Result;
use pms_cli::api::UserKey;
use pms_cli::output;

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
    /// The user: email or id.
    #[arg(value_parser = parse_id, value_name = "USER")]
    pub id: UserKey,
}

pub async fn run(app: &App, command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::List => list::run(app).await,
        UsersCommand::Get(args) => {
            let client = app.client()?;
            let user = client
                .get_user(client.resolve_user(&args.id).await?)
                .await?;
            app.print(&output::one(&user, app.style)?)
        }
        UsersCommand::Create(args) => create::run(app, args).await,
        UsersCommand::Update(args) => update::run(app, args).await,
    }
}

/// Parses a user argument: an email or an id (resolved with `ApiClient::resolve_user`).
pub fn parse_id(raw: &str) -> std::result::Result<UserKey, String> {
    UserKey::parse(raw)
}

/// Parses a role (case-insensitive).
pub fn parse_role(raw: &str) -> std::result::Result<pms_proto::rest::Role, String> {
    raw.parse()
}
