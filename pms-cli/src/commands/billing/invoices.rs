//! `pms billing invoices …`: create (DRAFT), issue, void, pay.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use pms_cli::output;
use pms_cli::{Error, Result};
use pms_proto::rest::{
    CreateInvoiceRequest, CreatePaymentRequest, InvoiceLineRequest, PaymentMethod,
};
use uuid::Uuid;

use super::super::App;
use super::{KeyArgs, parse_id};

#[derive(Debug, Subcommand)]
pub enum InvoicesCommand {
    /// An account's invoices (newest first).
    List(ListArgs),
    /// Show an invoice with its lines.
    Get(IdArg),
    /// Create a DRAFT invoice: --line "Consultation:1:5000" (description:quantity:unit price in
    /// minor units), repeated; or a JSON body with --from-file.
    Create(CreateArgs),
    /// DRAFT → ISSUED: the total becomes owed.
    Issue(ActionArgs),
    /// Void a DRAFT invoice, or an issued one with nothing paid.
    Void(ActionArgs),
    /// Record a payment against an issued invoice (amount in minor units).
    Pay(PayArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Account id.
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_id)]
    pub account: Uuid,
    /// How many (newest first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Invoice id.
    #[arg(value_parser = parse_id)]
    pub id: Uuid,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// Invoice id.
    #[arg(value_parser = parse_id)]
    pub id: Uuid,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Account id.
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_id)]
    pub account: Uuid,
    /// ISO-4217 currency (USD, EUR, …).
    #[arg(long, required_unless_present = "from_file")]
    pub currency: Option<String>,
    /// Due date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub due_date: Option<chrono::NaiveDate>,
    /// A line: DESCRIPTION:QUANTITY:UNIT_PRICE (unit price in minor units). Repeat for more.
    #[arg(long = "line", value_name = "LINE", value_parser = parse_line)]
    pub lines: Vec<InvoiceLineRequest>,
    /// The whole body as JSON ({currency, dueDate?, lines: [{description, quantity, unitPrice}]}),
    /// or `-` for stdin; flags override it.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct PayArgs {
    /// Invoice id.
    #[arg(value_parser = parse_id)]
    pub id: Uuid,
    /// Amount in minor units (at most the invoice's balance).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub amount: i64,
    /// CASH, CARD, INSURANCE or TRANSFER.
    #[arg(long, value_parser = parse_method)]
    pub method: PaymentMethod,
    /// Card slip, transfer id, claim number…
    #[arg(long)]
    pub reference: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// `DESCRIPTION:QUANTITY:UNIT_PRICE`; the description may itself contain `:`.
pub fn parse_line(raw: &str) -> std::result::Result<InvoiceLineRequest, String> {
    let mut parts = raw.rsplitn(3, ':');
    let (price, quantity, description) = (parts.next(), parts.next(), parts.next());
    let (Some(price), Some(quantity), Some(description)) = (price, quantity, description) else {
        return Err(format!("`{raw}`: expected DESCRIPTION:QUANTITY:UNIT_PRICE"));
    };
    Ok(InvoiceLineRequest {
        description: description.trim().to_owned(),
        quantity: quantity
            .trim()
            .parse()
            .map_err(|_| format!("`{raw}`: quantity `{quantity}` is not a whole number"))?,
        unit_price: price.trim().parse().map_err(|_| {
            format!("`{raw}`: unit price `{price}` is not a whole number of minor units")
        })?,
    })
}

fn parse_method(raw: &str) -> std::result::Result<PaymentMethod, String> {
    PaymentMethod::parse(&raw.to_ascii_uppercase())
        .ok_or_else(|| format!("`{raw}`: expected CASH, CARD, INSURANCE or TRANSFER"))
}

pub async fn run(app: &App, command: InvoicesCommand) -> Result<()> {
    let client = app.client()?;
    match command {
        InvoicesCommand::List(args) => app.print(&output::list(
            &client.invoices(args.account, args.limit).await?,
            app.style,
        )?),
        InvoicesCommand::Get(arg) => {
            app.print(&output::one(&client.invoice(arg.id).await?, app.style)?)
        }
        InvoicesCommand::Create(args) => {
            let body = create_body(&args)?;
            let invoice = client
                .create_invoice(args.account, &body, args.key.idempotency_key.as_deref())
                .await?;
            app.note(&format!(
                "Created invoice {} ({}, DRAFT).",
                invoice.number, invoice.id
            ));
            app.print(&output::one(&invoice, app.style)?)
        }
        InvoicesCommand::Issue(args) => action(app, &client, args, "issue").await,
        InvoicesCommand::Void(args) => action(app, &client, args, "void").await,
        InvoicesCommand::Pay(args) => {
            let body = CreatePaymentRequest {
                amount: args.amount,
                method: args.method,
                reference: args.reference,
            };
            let payment = client
                .pay(args.id, &body, args.key.idempotency_key.as_deref())
                .await?;
            app.note(&format!(
                "Recorded payment {} of {} {}.",
                payment.id, payment.amount, payment.currency
            ));
            app.print(&output::one(&payment, app.style)?)
        }
    }
}

async fn action(
    app: &App,
    client: &pms_cli::ApiClient,
    args: ActionArgs,
    what: &str,
) -> Result<()> {
    let invoice = client
        .invoice_action(args.id, what, args.key.idempotency_key.as_deref())
        .await?;
    app.note(&format!(
        "Invoice {} is {}.",
        invoice.number,
        invoice.status.as_str()
    ));
    app.print(&output::one(&invoice, app.style)?)
}

fn create_body(args: &CreateArgs) -> Result<CreateInvoiceRequest> {
    let mut body = match &args.from_file {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| Error::io("reading stdin", e))?
            } else {
                std::fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            };
            serde_json::from_str::<CreateInvoiceRequest>(&text).map_err(|e| {
                Error::Usage(format!("{}: not an invoice body ({e})", path.display()))
            })?
        }
        None => CreateInvoiceRequest {
            currency: String::new(),
            due_date: None,
            lines: Vec::new(),
        },
    };
    if let Some(currency) = &args.currency {
        body.currency = currency.to_ascii_uppercase();
    }
    if args.due_date.is_some() {
        body.due_date = args.due_date;
    }
    if !args.lines.is_empty() {
        body.lines = args.lines.clone();
    }
    if body.lines.is_empty() {
        return Err(Error::Usage(
            "an invoice needs at least one --line DESCRIPTION:QUANTITY:UNIT_PRICE (or --from-file)"
                .into(),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_from_the_right() {
        let line = parse_line("Consultation: follow-up:2:5000").unwrap();
        assert_eq!(line.description, "Consultation: follow-up");
        assert_eq!((line.quantity, line.unit_price), (2, 5000));
        assert!(parse_line("Consultation:5000").is_err());
        assert!(parse_line("X:one:5000").unwrap_err().contains("quantity"));
        assert!(parse_line("X:1:12.50").unwrap_err().contains("minor units"));
    }
}
