//! The account statement (`a` on Billing): every ledger entry of the account with its running
//! balance and the totals, in an overlay over the tab; `Esc` closes it.

use pms_proto::rest::Statement;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Wrap};

use crate::money;
use crate::theme::Theme;

/// Draws `statement` over most of `area`, newest entries last (the visible tail).
pub fn draw(statement: &Statement, frame: &mut Frame, area: Rect, theme: Theme) {
    let area = super::popup(
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Statement — Esc closes ", theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [totals, table] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(inner);
    let currency = statement.currency.as_deref().unwrap_or("");
    let m = |v: i64| money::format(v, currency);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("invoiced ", theme.dim()),
            Span::raw(m(statement.invoiced)),
            Span::styled(" · paid ", theme.dim()),
            Span::raw(m(statement.paid)),
            Span::styled(" · refunded ", theme.dim()),
            Span::raw(m(statement.refunded)),
            Span::styled(" · balance ", theme.dim()),
            Span::styled(m(statement.balance), theme.title()),
        ]))
        .wrap(Wrap { trim: true }),
        totals,
    );
    // Only the rows that fit: the newest, which is what a statement is opened for.
    let fit = usize::from(table.height.saturating_sub(1));
    let skip = statement.entries.len().saturating_sub(fit);
    let rows = statement.entries[skip..].iter().map(|e| {
        Row::new(vec![
            e.seq.to_string(),
            e.occurred_at.format("%Y-%m-%d").to_string(),
            e.kind.as_str().to_owned(),
            e.invoice_number.clone(),
            m(e.amount),
            m(e.balance),
        ])
    });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(4),
                Constraint::Length(10),
                Constraint::Length(14),
                Constraint::Fill(1),
                Constraint::Length(13),
                Constraint::Length(13),
            ],
        )
        .header(
            Row::new(["#", "Date", "Kind", "Invoice", "Amount", "Balance"]).style(theme.title()),
        ),
        table,
    );
}
