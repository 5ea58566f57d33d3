//! The `?` overlay (every key, from [`crate::keys::HELP`]) and the `:` command palette.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table};

use super::{TextField, popup};
use crate::action::{Action, Tab};
use crate::keys::HELP;
use crate::theme::Theme;

/// Palette commands: (names accepted, what it does).
pub const COMMANDS: &[(&[&str], &str)] = &[
    (&["patients", "pat", "p"], "Patients tab"),
    (&["billing", "bill", "inv", "pay"], "Billing tab"),
    (&["analytics", "an"], "Analytics tab"),
    (&["events", "ev"], "Events tab"),
    (&["admin", "users", "audit"], "Admin tab"),
    (&["help", "h"], "this help"),
    (&["quit", "q"], "quit"),
];

/// What a palette line asks for.
pub fn command(line: &str) -> Result<Action, String> {
    let word = line.trim().trim_start_matches(':').to_ascii_lowercase();
    let index = COMMANDS
        .iter()
        .position(|(names, _)| names.contains(&word.as_str()))
        .ok_or_else(|| format!("unknown command `:{word}` — try :patients :events :quit"))?;
    Ok(match index {
        0..=4 => Action::SwitchTab(Tab::ALL[index]),
        5 => Action::ToggleHelp,
        _ => Action::Quit,
    })
}

/// Draws the help overlay.
pub fn draw_help(frame: &mut Frame, area: Rect, theme: Theme) {
    let height = HELP.len() as u16 + 3;
    let area = popup(area, 78, height);
    frame.render_widget(Clear, area);
    let rows = HELP.iter().map(|b| Row::new([b.key, b.action, b.context]));
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(18),
                Constraint::Fill(1),
                Constraint::Length(10),
            ],
        )
        .header(Row::new(["Key", "Does", "Where"]).style(theme.title()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Keys — ? or Esc closes ", theme.title())),
        ),
        area,
    );
}

/// Draws the palette input on the line `area`.
pub fn draw_palette(field: &TextField, frame: &mut Frame, area: Rect, theme: Theme) {
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(":", theme.focus()),
            Span::raw(field.text.clone()),
            Span::styled("▏", theme.focus()),
            Span::styled(
                "  patients billing analytics events admin help quit",
                theme.dim(),
            ),
        ])),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_commands_and_aliases() {
        assert!(matches!(
            command("patients"),
            Ok(Action::SwitchTab(Tab::Patients))
        ));
        assert!(matches!(command(":ev"), Ok(Action::SwitchTab(Tab::Events))));
        assert!(matches!(
            command("billing"),
            Ok(Action::SwitchTab(Tab::Billing))
        ));
        assert!(matches!(
            command("admin"),
            Ok(Action::SwitchTab(Tab::Admin))
        ));
        assert!(matches!(command("quit"), Ok(Action::Quit)));
        assert!(command("nope").unwrap_err().contains(":nope"));
    }
}
