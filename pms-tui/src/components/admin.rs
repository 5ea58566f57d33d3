//! The Admin tab (ADMIN only): users and the audit log side by side; `Tab` switches focus.
//! On users: `n` new user, `e` change role, `d` disable/enable (asks first); `/` filters the
//! audit log (patient id on the server, action and outcome on the rows).

use pms_proto::rest::{AuditEntry, User};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use super::Cursor;
use super::admin_form::{AdminForm, AuditFilter, draw_confirm};
use crate::theme::Theme;

/// State of the Admin tab.
#[derive(Debug, Default)]
pub struct AdminView {
    pub users: Vec<User>,
    pub audit: Vec<AuditEntry>,
    /// 0 users, 1 audit.
    pub focus: usize,
    pub users_cursor: Cursor,
    pub audit_cursor: Cursor,
    pub loading: bool,
    pub loaded: bool,
    pub error: Option<String>,
    /// The open popup (new user, role, audit filter).
    pub form: Option<AdminForm>,
    /// Disable (true) or enable (false) this user, once confirmed: (id, email, disable).
    pub confirm_toggle: Option<(uuid::Uuid, String, bool)>,
    /// The audit filter in force.
    pub filter: AuditFilter,
}

impl AdminView {
    /// The selected user, when the users list has focus.
    pub fn selected_user(&self) -> Option<&User> {
        if self.focus == 0 {
            self.users.get(self.users_cursor.selected)
        } else {
            None
        }
    }

    /// The audit rows the filter keeps (the patient part is applied by the server).
    pub fn visible_audit(&self) -> Vec<&AuditEntry> {
        self.audit
            .iter()
            .filter(|a| self.filter.keeps(&a.action, &a.outcome))
            .collect()
    }

    /// Moves the focused list.
    pub fn move_by(&mut self, down: bool, by: usize) {
        let audit_len = self.visible_audit().len();
        let (cursor, len) = if self.focus == 0 {
            (&mut self.users_cursor, self.users.len())
        } else {
            (&mut self.audit_cursor, audit_len)
        };
        if down {
            cursor.down(len, by);
        } else {
            cursor.up(by);
        }
    }

    /// Draws the tab; `allowed` is false for non-admins.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme, allowed: bool) {
        if !allowed {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    "✗ The Admin tab is for ADMIN accounts only.",
                    theme.error(),
                ))
                .block(Block::default().borders(Borders::ALL).title(" Admin ")),
                area,
            );
            return;
        }
        let [top, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
        let status = match (&self.error, self.loading) {
            (Some(e), _) => Span::styled(format!("✗ {e}"), theme.error()),
            (None, true) => Span::styled("loading…", theme.warn()),
            (None, false) => {
                let f = self.filter.describe();
                if f.is_empty() {
                    Span::styled(
                        "Tab list · n new user · e role · d disable/enable · / filter audit",
                        theme.dim(),
                    )
                } else {
                    Span::styled(format!("audit filter: {f} (/ to change)"), theme.warn())
                }
            }
        };
        frame.render_widget(Paragraph::new(status), top);
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(body);
        let height = left.height.saturating_sub(3) as usize;
        let focus_title = |i: usize, t: &str| {
            let t = if self.focus == i {
                format!(" ▸ {t} ")
            } else {
                format!(" {t} ")
            };
            Span::styled(t, theme.title())
        };
        let window = self.users_cursor.window(self.users.len(), height);
        let users = self.users[window.clone()].iter().map(|u| {
            Row::new(vec![
                u.email.clone(),
                u.role.to_string(),
                if u.disabled { "disabled" } else { "active" }.to_owned(),
            ])
        });
        let selected = (self.focus == 0)
            .then(|| self.users_cursor.selected.checked_sub(window.start))
            .flatten();
        let widths = [
            Constraint::Fill(1),
            Constraint::Length(9),
            Constraint::Length(8),
        ];
        let header = ["Email", "Role", "State"];
        let table = list_table(
            users,
            selected,
            widths,
            header,
            focus_title(0, "Users"),
            theme,
        );
        frame.render_widget(table, left);
        let audit = self.visible_audit();
        let window = self.audit_cursor.window(audit.len(), height);
        let entries = audit[window.clone()].iter().map(|a| {
            Row::new(vec![
                a.occurred_at.format("%m-%d %H:%M").to_string(),
                a.action.clone(),
                a.outcome.clone(),
            ])
        });
        let selected = (self.focus == 1)
            .then(|| self.audit_cursor.selected.checked_sub(window.start))
            .flatten();
        let widths = [
            Constraint::Length(11),
            Constraint::Fill(1),
            Constraint::Length(8),
        ];
        let header = ["When", "Action", "Outcome"];
        let title = focus_title(1, "Audit log");
        frame.render_widget(
            list_table(entries, selected, widths, header, title, theme),
            right,
        );
        if let Some(form) = &self.form {
            form.draw(frame, area, theme);
        }
        if let Some((_, email, disable)) = &self.confirm_toggle {
            draw_confirm(frame, area, theme, email, *disable);
        }
    }
}

/// One of the Admin lists: a bordered table whose `selected` row (within the visible window) is
/// highlighted when the list has the focus.
fn list_table<'a>(
    rows: impl Iterator<Item = Row<'a>>,
    selected: Option<usize>,
    widths: [Constraint; 3],
    header: [&'a str; 3],
    title: Span<'a>,
    theme: Theme,
) -> Table<'a> {
    let rows = rows.enumerate().map(move |(i, row)| {
        if selected == Some(i) {
            row.style(theme.selected())
        } else {
            row
        }
    });
    Table::new(rows, widths)
        .header(Row::new(header).style(theme.title()))
        .block(Block::default().borders(Borders::ALL).title(title))
}
