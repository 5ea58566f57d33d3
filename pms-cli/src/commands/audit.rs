//! `pms audit` (ADMIN): the audit log — who read or changed what, never field values.

use clap::Args;
use pms_cli::Result;
use pms_cli::api::PatientKey;
use pms_cli::output;

use super::App;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this patient (MRN or id).
    #[arg(long, value_name = "PATIENT", value_parser = super::patients::parse_id)]
    pub patient: Option<PatientKey>,
    /// Page size.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(app: &App, args: AuditArgs) -> Result<()> {
    let client = app.client()?;
    let patient = match &args.patient {
        Some(key) => Some(client.resolve_patient(key).await?),
        None => None,
    };
    let page = client.audit(patient, args.limit, args.all).await?;
    if page.items.is_empty() && app.style.is_table() {
        app.note("No audit entries found.");
        return Ok(());
    }
    app.print(&output::list(&page.items, app.style)?)?;
    if page.next.is_some() {
        app.note("More entries: use --all");
    }
    Ok(())
}
