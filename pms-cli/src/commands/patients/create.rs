//! `pms patients create`: from flags or a JSON file; on a terminal, missing fields are asked for.

use clap::Args;
use pms_cli::Result;
use pms_cli::output;

use super::super::{App, prompt};
use super::FieldArgs;

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub fields: FieldArgs,
}

pub async fn run(app: &App, args: CreateArgs) -> Result<()> {
    let mut body = args.fields.body()?;
    // On a terminal, ask for the required fields not given (never when stdin is a pipe: the
    // server then names what is missing).
    if app.stdin_tty && args.fields.from_file.is_none() {
        let required = [
            (&mut body.name, "Name", "--name"),
            (&mut body.email, "Email", "--email"),
            (&mut body.address, "Address", "--address"),
            (
                &mut body.date_of_birth,
                "Date of birth (YYYY-MM-DD)",
                "--dob",
            ),
        ];
        for (slot, label, flag) in required {
            if slot.is_none() {
                *slot = Some(prompt::line(app, label, None, flag)?);
            }
        }
    }
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
