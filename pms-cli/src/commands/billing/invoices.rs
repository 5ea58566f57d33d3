//! `pms billing invoices …`: create (DRAFT), issue, void, pay.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use pms_cli::api::InvoiceKey;
use pms_cli::{Error, Result, money, output};
use pms_proto::rest::{
    CreateInvoiceRequest, CreatePaymentRequest, InvoiceLineRequest, PaymentMethod,
};
use uuid::Uuid;

use super::super::App;
use super::{KeyArgs, parse_id, parse_invoice};

#[derive(Debug, Subcommand)]
pub enum InvoicesCommand {
    /// An account's invoices (newest first).
    List(ListArgs),
    /// Show an invoice with its lines.
    Get(IdArg),
    /// Create a DRAFT invoice: --line "Consultation:1:50.00" (description:quantity:unit price in
    /// the currency's major units), repeated; or a JSON body with --from-file.
    Create(CreateArgs),
    /// DRAFT → ISSUED: the total becomes owed.
    Issue(ActionArgs),
    /// Void a DRAFT invoice, or an issued one with nothing paid.
    Void(ActionArgs),
    /// Record a payment against an issued invoice (amount in the invoice's currency: 45.00).
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
    /// The invoice: number (INV-000042) or id.
    #[arg(value_parser = parse_invoice, value_name = "INVOICE")]
    pub id: InvoiceKey,
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// The invoice: number (INV-000042) or id.
    #[arg(value_parser = parse_invoice, value_name = "INVOICE")]
    pub id: InvoiceKey,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Account id.
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_id)]
    pub account: Uuid,
    /// ISO 4217 currency (USD, EUR, JPY, …): also fixes how many decimals line prices take.
    #[arg(long, required_unless_present = "from_file")]
    pub currency: Option<String>,
    /// Due date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub due_date: Option<chrono::NaiveDate>,
    /// A line: DESCRIPTION:QUANTITY:UNIT_PRICE, the price in major units (`X-ray:1:120.50`).
    /// Repeat for more.
    #[arg(long = "line", value_name = "LINE", value_parser = parse_line)]
    pub lines: Vec<LineArg>,
    /// The whole body as JSON, as the API takes it ({currency, dueDate?, lines: [{description,
    /// quantity, unitPrice}]}, unitPrice in minor units), or `-` for stdin; flags override it.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct PayArgs {
    /// The invoice: number (INV-000042) or id.
    #[arg(value_parser = parse_invoice, value_name = "INVOICE")]
    pub id: InvoiceKey,
    /// Amount in the invoice's currency, e.g. 45.00 (at most the invoice's balance).
    #[arg(long, value_name = "AMOUNT")]
    pub amount: String,
    /// CASH, CARD, INSURANCE or TRANSFER.
    #[arg(long, value_parser = parse_method)]
    pub method: PaymentMethod,
    /// Card slip, transfer id, claim number…
    #[arg(long)]
    pub reference: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// One `--line` as typed: the price stays text until the currency (and so its decimals) is known.
#[derive(Debug, Clone)]
pub struct LineArg {
    pub raw: String,
    pub description: String,
    pub quantity: i64,
    pub price: String,
}

impl LineArg {
    /// The API's line, the price in minor units of `currency`.
    fn request(&self, currency: &str) -> Result<InvoiceLineRequest> {
        let unit_price = money::parse(&self.price, currency)
            .map_err(|e| Error::Usage(format!("--line `{}`: unit price {e}", self.raw)))?;
        Ok(InvoiceLineRequest {
            description: self.description.clone(),
            quantity: self.quantity,
            unit_price,
        })
    }
}

/// `DESCRIPTION:QUANTITY:UNIT_PRICE`; the description may itself contain `:`.
pub fn parse_line(raw: &str) -> std::result::Result<LineArg, String> {
    let mut parts = raw.rsplitn(3, ':');
    let (price, quantity, description) = (parts.next(), parts.next(), parts.next());
    let (Some(price), Some(quantity), Some(description)) = (price, quantity, description) else {
        return Err(format!("`{raw}`: expected DESCRIPTION:QUANTITY:UNIT_PRICE"));
    };
    Ok(LineArg {
        raw: raw.to_owned(),
        description: description.trim().to_owned(),
        quantity: quantity
            .trim()
            .parse()
            .map_err(|_| format!("`{raw}`: quantity `{quantity}` is not a whole number"))?,
        price: price.trim().to_owned(),
    })
}

fn parse_method(raw: &str) -> std::result::Result<PaymentMethod, String> {
    PaymentMethod::parse(&raw.to_ascii_uppercase())
        .ok_or_else(|| format!("`{raw}`: expected CASH, CARD, INSURANCE or TRANSFER"))
}

pub async fn run(app: &App, command: InvoicesCommand) -> Result<()> {
    let client = app.client()?;
    match command {
        InvoicesCommand::List(args) => {
            app.print_page(&client.invoices(args.account, args.limit).await?, None)
        }
        InvoicesCommand::Get(arg) => {
            let id = client.resolve_invoice(&arg.id).await?;
            app.print(&output::one(&client.invoice(id).await?, app.style)?)
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
            // The amount is typed in the invoice's currency: its exponent says what `45` means.
            let id = client.resolve_invoice(&args.id).await?;
            let currency = client.invoice(id).await?.currency;
            let amount = money::parse(&args.amount, &currency)
                .map_err(|e| Error::Usage(format!("--amount: {e}")))?;
            if amount == 0 {
                return Err(Error::Usage("--amount: must be more than zero".into()));
            }
            let body = CreatePaymentRequest {
                amount,
                method: args.method,
                reference: args.reference,
            };
            let payment = client
                .pay(id, &body, args.key.idempotency_key.as_deref())
                .await?;
            app.note(&format!(
                "Recorded payment {} of {}.",
                payment.id,
                money::format(payment.amount, &payment.currency)
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
    let id = client.resolve_invoice(&args.id).await?;
    let invoice = client
        .invoice_action(id, what, args.key.idempotency_key.as_deref())
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
        body.currency = currency.trim().to_ascii_uppercase();
    }
    if !pms_proto::currency::is_known(&body.currency) {
        return Err(Error::Usage(format!(
            "--currency: `{}` is not an ISO 4217 currency code (USD, EUR, JPY, …)",
            body.currency
        )));
    }
    if args.due_date.is_some() {
        body.due_date = args.due_date;
    }
    if !args.lines.is_empty() {
        body.lines = args
            .lines
            .iter()
            .map(|line| line.request(&body.currency))
            .collect::<Result<_>>()?;
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
    fn lines_parse_from_the_right_in_major_units() {
        let line = parse_line("Consultation: follow-up:2:50.00").unwrap();
        assert_eq!(line.description, "Consultation: follow-up");
        let request = line.request("USD").unwrap();
        assert_eq!((request.quantity, request.unit_price), (2, 5000));
        assert_eq!(line.request("BHD").unwrap().unit_price, 50_000);
        assert!(parse_line("Consultation:5000").is_err());
        assert!(parse_line("X:one:5000").unwrap_err().contains("quantity"));
        let yen = parse_line("X:1:12.50").unwrap().request("JPY").unwrap_err();
        assert_eq!(
            yen.to_string(),
            "--line `X:1:12.50`: unit price JPY has no decimals: `12.50`"
        );
    }
}
