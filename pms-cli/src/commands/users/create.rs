//! `pms users create`.

use clap::Args;
use pms_cli::Result;
use pms_cli::output;
use pms_proto::rest::{CreateUserRequest, Role};

use super::super::{App, prompt};

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Email of the new account.
    #[arg(long)]
    pub email: String,
    /// ADMIN, CLINICIAN, BILLING or VIEWER.
    #[arg(long, value_parser = super::parse_role)]
    pub role: Role,
    /// Read the new account's password from stdin (one line) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn run(app: &App, args: CreateArgs) -> Result<()> {
    let password = if args.password_stdin {
        prompt::stdin_lines(1)?.remove(0)
    } else {
        prompt::secret(app, "Password for the new user")?
    };
    let user = app
        .client()?
        .create_user(&CreateUserRequest {
            email: args.email,
            password,
            role: args.role,
        })
        .await?;
    app.note(&format!("Created user {} ({}).", user.email, user.role));
    app.print(&output::one(&user, app.style)?)
}
