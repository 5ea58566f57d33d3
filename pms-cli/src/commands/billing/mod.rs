//! `pms billing …`: accounts, invoices, payments and the billing audit log. Money is typed and
//! shown in major units of the currency (`45.00` USD, `4500` JPY); `-o json` keeps the API's
//! integer minor units. Money-moving commands take `--idempotency-key`: the
//! same key replays the first result instead of moving money twice (safe retries in scripts).

mod accounts;
mod invoices;
mod payments;

use clap::{Args, Subcommand};
use pms_cli::Result;
use uuid::Uuid;

use super::App;

#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Billing accounts (one per patient): list, get, create, update, statement.
    #[command(subcommand)]
    Accounts(accounts::AccountsCommand),
    /// Invoices: list, get, create, issue, void, pay.
    #[command(subcommand)]
    Invoices(invoices::InvoicesCommand),
    /// Payments: list, get, refund.
    #[command(subcommand)]
    Payments(payments::PaymentsCommand),
    /// The billing audit log (ADMIN).
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only rows about this account.
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    pub account: Option<Uuid>,
    /// How many rows (newest first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
}

/// `--idempotency-key` (shared by the money-moving commands).
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Replays the first result for this key instead of doing it again (1–255 visible ASCII).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

pub async fn run(app: &App, command: BillingCommand) -> Result<()> {
    match command {
        BillingCommand::Accounts(c) => accounts::run(app, c).await,
        BillingCommand::Invoices(c) => invoices::run(app, c).await,
        BillingCommand::Payments(c) => payments::run(app, c).await,
        BillingCommand::Audit(args) => {
            let rows = app
                .client()?
                .billing_audit(args.account, args.limit)
                .await?;
            app.print_page(&rows, None)
        }
    }
}

/// Parses an id argument.
/// Parses an invoice argument: a number (`INV-000042`) or an id (resolved with
/// `ApiClient::resolve_invoice`).
pub fn parse_invoice(raw: &str) -> std::result::Result<pms_cli::api::InvoiceKey, String> {
    pms_cli::api::InvoiceKey::parse(raw)
}

pub fn parse_id(raw: &str) -> std::result::Result<Uuid, String> {
    Uuid::parse_str(raw.trim()).map_err(|_| format!("`{raw}` is not an id (a UUID)"))
}
