//! Creating an invoice from the Billing tab (`c`): a line editor — each line a description,
//! quantity and unit price in major units, `Ctrl-N` adds a line, `Ctrl-D` removes the focused
//! one — in the account's currency. The server makes it a DRAFT; `i` issues it.
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

/// At most this many lines in the editor (the popup stays on an 80×24 screen).
pub const MAX_LINES: usize = 8;

/// State of the invoice form.
#[derive(Debug, Clone)]
pub struct InvoiceForm {
    pub account: Uuid,
    pub currency: String,
    /// One `[description, quantity, unit price]` per invoice line.
    pub lines: Vec<[TextField; 3]>,
    /// Field index over all lines: line `focus / 3`, field `focus % 3`.
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
            lines: vec![empty_line()],
            focus: 0,
            idempotency_key: Uuid::new_v4().to_string(),
            error: None,
            sending: false,
        }
    }

    fn field(&mut self) -> &mut TextField {
        let (line, field) = (self.focus / 3, self.focus % 3);
        &mut self.lines[line][field]
    }

    /// Types into the focused field.
    pub fn input(&mut self, c: char) {
        self.field().push(c);
    }

    /// Deletes in the focused field.
    pub fn backspace(&mut self) {
        self.field().backspace();
    }

    /// `Tab`: the next field, on through the lines.
    pub fn next_field(&mut self) {
        self.focus = (self.focus + 1) % (self.lines.len() * 3);
    }

    /// `Ctrl-N`: a new line after the others, focused on its description.
    pub fn add_line(&mut self) {
        if self.lines.len() >= MAX_LINES {
            self.error = Some(format!("at most {MAX_LINES} lines per invoice here"));
            return;
        }
        self.lines.push(empty_line());
        self.focus = (self.lines.len() - 1) * 3;
    }

    /// `Ctrl-D`: removes the focused line (the last one stays).
    pub fn remove_line(&mut self) {
        if self.lines.len() > 1 {
            self.lines.remove(self.focus / 3);
            self.focus = (self.focus / 3).min(self.lines.len() - 1) * 3;
        }
    }

    /// The total in minor units of the lines that parse so far.
    pub fn total(&self) -> i64 {
        self.lines
            .iter()
            .filter_map(|l| {
                let q = l[1].text.trim().parse::<i64>().ok()?;
                let p = money::parse(&l[2].text, &self.currency).ok()?;
                q.checked_mul(p)
            })
            .sum()
    }

    /// `Enter` / `Ctrl-S`: checks quantity and price locally, then the request.
    pub fn submit(&mut self) -> Option<Request> {
        if self.sending {
            return None;
        }
        let mut lines = Vec::with_capacity(self.lines.len());
        for (n, fields) in self.lines.iter().enumerate() {
            let description = fields[0].text.trim().to_owned();
            let quantity = fields[1].text.trim().parse::<i64>().ok().filter(|q| *q > 0);
            let price = money::parse(&fields[2].text, &self.currency);
            let (field, error) = match (description.is_empty(), quantity, price) {
                (true, _, _) => (0, "a description is needed".to_owned()),
                (false, None, _) => (1, "the quantity is a whole number above zero".to_owned()),
                (false, Some(_), Err(e)) => (2, e),
                (false, Some(quantity), Ok(unit_price)) => {
                    lines.push(InvoiceLineRequest {
                        description,
                        quantity,
                        unit_price,
                    });
                    continue;
                }
            };
            self.focus = n * 3 + field;
            self.error = Some(if self.lines.len() > 1 {
                format!("line {}: {error}", n + 1)
            } else {
                error
            });
            return None;
        }
        self.sending = true;
        self.error = None;
        Some(Request::CreateInvoice {
            account: self.account,
            body: CreateInvoiceRequest {
                currency: self.currency.clone(),
                due_date: None,
                lines,
            },
            idempotency_key: self.idempotency_key.clone(),
        })
    }

    /// Draws the popup over `area`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        // Only the lines that fit (4 rows each, 5 rows of frame and footer), around the focus,
        // so the footer and errors stay visible on a small screen.
        let fit = (usize::from(area.height.saturating_sub(5)) / 4).max(1);
        let shown = self.lines.len().min(fit);
        let start = (self.focus / 3 + 1).saturating_sub(shown);
        let height = u16::try_from(shown * 4).unwrap_or(32) + 5;
        let area = popup(area, 60, height);
        frame.render_widget(Clear, area);
        let mut lines: Vec<Line> = Vec::new();
        for (n, fields) in self.lines.iter().enumerate().skip(start).take(shown) {
            if self.lines.len() > 1 {
                lines.push(Line::styled(
                    format!("  line {} of {}", n + 1, self.lines.len()),
                    theme.dim(),
                ));
            }
            for (i, label) in LABELS.iter().enumerate() {
                let focused = self.focus == n * 3 + i;
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("{}{label:<12}", if focused { "▸ " } else { "  " }),
                        if focused { theme.focus() } else { theme.text() },
                    ),
                    Span::raw(fields[i].text.clone()),
                ]));
            }
        }
        lines.push(Line::styled(
            format!(
                "  total {} · Ctrl-N add line · Ctrl-D remove line",
                money::format(self.total(), &self.currency)
            ),
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

fn empty_line() -> [TextField; 3] {
    [
        TextField::default(),
        TextField::with("1"),
        TextField::default(),
    ]
}
