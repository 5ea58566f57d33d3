//! `pms patients get ID`.

use clap::Args;
use pms_cli::Result;
use pms_cli::output;
use uuid::Uuid;

use super::super::App;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Patient id.
    #[arg(value_parser = super::parse_id)]
    pub id: Uuid,
}

pub async fn run(app: &App, args: GetArgs) -> Result<()> {
    let patient = app.client()?.get_patient(args.id).await?;
    app.print(&output::one(&patient.value, app.style)?)
}
