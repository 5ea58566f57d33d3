//! `pms users update ID`.

use clap::Args;
use pms_cli::output;
use pms_cli::{Error, Result};
use pms_proto::rest::{Role, UpdateUserRequest};
use uuid::Uuid;

use super::super::App;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// User id.
    #[arg(value_parser = super::parse_id)]
    pub id: Uuid,
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
    let user = app.client()?.update_user(args.id, &request).await?;
    app.note(&format!("Updated user {}.", user.email));
    app.print(&output::one(&user, app.style)?)
}
