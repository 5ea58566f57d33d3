//! `pms patients history ID`.

use clap::Args;
use pms_cli::Result;
use pms_cli::output;
use uuid::Uuid;

use super::super::App;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Patient id.
    #[arg(value_parser = super::parse_id)]
    pub id: Uuid,
}

pub async fn run(app: &App, args: HistoryArgs) -> Result<()> {
    let versions = app.client()?.patient_history(args.id).await?;
    app.print(&output::list(&versions, app.style)?)
}
