//! Creating an invoice from the Billing tab (`c`): one line — description, quantity and unit
//! price in major units — in the account's currency. The server makes it a DRAFT; `i` issues it.
//! The key made when the form opens is sent with every attempt, so a retry never creates two.

use pms_proto::rest::{CreateInvoiceRequest, InvoiceLineRequest};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use uuid::Uuid;

use super::{TextField, popup};
use crate::action::Request;
use crate::money;
use crate::theme::Theme;

const LABELS: [&str; 3] = ["Description", "Quantity", "Unit price"];

/// State of the invoice form.
#[derive(Debug, Clone)]
pub struct InvoiceForm {
    pub account: Uuid,
    pub currency: String,
    pub fields: [TextField; 3],
    pub focus: usize,
    pub idempotency_key: String,
    pub error: Option<String>,
    pub sending: bool,
}

impl InvoiceForm {
    /// An empty form for `account`, quantity 1.
    pub fn new(account: Uuid, currency: String) -> InvoiceForm {
        InvoiceForm {
            account,
            currency,
            fields: [
                TextField::default(),
                TextField::with("1"),
                TextField::default(),
            ],
            focus: 0,
            idempotency_key: Uuid::new_v4().to_string(),
            error: None,
            sending: false,
        }
    }

    /// Types into the focused field.
    pub fn input(&mut self, c: char) {
        self.fields[self.focus].push(c);
    }

    /// Deletes in the focused field.
    pub fn backspace(&mut self) {
        self.fields[self.focus].backspace();
    }

    /// `Tab`.
    pub fn next_field(&mut self) {
        self.focus = (self.focus + 1) % LABELS.len();
    }

    /// `Enter` / `Ctrl-S`: checks quantity and price locally, then the request.
    pub fn submit(&mut self) -> Option<Request> {
        if self.sending {
            return None;
        }
        let description = self.fields[0].text.trim().to_owned();
        let quantity = self.fields[1]
            .text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|q| *q > 0);
        let price = money::parse(&self.fields[2].text, &self.currency);
        let (focus, error) = match (description.is_empty(), quantity, &price) {
            (true, _, _) => (0, "a description is needed".to_owned()),
            (false, None, _) => (1, "the quantity is a whole number above zero".to_owned()),
            (false, Some(_), Err(e)) => (2, e.clone()),
            (false, Some(quantity), Ok(unit_price)) => {
                self.sending = true;
                self.error = None;
                return Some(Request::CreateInvoice {
                    account: self.account,
                    body: CreateInvoiceRequest {
                        currency: self.currency.clone(),
                        due_date: None,
                        lines: vec![InvoiceLineRequest {
                            description,
                            quantity,
                            unit_price: *unit_price,
                        }],
                    },
                    idempotency_key: self.idempotency_key.clone(),
                });
            }
        };
        self.focus = focus;
        self.error = Some(error);
        None
    }

    /// Draws the popup over `area`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let area = popup(area, 60, 9);
        frame.render_widget(Clear, area);
        let mut lines: Vec<Line> = LABELS
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let focused = self.focus == i;
                Line::from(vec![
                    Span::styled(
                        format!("{}{label:<12}", if focused { "▸ " } else { "  " }),
                        if focused { theme.focus() } else { theme.text() },
                    ),
                    Span::raw(self.fields[i].text.clone()),
                ])
            })
            .collect();
        lines.push(Line::styled(
            format!("  currency {}", self.currency),
            theme.dim(),
        ));
        lines.push(match (&self.error, self.sending) {
            (_, true) => Line::styled("creating…", theme.warn()),
            (Some(e), false) => Line::styled(format!("✗ {e}"), theme.error()),
            (None, false) => Line::raw(""),
        });
        lines.push(Line::styled(
            "Enter / Ctrl-S create (DRAFT) · Tab next · Esc cancel",
            theme.dim(),
        ));
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(Span::styled(" New invoice ", theme.title())),
            ),
            area,
        );
    }
}
