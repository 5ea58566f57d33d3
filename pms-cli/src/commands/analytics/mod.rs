//! `pms analytics …`.

use clap::Subcommand;
use pms_cli::{Result, money, output};

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
            let mut value = serde_json::to_value(&summary)
                .map_err(|e| pms_cli::Error::Other(format!("cannot render the summary: {e}")))?;
            major_units(&mut value);
            app.print(&output::value(&value, app.style)?)
        }
    }
}

/// Table and CSV show the per-currency totals in major units (`125.00`); JSON keeps minor units.
fn major_units(summary: &mut serde_json::Value) {
    let Some(rows) = summary["billing"].as_array_mut() else {
        return;
    };
    for row in rows {
        let currency = row["currency"].as_str().unwrap_or_default().to_owned();
        for field in ["invoiced", "collected", "refunded", "outstanding"] {
            if let Some(minor) = row[field].as_i64() {
                row[field] = money::decimal(minor, &currency).into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_totals_turn_into_major_units() {
        let mut summary = serde_json::json!({
            "billing": [{"currency": "USD", "invoiced": 12500, "collected": 7500,
                         "refunded": 0, "outstanding": 5000},
                        {"currency": "JPY", "invoiced": 900, "collected": 0,
                         "refunded": 0, "outstanding": 900}],
            "eventsTotal": 3
        });
        major_units(&mut summary);
        assert_eq!(summary["billing"][0]["collected"], "75.00");
        assert_eq!(summary["billing"][1]["invoiced"], "900");
        assert_eq!(summary["eventsTotal"], 3);
    }
}
