//! `pms users update ID`.

use clap::Args;
use pms_cli::api::UserKey;
use pms_cli::output;
use pms_cli::{Error, Result};
use pms_proto::rest::{Role, UpdateUserRequest};

use super::super::App;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The user: email or id.
    #[arg(value_parser = super::parse_id, value_name = "USER")]
    pub id: UserKey,
    /// New role: ADMIN, CLINICIAN, BILLING or VIEWER.
    #[arg(long, value_parser = super::parse_role)]
    pub role: Option<Role>,
    /// Disable the account (its sessions stop working).
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Enable the account again.
    #[arg(long)]
    pub enable: bool,
}

pub async fn run(app: &App, args: UpdateArgs) -> Result<()> {
    let request = UpdateUserRequest {
        role: args.role,
        disabled: match (args.disable, args.enable) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    if request.role.is_none() && request.disabled.is_none() {
        return Err(Error::Usage(
            "nothing to update: pass --role, --disable or --enable".into(),
        ));
    }
    let client = app.client()?;
    let id = client.resolve_user(&args.id).await?;
    let user = client.update_user(id, &request).await?;
    app.note(&format!("Updated user {}.", user.email));
    app.print(&output::one(&user, app.style)?)
}
