//! `pms billing accounts …`.

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use pms_cli::Result;
use pms_cli::output::{self, Format, Tabular};
use pms_proto::rest::{AccountStatus, Statement, UpdateAccountRequest};
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
    /// Only the account of this patient.
    #[arg(long, value_name = "PATIENT_ID")]
    pub patient: Option<String>,
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
    /// The patient's id.
    #[arg(long, value_name = "PATIENT_ID")]
    pub patient: String,
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
            let accounts = client
                .billing_accounts(args.patient.as_deref(), args.limit)
                .await?;
            app.print(&output::list(&accounts, app.style)?)
        }
        AccountsCommand::Get(arg) => app.print(&output::one(
            &client.billing_account(arg.id).await?,
            app.style,
        )?),
        AccountsCommand::Create(args) => {
            let account = client.create_billing_account(&args.patient).await?;
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

/// JSON: the statement as the API sends it; CSV: the entries; table: totals, then entries.
fn render_statement(statement: &Statement, style: output::Style) -> Result<String> {
    match style.format {
        Format::Json => output::json(statement),
        Format::Csv => output::list(&statement.entries, style),
        Format::Table => {
            let mut out = String::new();
            let currency = statement.currency.clone().unwrap_or_default();
            let _ = writeln!(out, "Account:   {}", statement.account_id);
            let _ = writeln!(out, "Invoiced:  {} {currency}", statement.invoiced);
            let _ = writeln!(out, "Paid:      {} {currency}", statement.paid);
            let _ = writeln!(out, "Refunded:  {} {currency}", statement.refunded);
            let _ = writeln!(out, "Balance:   {} {currency}", statement.balance);
            if !statement.entries.is_empty() {
                out.push('\n');
                out.push_str(&output::table(
                    pms_proto::rest::StatementEntry::HEADERS,
                    statement.entries.iter().map(Tabular::row),
                    style.color,
                ));
            }
            Ok(out)
        }
    }
}
