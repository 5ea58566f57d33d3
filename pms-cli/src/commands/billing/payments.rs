//! `pms billing payments …`: list, get, refund.

use clap::{Args, Subcommand};
use pms_cli::{Error, Result, money, output};
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
    /// The invoice: number (INV-000042) or id.
    #[arg(long, value_name = "INVOICE", value_parser = super::parse_invoice)]
    pub invoice: pms_cli::api::InvoiceKey,
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
    /// Amount in the payment's currency, e.g. 12.50 [default: everything not yet refunded].
    #[arg(long, value_name = "AMOUNT")]
    pub amount: Option<String>,
    /// Why (kept with the refund).
    #[arg(long)]
    pub reason: Option<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

pub async fn run(app: &App, command: PaymentsCommand) -> Result<()> {
    let client = app.client()?;
    match command {
        PaymentsCommand::List(args) => {
            let invoice = client.resolve_invoice(&args.invoice).await?;
            app.print_page(&client.payments(invoice).await?, None)
        }
        PaymentsCommand::Get(arg) => {
            app.print(&output::one(&client.payment(arg.id).await?, app.style)?)
        }
        PaymentsCommand::Refund(args) => {
            // Typed in the payment's currency: its exponent says what `12.5` means.
            let payment = client.payment(args.id).await?;
            let currency = payment.currency.as_str();
            let amount = match &args.amount {
                Some(text) => {
                    let amount = money::parse(text, currency)
                        .map_err(|e| Error::Usage(format!("--amount: {e}")))?;
                    if amount == 0 {
                        return Err(Error::Usage("--amount: must be more than zero".into()));
                    }
                    Some(amount)
                }
                None => None,
            };
            let shown = money::format(
                amount.unwrap_or(payment.amount - payment.refunded),
                currency,
            );
            let question = format!("Refund {shown} of payment {}?", payment.id);
            super::super::prompt::confirm(app, &question, args.yes)?;
            let body = RefundRequest {
                amount,
                reason: args.reason,
            };
            let refund = client
                .refund(args.id, &body, args.key.idempotency_key.as_deref())
                .await?;
            app.note(&format!(
                "Refunded {} ({}).",
                money::format(refund.amount, &refund.currency),
                refund.id
            ));
            app.print(&output::one(&refund, app.style)?)
        }
    }
}
