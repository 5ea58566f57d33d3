//! Colours and text styles. The base is the terminal's own foreground and background
//! (`Color::Reset`), so light and dark terminals both read well; under `NO_COLOR` no colour is
//! set at all and emphasis is carried by bold, reverse and symbols only.

use ratatui::style::{Color, Modifier, Style};

/// The styles every view draws with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `no_color` (the `NO_COLOR` convention: set and non-empty).
    pub fn new(no_color: bool) -> Theme {
        Theme { color: !no_color }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    /// Plain text.
    pub fn text(self) -> Style {
        Style::new()
    }

    /// Secondary text (hints, timestamps).
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    /// Titles and the active tab.
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// The selected row.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Errors (always with a `✗` symbol too, so NO_COLOR still shows them).
    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Good news (`✓`, connected).
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// Warnings (reconnecting, paused).
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    /// The focused input field.
    pub fn focus(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Bar colour of charts.
    pub fn bar(self) -> Style {
        self.fg(Color::Cyan)
    }
}
