//! The login screen: email and password, stored like `pms login` does (keyring first).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{TextField, popup};
use crate::action::Request;
use crate::theme::Theme;

/// State of the login form.
#[derive(Debug, Clone, Default)]
pub struct LoginView {
    pub email: TextField,
    pub password: TextField,
    /// 0 = email, 1 = password.
    pub focus: usize,
    pub error: Option<String>,
    pub busy: bool,
}

impl LoginView {
    /// The form, with the profile's last email filled in.
    pub fn new(email: Option<String>, error: Option<String>) -> LoginView {
        let focus = usize::from(email.is_some());
        LoginView {
            email: TextField::with(email.unwrap_or_default()),
            focus,
            error,
            ..LoginView::default()
        }
    }

    fn field(&mut self) -> &mut TextField {
        if self.focus == 0 {
            &mut self.email
        } else {
            &mut self.password
        }
    }

    /// Types into the focused field.
    pub fn input(&mut self, c: char) {
        self.field().push(c);
    }

    /// Deletes in the focused field.
    pub fn backspace(&mut self) {
        self.field().backspace();
    }

    /// Moves to the other field.
    pub fn next_field(&mut self) {
        self.focus = 1 - self.focus;
    }

    /// Enter: on the email field moves on; on the password field logs in.
    pub fn submit(&mut self) -> Option<Request> {
        if self.busy {
            return None;
        }
        if self.email.text.trim().is_empty() {
            self.focus = 0;
            self.error = Some("✗ enter your email".into());
            return None;
        }
        if self.password.text.is_empty() {
            self.focus = 1;
            return None;
        }
        self.busy = true;
        self.error = None;
        Some(Request::Login {
            email: self.email.text.trim().to_owned(),
            password: self.password.text.clone(),
        })
    }

    /// Draws the form centred in `area`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme, server: &str) {
        let area = popup(area, 60, 11);
        frame.render_widget(Clear, area);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(" PMS — Log in ", theme.title()));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let rows = Layout::vertical([Constraint::Length(1); 8]).split(inner);
        let label = |i: usize, name: &str| {
            let marker = if self.focus == i { "▸ " } else { "  " };
            let style = if self.focus == i {
                theme.focus()
            } else {
                theme.text()
            };
            Span::styled(format!("{marker}{name:<9}"), style)
        };
        frame.render_widget(
            Paragraph::new(Span::styled(format!("Server   {server}"), theme.dim())),
            rows[0],
        );
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                label(0, "Email"),
                Span::raw(self.email.text.clone()),
            ])),
            rows[2],
        );
        let masked = "•".repeat(self.password.text.chars().count());
        frame.render_widget(
            Paragraph::new(Line::from(vec![label(1, "Password"), Span::raw(masked)])),
            rows[3],
        );
        let status = match (&self.error, self.busy) {
            (_, true) => Span::styled("logging in…", theme.warn()),
            (Some(e), false) => Span::styled(e.clone(), theme.error()),
            (None, false) => Span::raw(""),
        };
        frame.render_widget(Paragraph::new(status).wrap(Wrap { trim: true }), rows[5]);
        frame.render_widget(
            Paragraph::new(Span::styled(
                "Enter log in · Tab next field · Ctrl-C quit",
                theme.dim(),
            )),
            rows[7],
        );
    }
}
