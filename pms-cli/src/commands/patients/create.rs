//! `pms patients create`.

use clap::Args;
use pms_cli::Result;
use pms_cli::output;

use super::super::App;
use super::FieldArgs;

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub fields: FieldArgs,
}

pub async fn run(app: &App, args: CreateArgs) -> Result<()> {
    let mut body = args.fields.body()?;
    if body.registered_date.is_none() {
        body.registered_date = Some(chrono::Utc::now().date_naive().to_string());
    }
    let patient = app.client()?.create_patient(&body).await?;
    app.note(&format!(
        "Created patient {} ({}).",
        patient.id, patient.mrn
    ));
    app.print(&output::one(&patient, app.style)?)
}
