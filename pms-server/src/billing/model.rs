//! Validated billing inputs (parse, don't validate): the HTTP and gRPC edges turn wire bodies into
//! these types, so the ledger and the store only ever see well-formed values.

use chrono::NaiveDate;
use pms_proto::rest::{
    CreateInvoiceRequest, CreatePaymentRequest, FieldError, PaymentMethod, RefundRequest,
};
use uuid::Uuid;

/// Largest amount accepted anywhere (minor units): 10^12, ten billion in a two-decimal currency.
/// Far below `i64::MAX`, so sums of many such amounts cannot overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// Most lines on one invoice.
pub const MAX_LINES: usize = 100;
const MAX_DESCRIPTION: usize = 200;
const MAX_REFERENCE: usize = 200;
const MAX_REASON: usize = 500;
const MAX_PATIENT_ID: usize = 100;
const MAX_NAME: usize = 200;
const MAX_EMAIL: usize = 320;

/// An ISO 4217 alphabetic code with a minor unit, upper case (`usd` is accepted and normalised).
/// The code fixes the account's currency and how clients show amounts, so only real codes from
/// `pms_proto::currency` pass (`XYZ` is three letters but no currency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Currency, String> {
        let code = s.trim().to_ascii_uppercase();
        if pms_proto::currency::is_known(&code) {
            Ok(Currency(code))
        } else {
            Err("must be an ISO 4217 currency code such as USD, EUR or JPY".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The patient an account belongs to. The reference gRPC API types it as a free-form string, so
/// any short printable id is accepted; UUIDs are stored in canonical (lower-case, hyphenated) form
/// so that `ABC…` and `abc…` name the same patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRef(String);

impl PatientRef {
    pub fn parse(s: &str) -> Result<PatientRef, String> {
        // The length as sent (the OpenAPI document's `maxLength`), then trimmed.
        if s.chars().count() > MAX_PATIENT_ID {
            return Err(format!(
                "patientId must be at most {MAX_PATIENT_ID} printable characters"
            ));
        }
        let s = s.trim();
        if s.is_empty() {
            return Err("patientId is required".to_owned());
        }
        if let Ok(uuid) = Uuid::parse_str(s) {
            return Ok(PatientRef(uuid.hyphenated().to_string()));
        }
        if s.chars().count() > MAX_PATIENT_ID || s.chars().any(char::is_control) {
            return Err(format!(
                "patientId must be at most {MAX_PATIENT_ID} printable characters"
            ));
        }
        Ok(PatientRef(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Contact details the reference API sends with `CreateBillingAccount`. PHI: stored with the
/// account, never logged and never audited.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    pub email: String,
}

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Contact { .. }")
    }
}

impl Contact {
    /// Both may be empty (the reference system did not require them); only lengths are checked.
    pub fn parse(name: &str, email: &str) -> Result<Contact, String> {
        let (name, email) = (name.trim(), email.trim());
        if name.chars().count() > MAX_NAME {
            return Err(format!("name must be at most {MAX_NAME} characters"));
        }
        if email.chars().count() > MAX_EMAIL {
            return Err(format!("email must be at most {MAX_EMAIL} characters"));
        }
        Ok(Contact {
            name: name.to_owned(),
            email: email.to_owned(),
        })
    }
}

/// A new account: one per patient.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub patient: PatientRef,
    pub contact: Contact,
}

/// One validated invoice line; `amount = quantity × unit_price`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub amount: i64,
}

/// A validated new invoice: 1–[`MAX_LINES`] lines and a positive total of at most [`MAX_AMOUNT`].
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub currency: Currency,
    pub due_date: Option<NaiveDate>,
    pub lines: Vec<NewLine>,
    pub total: i64,
}

impl NewInvoice {
    /// Validates every field and reports each bad one (`lines[2].quantity`, …).
    pub fn parse(req: &CreateInvoiceRequest) -> Result<NewInvoice, Vec<FieldError>> {
        let mut errors = Vec::new();
        fn bad(errors: &mut Vec<FieldError>, field: String, message: &str) {
            errors.push(FieldError {
                field,
                message: message.to_owned(),
            });
        }
        let currency = Currency::parse(&req.currency)
            .map_err(|m| bad(&mut errors, "currency".to_owned(), &m))
            .ok();
        if req.lines.is_empty() || req.lines.len() > MAX_LINES {
            bad(
                &mut errors,
                "lines".to_owned(),
                &format!("must have between 1 and {MAX_LINES} lines"),
            );
        }
        let mut lines = Vec::with_capacity(req.lines.len());
        let mut total: i64 = 0;
        for (i, line) in req.lines.iter().enumerate() {
            let description = line.description.trim();
            if description.is_empty() || description.chars().count() > MAX_DESCRIPTION {
                bad(
                    &mut errors,
                    format!("lines[{i}].description"),
                    &format!("is required, at most {MAX_DESCRIPTION} characters"),
                );
            }
            if !(1..=MAX_AMOUNT).contains(&line.quantity) {
                bad(
                    &mut errors,
                    format!("lines[{i}].quantity"),
                    "must be between 1 and 10^12",
                );
            }
            if !(0..=MAX_AMOUNT).contains(&line.unit_price) {
                bad(
                    &mut errors,
                    format!("lines[{i}].unitPrice"),
                    "must be between 0 and 10^12 minor units",
                );
            }
            let amount = line
                .quantity
                .checked_mul(line.unit_price)
                .filter(|a| *a <= MAX_AMOUNT);
            match amount {
                Some(amount) => total = total.saturating_add(amount),
                None => total = i64::MAX,
            }
            lines.push(NewLine {
                description: description.to_owned(),
                quantity: line.quantity,
                unit_price: line.unit_price,
                amount: amount.unwrap_or(0),
            });
        }
        // The total only means something once every line is valid.
        let lines_valid = !errors.iter().any(|e| e.field.starts_with("lines"));
        if lines_valid && !(1..=MAX_AMOUNT).contains(&total) {
            bad(
                &mut errors,
                "lines".to_owned(),
                "the invoice total must be positive and at most 10^12 minor units",
            );
        }
        match currency {
            Some(currency) if errors.is_empty() => Ok(NewInvoice {
                currency,
                due_date: req.due_date,
                lines,
                total,
            }),
            _ => Err(errors),
        }
    }
}

/// A validated payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub amount: i64,
    pub method: PaymentMethod,
    pub reference: Option<String>,
}

impl NewPayment {
    pub fn parse(req: &CreatePaymentRequest) -> Result<NewPayment, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(1..=MAX_AMOUNT).contains(&req.amount) {
            errors.push(FieldError {
                field: "amount".to_owned(),
                message: "must be a positive number of minor units (at most 10^12)".to_owned(),
            });
        }
        let reference = optional_text(req.reference.as_deref());
        if reference
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REFERENCE)
        {
            errors.push(FieldError {
                field: "reference".to_owned(),
                message: format!("must be at most {MAX_REFERENCE} characters"),
            });
        }
        if errors.is_empty() {
            Ok(NewPayment {
                amount: req.amount,
                method: req.method,
                reference,
            })
        } else {
            Err(errors)
        }
    }
}

/// A validated refund request; `amount: None` refunds whatever is left of the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

impl NewRefund {
    pub fn parse(req: &RefundRequest) -> Result<NewRefund, Vec<FieldError>> {
        let mut errors = Vec::new();
        if req.amount.is_some_and(|a| !(1..=MAX_AMOUNT).contains(&a)) {
            errors.push(FieldError {
                field: "amount".to_owned(),
                message: "must be a positive number of minor units (at most 10^12)".to_owned(),
            });
        }
        let reason = optional_text(req.reason.as_deref());
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON)
        {
            errors.push(FieldError {
                field: "reason".to_owned(),
                message: format!("must be at most {MAX_REASON} characters"),
            });
        }
        if errors.is_empty() {
            Ok(NewRefund {
                amount: req.amount,
                reason,
            })
        } else {
            Err(errors)
        }
    }
}

fn optional_text(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Human invoice number of sequence value `n` (`INV-000042`).
pub fn invoice_number(n: i64) -> String {
    format!("INV-{n:06}")
}

/// The sequence value of a human invoice number: `INV-` (any case) and 1–18 digits.
pub fn parse_invoice_number(raw: &str) -> Option<i64> {
    let digits = raw
        .get(..4)
        .filter(|prefix| prefix.eq_ignore_ascii_case("INV-"))
        .map(|_| &raw[4..])?;
    let well_formed =
        (1..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| digits.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pms_proto::rest::InvoiceLineRequest;

    fn line(description: &str, quantity: i64, unit_price: i64) -> InvoiceLineRequest {
        InvoiceLineRequest {
            description: description.to_owned(),
            quantity,
            unit_price,
        }
    }

    #[test]
    fn currency_is_an_iso_4217_code_normalised_to_upper_case() {
        assert_eq!(Currency::parse(" usd ").expect("valid").as_str(), "USD");
        for bad in ["", "US", "USDD", "U$D", "12A", "XYZ", "XAU"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patient_ids_canonicalise_uuids_and_accept_reference_strings() {
        let id = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
        assert_eq!(
            PatientRef::parse(id).expect("valid").as_str(),
            "6f9619ff-8b86-d011-b42d-00c04fc964ff"
        );
        assert_eq!(PatientRef::parse(" 42 ").expect("valid").as_str(), "42");
        assert!(PatientRef::parse("  ").is_err());
        assert!(PatientRef::parse("a\nb").is_err());
        assert!(PatientRef::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn contact_debug_never_shows_values() {
        let contact = Contact::parse("Jane Roe", "jane@example.com").expect("valid");
        let shown = format!("{contact:?}");
        assert!(
            !shown.contains("Jane") && !shown.contains("example"),
            "{shown}"
        );
    }

    #[test]
    fn invoice_totals_are_summed_from_lines() {
        let req = CreateInvoiceRequest {
            currency: "eur".to_owned(),
            due_date: None,
            lines: vec![line("Consultation", 1, 5000), line("Bandage", 3, 250)],
        };
        let invoice = NewInvoice::parse(&req).expect("valid");
        assert_eq!(invoice.currency.as_str(), "EUR");
        assert_eq!(invoice.total, 5750);
        assert_eq!(invoice.lines[1].amount, 750);
    }

    #[test]
    fn invoice_errors_name_every_bad_field() {
        let req = CreateInvoiceRequest {
            currency: "dollars".to_owned(),
            due_date: None,
            lines: vec![line("", 0, -1), line("ok", 1, 100)],
        };
        let errors = NewInvoice::parse(&req).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "currency",
                "lines[0].description",
                "lines[0].quantity",
                "lines[0].unitPrice"
            ]
        );
    }

    #[test]
    fn invoices_need_lines_and_a_positive_bounded_total() {
        let empty = CreateInvoiceRequest {
            currency: "USD".to_owned(),
            due_date: None,
            lines: vec![],
        };
        let errors = NewInvoice::parse(&empty).expect_err("no lines");
        assert_eq!(errors[0].field, "lines");
        let free = CreateInvoiceRequest {
            lines: vec![line("Free check", 1, 0)],
            ..empty.clone()
        };
        assert_eq!(
            NewInvoice::parse(&free).expect_err("zero")[0].field,
            "lines"
        );
        let huge = CreateInvoiceRequest {
            lines: vec![line("a", MAX_AMOUNT, MAX_AMOUNT)],
            ..empty
        };
        assert_eq!(
            NewInvoice::parse(&huge).expect_err("overflow")[0].field,
            "lines"
        );
    }

    #[test]
    fn payments_and_refunds_validate_amounts_and_text() {
        let pay = |amount| CreatePaymentRequest {
            amount,
            method: PaymentMethod::Card,
            reference: Some("  slip-1 ".to_owned()),
        };
        let ok = NewPayment::parse(&pay(100)).expect("valid");
        assert_eq!(ok.reference.as_deref(), Some("slip-1"));
        assert_eq!(
            NewPayment::parse(&pay(0)).expect_err("zero")[0].field,
            "amount"
        );
        assert_eq!(
            NewPayment::parse(&pay(-5)).expect_err("neg")[0].field,
            "amount"
        );
        let refund = RefundRequest {
            amount: Some(0),
            reason: Some(" ".to_owned()),
        };
        assert_eq!(
            NewRefund::parse(&refund).expect_err("zero")[0].field,
            "amount"
        );
        let all = NewRefund::parse(&RefundRequest::default()).expect("valid");
        assert_eq!(
            all,
            NewRefund {
                amount: None,
                reason: None
            }
        );
    }

    #[test]
    fn invoice_numbers_are_zero_padded() {
        assert_eq!(invoice_number(42), "INV-000042");
        assert_eq!(invoice_number(1_234_567), "INV-1234567");
        for (raw, n) in [
            ("INV-000042", Some(42)),
            ("inv-7", Some(7)),
            ("INV-1234567", Some(1_234_567)),
        ] {
            assert_eq!(parse_invoice_number(raw), n, "{raw}");
        }
        for bad in [
            "INV-",
            "INV-+1",
            "INV--1",
            "INV-1x",
            "42",
            "INV-1234567890123456789",
            "ÍNV-1",
        ] {
            assert_eq!(parse_invoice_number(bad), None, "{bad}");
        }
    }
}
