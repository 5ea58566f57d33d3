//! Billing beyond paying: refunding a payment after a question, with one `Idempotency-Key`
//! per refund kept across retries — through `App::update`, and drawn at 80×24 and 120×40.
#![allow(clippy::unwrap_used)]

mod fixtures;

use crossterm::event::KeyCode;
use fixtures::*;
use pms_cli::Error;
use pms_proto::rest::{Payment, PaymentMethod, Refund, Statement};
use pms_tui::action::{Action, Op, Request};
use pms_tui::app::App;
use pms_tui::keys::Mode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn payment(n: u128, amount: i64, refunded: i64, day: u32) -> Payment {
    Payment {
        id: id(3000 + n),
        invoice_id: id(2001),
        account_id: id(1001),
        amount,
        currency: "USD".into(),
        method: PaymentMethod::Card,
        reference: None,
        refunded,
        received_at: at(day),
    }
}

/// Billing with account 1 open and one invoice, `f` pressed and the payments answered.
fn refund_question(w: u16, h: u16) -> App {
    let mut app = loaded_app(w, h);
    press(&mut app, key(KeyCode::Char('2')));
    press(&mut app, key(KeyCode::Enter));
    app.update(Action::InvoicesLoaded {
        account: id(1001),
        invoices: vec![invoice(1)],
    });
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('f')));
    match app.requests.as_slice() {
        [Request::RefundCandidates { invoice, number }] => {
            assert_eq!(*invoice, id(2001));
            assert!(!number.is_empty());
        }
        other => panic!("expected RefundCandidates, got {other:?}"),
    }
    app.requests.clear();
    app.update(Action::PaymentsLoaded {
        number: "INV-1".into(),
        payments: vec![
            payment(1, 5_000, 5_000, 2), // refunded in full already
            payment(2, 3_000, 1_000, 3),
        ],
    });
    app
}

#[test]
fn f_asks_before_refunding_the_rest_of_the_newest_payment() {
    let mut app = refund_question(80, 24);
    assert_eq!(app.mode(), Mode::Confirm);
    let refund = app.billing.refund.as_ref().unwrap();
    assert_eq!(refund.payment.id, id(3002));
    assert_eq!(refund.remaining(), 2_000);
    assert!(app.requests.is_empty(), "nothing moves before y");
    press(&mut app, key(KeyCode::Char('y')));
    let first_key = match app.requests.as_slice() {
        [
            Request::Refund {
                payment,
                body,
                idempotency_key,
            },
        ] => {
            assert_eq!(*payment, id(3002));
            assert_eq!(body.amount, Some(2_000));
            idempotency_key.clone()
        }
        other => panic!("expected Refund, got {other:?}"),
    };
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('y')));
    assert!(
        app.requests.is_empty(),
        "a second y while sending sends nothing"
    );
    // The answer is lost: `y` again retries with the same key, so it refunds once.
    app.update(Action::Failed {
        op: Op::Refund,
        error: Error::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "Connection refused".into(),
            source: None,
        },
    });
    assert!(app.flash.as_ref().unwrap().error);
    press(&mut app, key(KeyCode::Char('y')));
    match app.requests.as_slice() {
        [
            Request::Refund {
                idempotency_key, ..
            },
        ] => assert_eq!(*idempotency_key, first_key),
        other => panic!("expected the same refund, got {other:?}"),
    }
    app.requests.clear();
    app.update(Action::Refunded(Box::new(Refund {
        id: id(4001),
        payment_id: id(3002),
        invoice_id: id(2001),
        amount: 2_000,
        currency: "USD".into(),
        reason: None,
        created_at: at(4),
    })));
    assert!(app.billing.refund.is_none());
    assert_eq!(app.flash.as_ref().unwrap().text, "✓ refunded 20.00 USD");
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Invoices { .. }, Request::Accounts]
    ));
}

#[test]
fn n_keeps_the_money_and_a_new_question_has_a_new_key() {
    let mut app = refund_question(80, 24);
    let key1 = app.billing.refund.as_ref().unwrap().idempotency_key.clone();
    press(&mut app, key(KeyCode::Char('n')));
    assert!(app.billing.refund.is_none());
    assert!(app.requests.is_empty());
    app.update(Action::PaymentsLoaded {
        number: "INV-1".into(),
        payments: vec![payment(2, 3_000, 0, 3)],
    });
    assert_ne!(app.billing.refund.as_ref().unwrap().idempotency_key, key1);
}

#[test]
fn nothing_to_refund_says_so() {
    let mut app = loaded_app(80, 24);
    app.update(Action::PaymentsLoaded {
        number: "INV-1".into(),
        payments: vec![payment(1, 5_000, 5_000, 2)],
    });
    assert!(app.billing.refund.is_none());
    assert!(app.flash.as_ref().unwrap().text.contains("no payment left"));
}

#[test]
fn snapshot_refund_question() {
    for (w, h) in [(80, 24), (120, 40)] {
        let app = refund_question(w, h);
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|frame| app.draw(frame)).unwrap();
        insta::assert_snapshot!(format!("billing_refund_{w}x{h}"), terminal.backend());
    }
}

fn statement() -> Statement {
    serde_json::from_value(serde_json::json!({
        "accountId": id(1001),
        "currency": "USD",
        "invoiced": 12500, "paid": 3000, "refunded": 1000, "balance": 10500,
        "entries": [
            {"seq": 1, "occurredAt": "2026-11-02T09:30:00Z", "kind": "INVOICE_ISSUED",
             "invoiceId": id(2001), "invoiceNumber": "INV-000001", "amount": 12500, "balance": 12500},
            {"seq": 2, "occurredAt": "2026-11-03T09:30:00Z", "kind": "PAYMENT",
             "invoiceId": id(2001), "invoiceNumber": "INV-000001", "paymentId": id(3002),
             "amount": -3000, "balance": 9500},
            {"seq": 3, "occurredAt": "2026-11-04T09:30:00Z", "kind": "REFUND",
             "invoiceId": id(2001), "invoiceNumber": "INV-000001", "paymentId": id(3002),
             "refundId": id(4001), "amount": 1000, "balance": 10500}
        ]
    }))
    .unwrap_or_else(|e| panic!("statement fixture does not match Statement: {e}"))
}

fn statement_open(w: u16, h: u16) -> App {
    let mut app = loaded_app(w, h);
    press(&mut app, key(KeyCode::Char('2')));
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('a')));
    match app.requests.as_slice() {
        [Request::Statement { account }] => assert_eq!(*account, id(1001)),
        other => panic!("expected Statement for the selected account, got {other:?}"),
    }
    app.requests.clear();
    app.update(Action::StatementLoaded(Box::new(statement())));
    app
}

#[test]
fn a_shows_the_statement_and_esc_closes_it() {
    let mut app = statement_open(80, 24);
    let s = app.billing.statement.as_ref().unwrap();
    assert_eq!(s.entries.len(), 3);
    assert_eq!(s.balance, 10_500);
    press(&mut app, key(KeyCode::Esc));
    assert!(app.billing.statement.is_none());
    assert!(
        app.billing.account.is_none(),
        "Esc closes the statement only"
    );
}

#[test]
fn snapshot_statement() {
    for (w, h) in [(80, 24), (120, 40)] {
        let app = statement_open(w, h);
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|frame| app.draw(frame)).unwrap();
        insta::assert_snapshot!(format!("billing_statement_{w}x{h}"), terminal.backend());
    }
}

fn invoice_editor(w: u16, h: u16) -> App {
    let mut app = loaded_app(w, h);
    press(&mut app, key(KeyCode::Char('2')));
    press(&mut app, key(KeyCode::Enter));
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('c')));
    type_text(&mut app, "Consultation");
    press(&mut app, key(KeyCode::Tab));
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "80");
    press(&mut app, ctrl('n'));
    type_text(&mut app, "X-ray");
    press(&mut app, key(KeyCode::Tab));
    press(&mut app, key(KeyCode::Backspace));
    type_text(&mut app, "2");
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "12.50");
    app
}

#[test]
fn the_invoice_editor_sends_every_line() {
    let mut app = invoice_editor(80, 24);
    let form = app.billing.invoice_form.as_ref().unwrap();
    assert_eq!(form.lines.len(), 2);
    assert_eq!(form.total(), 8_000 + 2 * 1_250);
    // A third, empty line is refused with its number, then dropped with Ctrl-D.
    press(&mut app, ctrl('n'));
    press(&mut app, key(KeyCode::Enter));
    assert!(app.requests.is_empty());
    let form = app.billing.invoice_form.as_ref().unwrap();
    assert_eq!(
        form.error.as_deref(),
        Some("line 3: a description is needed")
    );
    assert_eq!(form.focus, 6);
    press(&mut app, ctrl('d'));
    assert_eq!(app.billing.invoice_form.as_ref().unwrap().lines.len(), 2);
    press(&mut app, ctrl('s'));
    match app.requests.as_slice() {
        [Request::CreateInvoice { body, .. }] => {
            let got: Vec<_> = body
                .lines
                .iter()
                .map(|l| (l.description.as_str(), l.quantity, l.unit_price))
                .collect();
            assert_eq!(got, [("Consultation", 1, 8_000), ("X-ray", 2, 1_250)]);
        }
        other => panic!("expected CreateInvoice, got {other:?}"),
    }
}

#[test]
fn the_last_invoice_line_cannot_be_removed() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('2')));
    press(&mut app, key(KeyCode::Enter));
    press(&mut app, key(KeyCode::Char('c')));
    press(&mut app, ctrl('d'));
    assert_eq!(app.billing.invoice_form.as_ref().unwrap().lines.len(), 1);
}

#[test]
fn snapshot_invoice_editor() {
    for (w, h) in [(80, 24), (120, 40)] {
        let app = invoice_editor(w, h);
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|frame| app.draw(frame)).unwrap();
        insta::assert_snapshot!(
            format!("billing_invoice_editor_{w}x{h}"),
            terminal.backend()
        );
    }
}

#[test]
fn snapshot_invoice_editor_with_more_lines_than_fit() {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = invoice_editor(w, h);
        for item in ["Lab", "Dressing", "Follow-up"] {
            press(&mut app, ctrl('n'));
            type_text(&mut app, item);
        }
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|frame| app.draw(frame)).unwrap();
        insta::assert_snapshot!(
            format!("billing_invoice_editor_5_lines_{w}x{h}"),
            terminal.backend()
        );
    }
}
