//! `pms patients get ID`.

use clap::Args;
use pms_cli::Result;
use pms_cli::api::PatientKey;
use pms_cli::output;

use super::super::App;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The patient: MRN (MRN-000001) or id.
    #[arg(value_parser = super::parse_id, value_name = "PATIENT")]
    pub id: PatientKey,
}

pub async fn run(app: &App, args: GetArgs) -> Result<()> {
    let client = app.client()?;
    let id = client.resolve_patient(&args.id).await?;
    let patient = client.get_patient(id).await?;
    app.print(&output::one(&patient.value, app.style)?)
}
