//! Refunding a payment from the Billing tab: `f` on an invoice fetches its payments, then asks
//! "refund the newest payment not yet refunded in full?". The question carries its own
//! `Idempotency-Key`, made when it opens, so a repeated `y` or a retry refunds once.

use pms_proto::rest::{Payment, RefundRequest};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::popup;
use crate::action::Request;
use crate::money;
use crate::theme::Theme;

/// The refund question.
#[derive(Debug, Clone)]
pub struct RefundConfirm {
    pub payment: Payment,
    pub number: String,
    /// Sent with every attempt of this refund.
    pub idempotency_key: String,
    pub sending: bool,
}

impl RefundConfirm {
    /// The question for the newest payment of `payments` with something left to refund;
    /// `None` when there is none.
    pub fn for_payments(payments: &[Payment], number: &str) -> Option<RefundConfirm> {
        let payment = payments
            .iter()
            .filter(|p| p.refunded < p.amount)
            .max_by_key(|p| p.received_at)?;
        Some(RefundConfirm {
            payment: payment.clone(),
            number: number.to_owned(),
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            sending: false,
        })
    }

    /// What is left to refund, in minor units.
    pub fn remaining(&self) -> i64 {
        self.payment.amount - self.payment.refunded
    }

    /// `y`: the refund request (the rest of the payment), once per question.
    pub fn confirm(&mut self) -> Option<Request> {
        if self.sending {
            return None;
        }
        self.sending = true;
        Some(Request::Refund {
            payment: self.payment.id,
            body: RefundRequest {
                amount: Some(self.remaining()),
                reason: Some("refunded from the TUI".to_owned()),
            },
            idempotency_key: self.idempotency_key.clone(),
        })
    }

    /// Draws the question over `area`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let p = &self.payment;
        let area = popup(area, 60, 5);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(vec![
                Line::raw(format!(
                    "Refund {} of the {} payment on invoice {}?",
                    money::format(self.remaining(), &p.currency),
                    p.method.as_str(),
                    self.number
                )),
                Line::styled(
                    format!(
                        "paid {} · already refunded {}",
                        money::format(p.amount, &p.currency),
                        money::format(p.refunded, &p.currency)
                    ),
                    theme.dim(),
                ),
                Line::styled(
                    if self.sending {
                        "refunding…"
                    } else {
                        "y refund · n / Esc keep"
                    },
                    theme.warn(),
                ),
            ])
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(Span::styled(" Refund ", theme.error())),
            ),
            area,
        );
    }
}
