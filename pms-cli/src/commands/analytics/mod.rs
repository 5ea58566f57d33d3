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
            if app.style.format == output::Format::Json {
                return app.print(&output::json(&summary)?);
            }
            let value = serde_json::to_value(&summary)
                .map_err(|e| pms_cli::Error::Other(format!("cannot render the summary: {e}")))?;
            app.print(&output::value(&value, app.style)?)
        }
    }
}
