//! One component per view. Each keeps its own state, changes it only in its `update`-side
//! methods (called from `App::update`), and draws with `draw(&self, …)`, which never mutates.
//! Shared pieces live here: a one-line text field, a list cursor that renders only the visible
//! window, popup placement, and how an error reads in the TUI.

pub mod admin;
pub mod admin_form;
pub mod analytics;
pub mod billing;
pub mod events;
pub mod help;
pub mod invoice_form;
pub mod login;
pub mod patient_form;
pub mod patients;
pub mod refund;
pub mod statement;

use pms_cli::Error;
use pms_cli::error::StatusCode;
use ratatui::layout::{Constraint, Flex, Layout, Rect};

/// A one-line text input; the cursor is always at the end (enough for short fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextField {
    pub text: String,
}

impl TextField {
    /// A field holding `text`.
    pub fn with(text: impl Into<String>) -> TextField {
        TextField { text: text.into() }
    }

    /// Types one character (control characters are ignored).
    pub fn push(&mut self, c: char) {
        if !c.is_control() {
            self.text.push(c);
        }
    }

    /// Deletes the last character.
    pub fn backspace(&mut self) {
        self.text.pop();
    }
}

/// The selected row of a list and the window of rows shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub selected: usize,
}

impl Cursor {
    /// One row down (stops at the last).
    pub fn down(&mut self, len: usize, by: usize) {
        self.selected = (self.selected + by).min(len.saturating_sub(1));
    }

    /// One row up.
    pub fn up(&mut self, by: usize) {
        self.selected = self.selected.saturating_sub(by);
    }

    /// The first row shown when `height` rows fit: the window moves a page at a time, so rows
    /// stay put while the cursor moves inside it (derived, so drawing stays read-only).
    pub fn offset(self, height: usize) -> usize {
        if height == 0 {
            0
        } else {
            self.selected - self.selected % height
        }
    }

    /// The visible index range of a list of `len` rows in `height` rows.
    pub fn window(self, len: usize, height: usize) -> std::ops::Range<usize> {
        let start = self.offset(height).min(len);
        start..(start + height).min(len)
    }
}

/// A centred rectangle of at most `width` × `height` inside `area`.
pub fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// How an error reads in the TUI: one short line saying what happened and what to do here
/// (the CLI phrases its own, with commands to run).
pub fn describe(e: &Error) -> String {
    match e {
        Error::Unreachable { url, reason, .. } => {
            format!("server unreachable at {url} ({reason}) — retrying when you act again")
        }
        Error::NotLoggedIn { .. } | Error::SessionExpired => {
            "session expired — log in again".to_owned()
        }
        Error::Api { status, .. } => {
            let why = pms_cli::error::problem_reason(*status, e.problem());
            match *status {
                StatusCode::UNAUTHORIZED => "session expired — log in again".to_owned(),
                StatusCode::FORBIDDEN => format!("not allowed for your role: {why}"),
                StatusCode::NOT_FOUND => "not found (deleted meanwhile?) — press r".to_owned(),
                StatusCode::CONFLICT => format!("conflict: {why}"),
                StatusCode::PRECONDITION_FAILED => {
                    "changed on the server since you opened it — reloaded".to_owned()
                }
                StatusCode::TOO_MANY_REQUESTS => match e {
                    Error::Api {
                        retry_after: Some(wait),
                        ..
                    } => format!(
                        "too many requests — try again in {} s",
                        wait.as_secs().max(1)
                    ),
                    _ => "too many requests — wait a moment".to_owned(),
                },
                s if s.is_server_error() => format!("server error {}: {why}", s.as_u16()),
                _ => why,
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_windows_move_a_page_at_a_time() {
        let mut c = Cursor::default();
        assert_eq!(c.window(10_000, 20), 0..20);
        c.down(10_000, 25);
        assert_eq!(c.selected, 25);
        assert_eq!(c.window(10_000, 20), 20..40);
        c.down(10_000, 100_000);
        assert_eq!(c.selected, 9_999);
        assert_eq!(c.window(10_000, 20), 9_980..10_000);
        c.up(10_000);
        assert_eq!(c.selected, 0);
        assert_eq!(Cursor::default().window(0, 20), 0..0);
    }

    #[test]
    fn errors_read_as_tui_advice() {
        let e = Error::Api {
            status: StatusCode::UNAUTHORIZED,
            problem: None,
            context: None,
            source_kind: pms_cli::error::TokenSource::Session,
            retry_after: None,
        };
        assert_eq!(describe(&e), "session expired — log in again");
        assert!(!describe(&e).contains("pms login"));
        let down = Error::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "Connection refused".into(),
            source: None,
        };
        assert!(describe(&down).starts_with("server unreachable at http://127.0.0.1:1"));
    }
}
