//! `pms patients delete ID…`: soft delete (the record stays for the audit trail).

use clap::Args;
use pms_cli::Result;
use uuid::Uuid;

use super::super::App;

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Patient ids.
    #[arg(required = true, value_parser = super::parse_id)]
    pub ids: Vec<Uuid>,
}

pub async fn run(app: &App, args: DeleteArgs) -> Result<()> {
    let client = app.client()?;
    for id in args.ids {
        client.delete_patient(id).await?;
        app.note(&format!("Deleted patient {id}."));
    }
    Ok(())
}
