//! Drawing the whole screen from `&App`: the tab bar, the visible tab, the status bar and any
//! overlay (help, palette, login). Reads state only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};

use crate::action::Tab;
use crate::app::App;
use crate::components::events::Connection;
use crate::components::help;

/// Below this the layout cannot work: say so instead of drawing garbage.
pub const MIN_SIZE: (u16, u16) = (60, 16);

/// Draws the app into the frame.
pub fn draw(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let theme = app.theme;
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        frame.render_widget(
            Paragraph::new(format!(
                "terminal too small ({}×{}); pms-tui needs at least {}×{}",
                area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
            )),
            area,
        );
        return;
    }
    let [top, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    if let Some(login) = &app.login {
        frame.render_widget(
            Paragraph::new(Span::styled(" pms-tui ", theme.title())),
            top,
        );
        login.draw(frame, body, theme, &app.server);
        frame.render_widget(
            Paragraph::new(Span::styled(" not logged in", theme.dim())),
            status,
        );
        return;
    }
    draw_tabs(app, frame, top);
    match app.tab {
        Tab::Patients => app.patients.draw(frame, body, theme),
        Tab::Billing => app.billing.draw(frame, body, theme),
        Tab::Analytics => app.analytics.draw(frame, body, theme),
        Tab::Events => app.events.draw(frame, body, theme),
        Tab::Admin => app.admin.draw(frame, body, theme, app.is_admin()),
    }
    if app.help {
        help::draw_help(frame, body, theme);
    }
    match &app.palette {
        Some(field) => help::draw_palette(field, frame, status, theme),
        None => draw_status(app, frame, status),
    }
}

fn draw_tabs(app: &App, frame: &mut Frame, area: Rect) {
    let theme = app.theme;
    let who = match &app.user {
        Some((email, Some(role))) => format!("{email} ({role}) "),
        Some((email, None)) => format!("{email} "),
        None => "connecting… ".to_owned(),
    };
    // The tabs come first; the account takes what is left (dropped when nothing is).
    let tabs_width: u16 = Tab::ALL
        .iter()
        .map(|t| t.title().chars().count() as u16 + 5)
        .sum();
    let [tabs_area, who_area] =
        Layout::horizontal([Constraint::Length(tabs_width), Constraint::Min(0)]).areas(area);
    let room = usize::from(who_area.width);
    let who = if who.chars().count() <= room {
        format!("{who:>room$}")
    } else {
        String::new()
    };
    let titles = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| Line::raw(format!("{} {}", i + 1, t.title())));
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(
                theme
                    .title()
                    .add_modifier(ratatui::style::Modifier::REVERSED),
            )
            .divider("│"),
        tabs_area,
    );
    frame.render_widget(Paragraph::new(Span::styled(who, theme.dim())), who_area);
}

fn draw_status(app: &App, frame: &mut Frame, area: Rect) {
    let theme = app.theme;
    let connection = match &app.events.connection {
        Connection::Idle => Span::styled("○ idle", theme.dim()),
        Connection::Connecting => Span::styled("◌ connecting", theme.warn()),
        Connection::Live => Span::styled("● live", theme.ok()),
        Connection::Reconnecting(_) => Span::styled("◌ reconnecting", theme.warn()),
    };
    let mut spans = vec![Span::raw(" "), connection, Span::raw(" │ ")];
    match &app.flash {
        Some(flash) => spans.push(Span::styled(
            flash.text.clone(),
            if flash.error {
                theme.error()
            } else {
                theme.ok()
            },
        )),
        None => spans.push(Span::styled(hints(app), theme.dim())),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn hints(app: &App) -> &'static str {
    match app.tab {
        Tab::Patients => "/ search  Enter open  n new  e edit  d delete  s sort  ? help  q quit",
        Tab::Billing => "Enter invoices  p pay  f refund  c new  i issue  v void  ? help",
        Tab::Analytics => "b day/week/month  r reload  ? help  q quit",
        Tab::Events => "Space pause  t type  Enter detail  ? help  q quit",
        Tab::Admin => "Tab list  n user  e role  d disable  / filter  ? help",
    }
}
