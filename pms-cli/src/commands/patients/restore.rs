//! `pms patients restore PATIENT…`: undo soft deletes. Each patient is tried and reported in
//! turn; one that fails (not deleted, email taken by a live patient meanwhile) does not stop the
//! others. Billing reopens the restored patient's account.

use clap::Args;
use pms_cli::api::PatientKey;
use pms_cli::{Error, Result, output};

use super::super::App;
use super::super::present;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The deleted patients: MRNs (MRN-000001) or ids (see `pms patients deleted`).
    #[arg(required = true, value_parser = super::parse_id, value_name = "PATIENT")]
    pub ids: Vec<PatientKey>,
}

pub async fn run(app: &App, args: RestoreArgs) -> Result<()> {
    let client = app.client()?;
    let total = args.ids.len();
    let mut restored = Vec::new();
    let mut failures: Vec<Error> = Vec::new();
    for key in args.ids {
        let result = async {
            let id = client.resolve_deleted_patient(&key).await?;
            client.restore_patient(id, None).await
        };
        match result.await {
            Ok(patient) => {
                let p = patient.value;
                app.note(&format!("Restored patient {} ({}).", p.mrn, p.id));
                restored.push(p);
            }
            Err(e) if total > 1 => {
                eprintln!("error: {}", present::message(&e));
                failures.push(e);
            }
            Err(e) => return Err(e),
        }
    }
    if !restored.is_empty() {
        app.print(&output::list(&restored, app.style)?)?;
    }
    super::summarize(&failures, total, "restored")
}
