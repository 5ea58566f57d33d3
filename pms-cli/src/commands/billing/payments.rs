//! `pms billing payments …`: list, get, refund.

use clap::{Args, Subcommand};
use pms_cli::Result;
use pms_cli::output;
use pms_proto::rest::RefundRequest;
use uuid::Uuid;

use super::super::App;
use super::{KeyArgs, parse_id};

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// The payments of an invoice.
    List(ListArgs),
    /// Show a payment (and how much of it was refunded).
    Get(IdArg),
    /// Refund (part of) a payment (ADMIN, BILLING).
    Refund(RefundArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Invoice id.
    #[arg(long, value_name = "INVOICE_ID", value_parser = parse_id)]
    pub invoice: Uuid,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Payment id.
    #[arg(value_parser = parse_id)]
    pub id: Uuid,
}

#[derive(Debug, Args)]
pub struct RefundArgs {
    /// Payment id.
    #[arg(value_parser = parse_id)]
    pub id: Uuid,
    /// Minor units [default: everything not yet refunded].
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub amount: Option<i64>,
    /// Why (kept with the refund).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

pub async fn run(app: &App, command: PaymentsCommand) -> Result<()> {
    let client = app.client()?;
    match command {
        PaymentsCommand::List(args) => app.print(&output::list(
            &client.payments(args.invoice).await?,
            app.style,
        )?),
        PaymentsCommand::Get(arg) => {
            app.print(&output::one(&client.payment(arg.id).await?, app.style)?)
        }
        PaymentsCommand::Refund(args) => {
            let body = RefundRequest {
                amount: args.amount,
                reason: args.reason,
            };
            let refund = client
                .refund(args.id, &body, args.key.idempotency_key.as_deref())
                .await?;
            app.note(&format!(
                "Refunded {} {} ({}).",
                refund.amount, refund.currency, refund.id
            ));
            app.print(&output::one(&refund, app.style)?)
        }
    }
}
