//! The keymap, as data: which key does what in which mode. The `?` overlay and the README's
//! key table are drawn from [`HELP`], so help cannot drift from the bindings.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::action::{Action, Tab};

/// How keys are read at the moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Browsing: single keys are commands.
    Normal,
    /// A text field has focus: printable keys type.
    Text,
    /// A yes/no question.
    Confirm,
}

/// One documented binding: key, what it does, where.
pub struct Binding {
    pub key: &'static str,
    pub action: &'static str,
    pub context: &'static str,
}

const fn b(key: &'static str, action: &'static str, context: &'static str) -> Binding {
    Binding {
        key,
        action,
        context,
    }
}

/// Every key, for `?` and the README.
pub const HELP: &[Binding] = &[
    b(
        "1 … 5",
        "Patients, Billing, Analytics, Events, Admin",
        "everywhere",
    ),
    b("?", "this help", "everywhere"),
    b(
        ":",
        "command palette (:patients :billing :analytics :events :admin :quit)",
        "everywhere",
    ),
    b("Esc", "back / cancel / close", "everywhere"),
    b("q, Ctrl-C", "quit", "everywhere"),
    b(
        "↑ ↓ j k PgUp PgDn",
        "move; the wheel scrolls; lists page on",
        "lists",
    ),
    b("Enter", "open (detail pane, invoices, event)", "lists"),
    b("r", "reload", "lists"),
    b("/", "search patients on the server", "Patients"),
    b("s", "cycle sort (name, newest, oldest)", "Patients"),
    b("n / e", "new / edit patient (form)", "Patients"),
    b("d", "delete patient (asks first)", "Patients"),
    b(
        "Tab/Ctrl-S",
        "next field / submit; Ctrl-N/D add/drop line",
        "forms",
    ),
    b(
        "p c f a",
        "pay / new invoice; f refund; a statement",
        "Billing",
    ),
    b(
        "i / v",
        "issue / void the invoice (void asks first)",
        "Billing",
    ),
    b("b", "chart by day / week / month", "Analytics"),
    b(
        "n e d /",
        "new user, role, disable (asks), audit filter",
        "Admin",
    ),
    b(
        "t / Space",
        "type filter / pause-resume the live stream",
        "Events",
    ),
    b("y / n", "confirm / cancel", "questions"),
];

/// Maps a key press to an action in `mode`. `None`: the key means nothing here.
pub fn map(key: KeyEvent, mode: Mode) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None; // Windows reports releases too
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            KeyCode::Char('s') if mode == Mode::Text => Some(Action::Submit),
            KeyCode::Char('n') if mode == Mode::Text => Some(Action::AddLine),
            KeyCode::Char('d') if mode == Mode::Text => Some(Action::RemoveLine),
            _ => None,
        };
    }
    match mode {
        Mode::Text => match key.code {
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Tab => Some(Action::NextField),
            KeyCode::BackTab => Some(Action::PrevField),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char(c) => Some(Action::Input(c)),
            KeyCode::Up => Some(Action::PrevField),
            KeyCode::Down => Some(Action::NextField),
            _ => None,
        },
        Mode::Confirm => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirm),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(Action::Back),
            _ => None,
        },
        Mode::Normal => match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char(c @ '1'..='5') => {
                Some(Action::SwitchTab(Tab::ALL[(c as u8 - b'1') as usize]))
            }
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            KeyCode::Char(':') => Some(Action::OpenPalette),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown => Some(Action::PageDown),
            KeyCode::Enter => Some(Action::Open),
            // Admin: switches between the users and the audit list.
            KeyCode::Tab => Some(Action::NextField),
            KeyCode::Char('/') => Some(Action::StartSearch),
            KeyCode::Char('s') => Some(Action::CycleSort),
            KeyCode::Char('n') => Some(Action::NewPatient),
            KeyCode::Char('e') => Some(Action::EditPatient),
            KeyCode::Char('d') => Some(Action::DeletePatient),
            KeyCode::Char('p') => Some(Action::RecordPayment),
            KeyCode::Char('f') => Some(Action::RefundPayment),
            KeyCode::Char('a') => Some(Action::ShowStatement),
            KeyCode::Char('c') => Some(Action::NewInvoice),
            KeyCode::Char('i') => Some(Action::IssueInvoice),
            KeyCode::Char('v') => Some(Action::VoidInvoice),
            KeyCode::Char('b') => Some(Action::CycleBucket),
            KeyCode::Char('t') => Some(Action::CycleEventFilter),
            KeyCode::Char(' ') => Some(Action::TogglePause),
            KeyCode::Char('r') => Some(Action::Refresh),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_fixed_keys_map_to_their_actions() {
        assert!(matches!(
            map(key(KeyCode::Char('4')), Mode::Normal),
            Some(Action::SwitchTab(Tab::Events))
        ));
        assert!(matches!(
            map(key(KeyCode::Char('q')), Mode::Normal),
            Some(Action::Quit)
        ));
        assert!(matches!(
            map(
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Mode::Text
            ),
            Some(Action::Quit)
        ));
        assert!(matches!(
            map(
                KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL),
                Mode::Text
            ),
            Some(Action::Submit)
        ));
        assert!(matches!(
            map(key(KeyCode::Char(' ')), Mode::Normal),
            Some(Action::TogglePause)
        ));
    }

    #[test]
    fn text_fields_take_printable_keys() {
        assert!(matches!(
            map(key(KeyCode::Char('q')), Mode::Text),
            Some(Action::Input('q'))
        ));
        assert!(matches!(
            map(key(KeyCode::Char('1')), Mode::Text),
            Some(Action::Input('1'))
        ));
        assert!(matches!(
            map(key(KeyCode::Esc), Mode::Text),
            Some(Action::Back)
        ));
        assert!(map(key(KeyCode::Char('x')), Mode::Confirm).is_none());
    }
}
