//! The Billing tab: accounts (status, balance as money), the invoices of the opened account
//! with the lines of the selected one, and recording a payment. Each payment popup carries its
//! own `Idempotency-Key`, made when it opens: pressing Enter twice, or retrying after a lost
//! answer, replays the first result instead of paying twice.

use pms_proto::rest::{BillingAccount, CreatePaymentRequest, Invoice, PaymentMethod};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table};
use uuid::Uuid;

use super::invoice_form::InvoiceForm;
use super::{Cursor, TextField, popup};
use crate::action::Request;
use crate::money;
use crate::theme::Theme;

const METHODS: [PaymentMethod; 4] = [
    PaymentMethod::Card,
    PaymentMethod::Cash,
    PaymentMethod::Insurance,
    PaymentMethod::Transfer,
];

/// The payment popup.
#[derive(Debug, Clone)]
pub struct PaymentForm {
    pub invoice: Uuid,
    pub number: String,
    pub currency: String,
    pub balance: i64,
    pub amount: TextField,
    pub method: usize,
    pub reference: TextField,
    /// 0 amount, 1 method, 2 reference.
    pub focus: usize,
    /// Sent with every attempt of this payment.
    pub idempotency_key: String,
    pub error: Option<String>,
    pub sending: bool,
}

impl PaymentForm {
    /// Types: into amount/reference; on the method field, any key cycles the method.
    pub fn input(&mut self, c: char) {
        match self.focus {
            0 => self.amount.push(c),
            1 if c == ' ' => self.method = (self.method + 1) % METHODS.len(),
            2 => self.reference.push(c),
            _ => {}
        }
    }

    /// Deletes in the focused field.
    pub fn backspace(&mut self) {
        match self.focus {
            0 => self.amount.backspace(),
            2 => self.reference.backspace(),
            _ => {}
        }
    }

    /// `Tab`.
    pub fn next_field(&mut self) {
        self.focus = (self.focus + 1) % 3;
    }

    /// `Enter` / `Ctrl-S`: checks the amount locally, then the request.
    pub fn submit(&mut self) -> Option<Request> {
        if self.sending {
            return None;
        }
        let amount = match money::parse(&self.amount.text, &self.currency) {
            Ok(0) => Err("the amount must be more than zero".to_owned()),
            other => other,
        };
        match amount {
            Err(e) => {
                self.error = Some(e);
                self.focus = 0;
                None
            }
            Ok(amount) => {
                self.sending = true;
                self.error = None;
                Some(Request::Pay {
                    invoice: self.invoice,
                    body: CreatePaymentRequest {
                        amount,
                        method: METHODS[self.method],
                        reference: Some(self.reference.text.trim().to_owned())
                            .filter(|r| !r.is_empty()),
                    },
                    idempotency_key: self.idempotency_key.clone(),
                })
            }
        }
    }
}

/// State of the Billing tab.
#[derive(Debug, Default)]
pub struct BillingView {
    pub accounts: Vec<BillingAccount>,
    pub cursor: Cursor,
    pub loading: bool,
    pub loaded: bool,
    pub error: Option<String>,
    /// The account whose invoices are open.
    pub account: Option<Uuid>,
    pub invoices: Vec<Invoice>,
    pub invoice_cursor: Cursor,
    pub invoices_loading: bool,
    pub payment: Option<PaymentForm>,
    pub invoice_form: Option<InvoiceForm>,
    /// Void asked for: (invoice, number), waiting for `y`.
    pub confirm_void: Option<(Uuid, String)>,
    /// The refund question, once the invoice's payments are in.
    pub refund: Option<super::refund::RefundConfirm>,
    /// The open account statement.
    pub statement: Option<pms_proto::rest::Statement>,
}

impl BillingView {
    /// `p` on an invoice: the payment popup, balance pre-filled.
    pub fn open_payment(&mut self) {
        let Some(invoice) = self.invoices.get(self.invoice_cursor.selected) else {
            self.error = Some("open an account (Enter) and pick an invoice first".into());
            return;
        };
        let exp = money::exponent(&invoice.currency);
        let balance = money::format(invoice.balance, &invoice.currency);
        let prefill = balance
            .split(' ')
            .next()
            .unwrap_or_default()
            .replace(',', "");
        self.payment = Some(PaymentForm {
            invoice: invoice.id,
            number: invoice.number.clone(),
            currency: invoice.currency.clone(),
            balance: invoice.balance,
            amount: TextField::with(if exp == 0 || invoice.balance > 0 {
                prefill
            } else {
                String::new()
            }),
            method: 0,
            reference: TextField::default(),
            focus: 0,
            idempotency_key: Uuid::new_v4().to_string(),
            error: None,
            sending: false,
        });
    }

    /// `c` in an open account: the invoice form.
    pub fn open_invoice_form(&mut self) {
        let Some(account) = self.account else {
            self.error = Some("open an account (Enter) first".into());
            return;
        };
        let currency = self
            .accounts
            .iter()
            .find(|a| a.id == account)
            .and_then(|a| a.currency.clone())
            .unwrap_or_else(|| "USD".into());
        self.invoice_form = Some(InvoiceForm::new(account, currency));
    }

    /// `i` / `v` on the selected invoice: the request (`v` asks first, see `confirm_void`).
    pub fn invoice_action(&mut self, action: &'static str) -> Option<Request> {
        let invoice = self.invoices.get(self.invoice_cursor.selected)?;
        if action == "void" {
            self.confirm_void = Some((invoice.id, invoice.number.clone()));
            return None;
        }
        self.invoices_loading = true;
        Some(Request::InvoiceAction {
            invoice: invoice.id,
            action,
            idempotency_key: Uuid::new_v4().to_string(),
        })
    }

    /// The account under the cursor.
    pub fn selected_account(&self) -> Option<&BillingAccount> {
        self.accounts.get(self.cursor.selected)
    }

    /// Draws the tab.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let [top, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
        let mut status = vec![Span::styled(
            format!("{} accounts", self.accounts.len()),
            theme.dim(),
        )];
        if self.loading || self.invoices_loading {
            status.push(Span::styled("  loading…", theme.warn()));
        }
        if let Some(e) = &self.error {
            status.push(Span::styled(format!("  ✗ {e}"), theme.error()));
        }
        frame.render_widget(Paragraph::new(Line::from(status)), top);
        if self.account.is_some() {
            let [left, right] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                    .areas(body);
            self.draw_invoices(frame, left, theme);
            self.draw_lines(frame, right, theme);
        } else {
            self.draw_accounts(frame, body, theme);
        }
        if let Some(form) = &self.payment {
            draw_payment(form, frame, area, theme);
        }
        if let Some(form) = &self.invoice_form {
            form.draw(frame, area, theme);
        }
        if let Some(statement) = &self.statement {
            super::statement::draw(statement, frame, area, theme);
        }
        if let Some(refund) = &self.refund {
            refund.draw(frame, area, theme);
        }
        if let Some((_, number)) = &self.confirm_void {
            let area = popup(area, 50, 5);
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::raw(format!("Void invoice {number}?")),
                    Line::raw(""),
                    Line::styled("y void · n / Esc keep", theme.dim()),
                ])
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(Span::styled(" Confirm ", theme.error())),
                ),
                area,
            );
        }
    }

    fn draw_accounts(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let height = area.height.saturating_sub(3) as usize;
        let window = self.cursor.window(self.accounts.len(), height);
        let rows = self.accounts[window.clone()]
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let currency = a.currency.clone().unwrap_or_else(|| "USD".into());
                let row = Row::new(vec![
                    a.patient_id.chars().take(8).collect::<String>(),
                    a.status.as_str().to_owned(),
                    money::format(a.balance, &currency),
                    a.created_at.format("%Y-%m-%d").to_string(),
                ]);
                if window.start + i == self.cursor.selected {
                    row.style(theme.selected())
                } else {
                    row
                }
            });
        let table = Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Fill(1),
                Constraint::Length(10),
            ],
        )
        .header(Row::new(["Patient", "Status", "Balance", "Opened"]).style(theme.title()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Accounts — Enter invoices ", theme.title())),
        );
        frame.render_widget(table, area);
    }

    fn draw_invoices(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let height = area.height.saturating_sub(3) as usize;
        let window = self.invoice_cursor.window(self.invoices.len(), height);
        let rows = self.invoices[window.clone()]
            .iter()
            .enumerate()
            .map(|(i, inv)| {
                let row = Row::new(vec![
                    inv.number.clone(),
                    inv.status.as_str().to_owned(),
                    money::format(inv.total, &inv.currency),
                    money::format(inv.balance, &inv.currency),
                ]);
                if window.start + i == self.invoice_cursor.selected {
                    row.style(theme.selected())
                } else {
                    row
                }
            });
        let table = Table::new(
            rows,
            [
                Constraint::Length(11),
                Constraint::Length(14),
                Constraint::Fill(1),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(["Number", "Status", "Total", "Due"]).style(theme.title()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Invoices — p c i v f ", theme.title())),
        );
        frame.render_widget(table, area);
        if self.invoices.is_empty() && !self.invoices_loading {
            let inner = Rect {
                y: area.y + 2,
                height: 1,
                x: area.x + 2,
                width: area.width.saturating_sub(4),
            };
            frame.render_widget(
                Paragraph::new(Span::styled("no invoices", theme.dim())),
                inner,
            );
        }
    }

    fn draw_lines(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(" Lines ", theme.title()));
        let Some(inv) = self.invoices.get(self.invoice_cursor.selected) else {
            frame.render_widget(block, area);
            return;
        };
        let mut lines: Vec<Line> = inv
            .lines
            .iter()
            .map(|l| {
                Line::raw(format!(
                    "{} × {} = {}",
                    l.quantity,
                    l.description,
                    money::format(l.amount, &inv.currency)
                ))
            })
            .collect();
        lines.push(Line::raw(""));
        lines.push(Line::raw(format!(
            "Total {}",
            money::format(inv.total, &inv.currency)
        )));
        lines.push(Line::raw(format!(
            "Paid  {}",
            money::format(inv.paid, &inv.currency)
        )));
        lines.push(Line::raw(format!(
            "Due   {}",
            money::format(inv.balance, &inv.currency)
        )));
        frame.render_widget(Paragraph::new(lines).block(block), area);
    }
}

fn draw_payment(form: &PaymentForm, frame: &mut Frame, area: Rect, theme: Theme) {
    let area = popup(area, 60, 10);
    frame.render_widget(Clear, area);
    let label = |i: usize, name: &str| {
        let marker = if form.focus == i { "▸ " } else { "  " };
        Span::styled(
            format!("{marker}{name:<10}"),
            if form.focus == i {
                theme.focus()
            } else {
                theme.text()
            },
        )
    };
    let status = match (&form.error, form.sending) {
        (_, true) => Span::styled("recording…", theme.warn()),
        (Some(e), false) => Span::styled(format!("✗ {e}"), theme.error()),
        (None, false) => Span::raw(""),
    };
    let lines = vec![
        Line::styled(
            format!(
                "Invoice {} — due {}",
                form.number,
                money::format(form.balance, &form.currency)
            ),
            theme.dim(),
        ),
        Line::raw(""),
        Line::from(vec![
            label(0, "Amount"),
            Span::raw(form.amount.text.clone()),
            Span::styled(format!(" {}", form.currency), theme.dim()),
        ]),
        Line::from(vec![
            label(1, "Method"),
            Span::raw(METHODS[form.method].as_str()),
            Span::styled("  (Space changes)", theme.dim()),
        ]),
        Line::from(vec![
            label(2, "Reference"),
            Span::raw(form.reference.text.clone()),
        ]),
        Line::from(status),
        Line::styled("Enter / Ctrl-S record · Tab next · Esc cancel", theme.dim()),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Record payment ", theme.title())),
        ),
        area,
    );
}
