//! The ledger's rules as pure functions: which state transitions are allowed and what they lead
//! to. The store calls them inside its write transactions (with the rows locked), so the rules are
//! checked against the state they change; the database's CHECK constraints are the last line.
//!
//! Refusals: a request that conflicts with the current state (paying a DRAFT, voiding a paid
//! invoice, invoicing a closed account) is [`Refusal::Conflict`] → 409; an amount larger than what
//! is due or refundable (overpayment, over-refund) or a currency mismatch is
//! [`Refusal::Unprocessable`] → 422.

use pms_proto::rest::{AccountStatus, InvoiceStatus};

/// Why the ledger refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The resource is in a state that does not allow it (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The amounts or currency do not fit (HTTP 422).
    #[error("{0}")]
    Unprocessable(String),
}

/// Status of an issued (not draft, not void) invoice with `paid` of `total` paid (net).
pub fn issued_status(total: i64, paid: i64) -> InvoiceStatus {
    if paid <= 0 {
        InvoiceStatus::Issued
    } else if paid < total {
        InvoiceStatus::PartiallyPaid
    } else {
        InvoiceStatus::Paid
    }
}

/// What is still due on an invoice: nothing for drafts and void invoices.
pub fn invoice_balance(status: InvoiceStatus, total: i64, paid: i64) -> i64 {
    match status {
        InvoiceStatus::Draft | InvoiceStatus::Void => 0,
        _ => total - paid,
    }
}

/// A new invoice on an account. Returns whether the invoice fixes the account's currency.
pub fn check_new_invoice(
    account: AccountStatus,
    account_currency: Option<&str>,
    currency: &str,
) -> Result<bool, Refusal> {
    if account != AccountStatus::Active {
        return Err(Refusal::Conflict(format!(
            "the account is {}: only ACTIVE accounts can be invoiced",
            account.as_str()
        )));
    }
    match account_currency {
        None => Ok(true),
        Some(c) if c == currency => Ok(false),
        Some(c) => Err(Refusal::Unprocessable(format!(
            "the account bills in {c}; invoices in {currency} are not accepted"
        ))),
    }
}

/// `DRAFT → ISSUED`.
pub fn check_issue(account: AccountStatus, invoice: InvoiceStatus) -> Result<(), Refusal> {
    if invoice != InvoiceStatus::Draft {
        return Err(Refusal::Conflict(format!(
            "the invoice is {}: only DRAFT invoices can be issued",
            invoice.as_str()
        )));
    }
    if account != AccountStatus::Active {
        return Err(Refusal::Conflict(format!(
            "the account is {}: only ACTIVE accounts can be invoiced",
            account.as_str()
        )));
    }
    Ok(())
}

/// `DRAFT | ISSUED → VOID`, only while nothing is (net) paid: payments must be refunded first.
/// Returns whether the ledger must book the reversal (the invoice had been issued).
pub fn check_void(invoice: InvoiceStatus, paid: i64) -> Result<bool, Refusal> {
    match invoice {
        InvoiceStatus::Draft => Ok(false),
        InvoiceStatus::Issued if paid == 0 => Ok(true),
        InvoiceStatus::Void => Err(Refusal::Conflict("the invoice is already VOID".to_owned())),
        other => Err(Refusal::Conflict(format!(
            "the invoice is {}: refund its payments before voiding it",
            other.as_str()
        ))),
    }
}

/// A payment of `amount` on an invoice. Returns the invoice's new status.
pub fn check_payment(
    account: AccountStatus,
    invoice: InvoiceStatus,
    total: i64,
    paid: i64,
    amount: i64,
) -> Result<InvoiceStatus, Refusal> {
    if account == AccountStatus::Closed {
        return Err(Refusal::Conflict(
            "the account is CLOSED: it accepts no payments".to_owned(),
        ));
    }
    match invoice {
        InvoiceStatus::Issued | InvoiceStatus::PartiallyPaid => {}
        InvoiceStatus::Paid => {
            return Err(Refusal::Conflict("the invoice is already PAID".to_owned()));
        }
        other => {
            return Err(Refusal::Conflict(format!(
                "the invoice is {}: only ISSUED or PARTIALLY_PAID invoices accept payments",
                other.as_str()
            )));
        }
    }
    let due = total - paid;
    if amount <= 0 || amount > due {
        return Err(Refusal::Unprocessable(format!(
            "overpayment: {amount} exceeds the {due} still due on the invoice"
        )));
    }
    Ok(issued_status(total, paid + amount))
}

/// A refund of `requested` (default: all that is left) of a payment of `amount` of which
/// `refunded` was already refunded. Returns the amount to refund.
pub fn check_refund(amount: i64, refunded: i64, requested: Option<i64>) -> Result<i64, Refusal> {
    let left = amount - refunded;
    if left <= 0 {
        return Err(Refusal::Conflict(
            "the payment is already fully refunded".to_owned(),
        ));
    }
    let refund = requested.unwrap_or(left);
    if refund <= 0 || refund > left {
        return Err(Refusal::Unprocessable(format!(
            "a refund of {refund} exceeds the {left} left to refund on this payment"
        )));
    }
    Ok(refund)
}

/// An account status change. Closing requires a zero balance.
pub fn check_account_status(
    from: AccountStatus,
    to: AccountStatus,
    balance: i64,
) -> Result<(), Refusal> {
    if to == AccountStatus::Closed && from != AccountStatus::Closed && balance != 0 {
        return Err(Refusal::Conflict(format!(
            "the account has a balance of {balance}: settle it before closing the account"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccountStatus::{Active, Closed, Suspended};
    use InvoiceStatus::{Draft, Issued, Paid, PartiallyPaid, Void};

    const ALL_INVOICE: [InvoiceStatus; 5] = [Draft, Issued, PartiallyPaid, Paid, Void];

    #[test]
    fn issued_status_follows_the_net_paid_amount() {
        assert_eq!(issued_status(100, 0), Issued);
        assert_eq!(issued_status(100, 1), PartiallyPaid);
        assert_eq!(issued_status(100, 99), PartiallyPaid);
        assert_eq!(issued_status(100, 100), Paid);
        assert_eq!(invoice_balance(Draft, 100, 0), 0);
        assert_eq!(invoice_balance(Void, 100, 0), 0);
        assert_eq!(invoice_balance(PartiallyPaid, 100, 30), 70);
    }

    #[test]
    fn only_drafts_of_active_accounts_are_issued() {
        for status in ALL_INVOICE {
            assert_eq!(
                check_issue(Active, status).is_ok(),
                status == Draft,
                "{status:?}"
            );
        }
        assert!(matches!(
            check_issue(Suspended, Draft),
            Err(Refusal::Conflict(_))
        ));
        assert!(matches!(
            check_issue(Closed, Draft),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn only_unpaid_invoices_are_voided() {
        assert_eq!(check_void(Draft, 0), Ok(false));
        assert_eq!(check_void(Issued, 0), Ok(true));
        for (status, paid) in [(PartiallyPaid, 10), (Paid, 100), (Void, 0)] {
            assert!(
                matches!(check_void(status, paid), Err(Refusal::Conflict(_))),
                "{status:?}"
            );
        }
    }

    #[test]
    fn payments_need_an_open_invoice_and_never_overpay() {
        for status in [Draft, Paid, Void] {
            assert!(
                matches!(
                    check_payment(Active, status, 100, 0, 10),
                    Err(Refusal::Conflict(_))
                ),
                "{status:?}"
            );
        }
        assert_eq!(check_payment(Active, Issued, 100, 0, 40), Ok(PartiallyPaid));
        assert_eq!(
            check_payment(Suspended, PartiallyPaid, 100, 40, 60),
            Ok(Paid)
        );
        assert!(matches!(
            check_payment(Active, PartiallyPaid, 100, 40, 61),
            Err(Refusal::Unprocessable(_))
        ));
        assert!(matches!(
            check_payment(Closed, Issued, 100, 0, 10),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn refunds_never_exceed_what_is_left() {
        assert_eq!(check_refund(100, 0, None), Ok(100));
        assert_eq!(check_refund(100, 30, Some(70)), Ok(70));
        assert!(matches!(
            check_refund(100, 30, Some(71)),
            Err(Refusal::Unprocessable(_))
        ));
        assert!(matches!(
            check_refund(100, 100, None),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn new_invoices_need_an_active_account_in_its_currency() {
        assert_eq!(check_new_invoice(Active, None, "USD"), Ok(true));
        assert_eq!(check_new_invoice(Active, Some("USD"), "USD"), Ok(false));
        assert!(matches!(
            check_new_invoice(Active, Some("USD"), "EUR"),
            Err(Refusal::Unprocessable(_))
        ));
        assert!(matches!(
            check_new_invoice(Suspended, None, "USD"),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn closing_needs_a_settled_account() {
        assert!(check_account_status(Active, Closed, 0).is_ok());
        assert!(check_account_status(Active, Closed, 5).is_err());
        assert!(check_account_status(Active, Suspended, 5).is_ok());
        assert!(check_account_status(Closed, Active, 0).is_ok());
    }

    /// Random walks over pay/refund/void keep `0 ≤ paid ≤ total` and the status consistent.
    #[test]
    fn random_operation_sequences_keep_the_invariants() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let total = rng.gen_range(1..1000);
            let (mut status, mut paid) = (Issued, 0i64);
            let mut payments: Vec<(i64, i64)> = Vec::new();
            for _ in 0..30 {
                match rng.gen_range(0..3) {
                    0 => {
                        let amount = rng.gen_range(1..=total);
                        if let Ok(next) = check_payment(Active, status, total, paid, amount) {
                            paid += amount;
                            status = next;
                            payments.push((amount, 0));
                        }
                    }
                    1 if !payments.is_empty() => {
                        let i = rng.gen_range(0..payments.len());
                        let (amount, refunded) = payments[i];
                        let ask = rng.gen_range(1..=amount);
                        if let Ok(r) = check_refund(amount, refunded, Some(ask)) {
                            payments[i].1 += r;
                            paid -= r;
                            if status != Void {
                                status = issued_status(total, paid);
                            }
                        }
                    }
                    _ => {
                        if check_void(status, paid).is_ok() {
                            status = Void;
                        }
                    }
                }
                assert!((0..=total).contains(&paid));
                let net: i64 = payments.iter().map(|(a, r)| a - r).sum();
                assert_eq!(net, paid);
                if status == Void {
                    assert_eq!(paid, 0);
                } else {
                    assert_eq!(status, issued_status(total, paid));
                }
            }
        }
    }
}
