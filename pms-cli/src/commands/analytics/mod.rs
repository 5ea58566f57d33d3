//! `pms analytics …`: the summary, registrations over time, and the stored events.

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use pms_cli::{Result, money, output};

use super::App;

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Summary figures: patients (total, active, new), accounts, invoiced, collected, outstanding.
    Summary,
    /// Patients registered per day, week or month (empty buckets included).
    Registrations(RegistrationsArgs),
    /// Stored events, oldest first, one page unless --all (`events tail` follows them live).
    Events(EventsArgs),
}

#[derive(Debug, Args)]
pub struct RegistrationsArgs {
    /// First day, YYYY-MM-DD [default: 29 days before --to].
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last day, YYYY-MM-DD [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// day, week (ISO, from Monday) or month [default: day].
    #[arg(long, value_name = "BUCKET", value_parser = ["day", "week", "month"])]
    pub bucket: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of these types (comma-separated: PATIENT_CREATED,PAYMENT_RECEIVED).
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',', value_parser = super::events::parse_type)]
    pub types: Vec<String>,
    /// Start after this sequence number (the `seq` of the last event seen, or the `next` of
    /// --page-info) [default: 0, the beginning].
    #[arg(long, value_name = "SEQ", value_parser = clap::value_parser!(i64).range(0..))]
    pub after: Option<i64>,
    /// Page size (server default 100, at most 1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(app: &App, command: AnalyticsCommand) -> Result<()> {
    match command {
        AnalyticsCommand::Registrations(args) => {
            let buckets = app
                .client()?
                .analytics_registrations(args.from, args.to, args.bucket.as_deref())
                .await?;
            app.print_page(&buckets, None)
        }
        AnalyticsCommand::Events(args) => {
            let types = (!args.types.is_empty()).then(|| args.types.join(","));
            let page = app
                .client()?
                .analytics_events(args.after, args.limit, types.as_deref(), args.all)
                .await?;
            if page.items.is_empty() && app.style.is_table() {
                app.note("No events found.");
                return Ok(());
            }
            let next = page.next_cursor();
            app.print_page(&page.items, next.clone())?;
            if let Some(after) = next {
                app.note(&format!("More events: use --all, or --after {after}"));
            }
            Ok(())
        }
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
