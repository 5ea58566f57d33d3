//! `pms audit` (ADMIN): the audit log — who read or changed what, never field values.

use clap::Args;
use pms_cli::Result;
use pms_cli::output;
use uuid::Uuid;

use super::App;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this patient.
    #[arg(long, value_name = "ID", value_parser = super::patients::parse_id)]
    pub patient: Option<Uuid>,
    /// Page size.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(app: &App, args: AuditArgs) -> Result<()> {
    let page = app
        .client()?
        .audit(args.patient, args.limit, args.all)
        .await?;
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
