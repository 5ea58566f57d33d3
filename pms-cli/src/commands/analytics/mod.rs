//! `pms analytics …`.

use clap::Subcommand;
use pms_cli::Result;
use pms_cli::output;

use super::App;

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Summary figures: patients (total, active, new), accounts, invoiced, collected, outstanding.
    Summary,
}

pub async fn run(app: &App, command: AnalyticsCommand) -> Result<()> {
    match command {
        AnalyticsCommand::Summary => {
            let summary = app.client()?.analytics_summary().await?;
            app.print(&output::value(&summary, app.style)?)
        }
    }
}
