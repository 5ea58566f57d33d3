//! `pms billing accounts …`.

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use pms_cli::Result;
use pms_cli::api::PatientKey;
use pms_cli::money;
use pms_cli::output::{self, Format, Tabular};
use pms_proto::rest::{AccountStatus, Statement, StatementEntry, UpdateAccountRequest};
use uuid::Uuid;

use super::super::App;
use super::parse_id;

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// List accounts (newest first), or find a patient's.
    List(ListArgs),
    /// Show an account and its balance.
    Get(IdArg),
    /// Make sure a patient has an account (normally created with the patient).
    Create(CreateArgs),
    /// Change an account's status: ACTIVE, SUSPENDED or CLOSED (needs a zero balance).
    Update(UpdateArgs),
    /// Every ledger entry of an account with its running balance.
    Statement(IdArg),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the account of this patient (MRN or id).
    #[arg(long, value_name = "PATIENT", value_parser = PatientKey::parse)]
    pub patient: Option<PatientKey>,
    /// How many (newest first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Account id.
    #[arg(value_parser = parse_id)]
    pub id: Uuid,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The patient (MRN or id).
    #[arg(long, value_name = "PATIENT", value_parser = PatientKey::parse)]
    pub patient: PatientKey,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Account id.
    #[arg(value_parser = parse_id)]
    pub id: Uuid,
    /// ACTIVE, SUSPENDED or CLOSED.
    #[arg(long, value_parser = parse_status)]
    pub status: AccountStatus,
}

fn parse_status(raw: &str) -> std::result::Result<AccountStatus, String> {
    AccountStatus::parse(&raw.to_ascii_uppercase())
        .ok_or_else(|| format!("`{raw}`: expected ACTIVE, SUSPENDED or CLOSED"))
}

pub async fn run(app: &App, command: AccountsCommand) -> Result<()> {
    let client = app.client()?;
    match command {
        AccountsCommand::List(args) => {
            let patient = match &args.patient {
                Some(key) => Some(client.resolve_patient(key).await?.to_string()),
                None => None,
            };
            let accounts = client
                .billing_accounts(patient.as_deref(), args.limit)
                .await?;
            app.print_page(&accounts, None)
        }
        AccountsCommand::Get(arg) => app.print(&output::one(
            &client.billing_account(arg.id).await?,
            app.style,
        )?),
        AccountsCommand::Create(args) => {
            let patient = client.resolve_patient(&args.patient).await?;
            let account = client.create_billing_account(&patient.to_string()).await?;
            app.print(&output::one(&account, app.style)?)
        }
        AccountsCommand::Update(args) => {
            let body = UpdateAccountRequest {
                status: args.status,
            };
            let account = client.update_billing_account(args.id, &body).await?;
            app.note(&format!(
                "Account {} is {}.",
                account.id,
                account.status.as_str()
            ));
            app.print(&output::one(&account, app.style)?)
        }
        AccountsCommand::Statement(arg) => {
            let statement = client.statement(arg.id).await?;
            app.print(&render_statement(&statement, app.style)?)
        }
    }
}

/// JSON: the statement as the API sends it (minor units); CSV: the entries; table: totals, then
/// entries. Table and CSV show money in major units of the account's currency.
fn render_statement(statement: &Statement, style: output::Style) -> Result<String> {
    let currency = statement.currency.clone().unwrap_or_default();
    let rows = statement.entries.iter().map(|entry| {
        let mut row = entry.row();
        // The entry has no currency of its own: it is the account's.
        row[4] = money::decimal(entry.amount, &currency);
        row[5] = money::decimal(entry.balance, &currency);
        row
    });
    match style.format {
        Format::Json => output::json(statement),
        Format::Csv => output::rows(
            StatementEntry::HEADERS,
            StatementEntry::HEADERS,
            rows,
            style,
        ),
        Format::Table | Format::Wide => {
            let mut out = String::new();
            let m = |minor: i64| money::format(minor, &currency);
            let _ = writeln!(out, "Account:   {}", statement.account_id);
            let _ = writeln!(out, "Invoiced:  {}", m(statement.invoiced));
            let _ = writeln!(out, "Paid:      {}", m(statement.paid));
            let _ = writeln!(out, "Refunded:  {}", m(statement.refunded));
            let _ = writeln!(out, "Balance:   {}", m(statement.balance));
            if !statement.entries.is_empty() {
                out.push('\n');
                let headers = StatementEntry::HEADERS;
                out.push_str(&output::rows(headers, headers, rows, style)?);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_show_major_units() {
        let statement: Statement = serde_json::from_value(serde_json::json!({
            "accountId": "00000000-0000-4000-8000-000000000001",
            "currency": "USD",
            "invoiced": 7500, "paid": 2500, "refunded": 0, "balance": 5000,
            "entries": [{
                "seq": 1, "occurredAt": "2026-01-02T03:04:05Z", "kind": "INVOICE_ISSUED",
                "invoiceId": "00000000-0000-4000-8000-000000000002", "invoiceNumber": "INV-000001",
                "amount": 7500, "balance": 7500
            }]
        }))
        .unwrap();
        let style = output::Style::default();
        let table = render_statement(&statement, style).unwrap();
        assert!(table.contains("Invoiced:  75.00 USD\n"), "{table}");
        assert!(table.contains("Balance:   50.00 USD\n"), "{table}");
        assert!(table.contains("INV-000001      75.00   75.00\n"), "{table}");
        let csv = Format::Csv;
        let csv = render_statement(
            &statement,
            output::Style {
                format: csv,
                ..style
            },
        )
        .unwrap();
        assert!(csv.ends_with(",INV-000001,75.00,75.00\r\n"), "{csv}");
        let json = Format::Json;
        let json = render_statement(
            &statement,
            output::Style {
                format: json,
                ..style
            },
        )
        .unwrap();
        assert!(json.contains("\"invoiced\": 7500"), "{json}");
    }
}
