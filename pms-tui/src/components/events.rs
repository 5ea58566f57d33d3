//! The Events tab: the live stream as it arrives (newest at the bottom, followed), a marker
//! row for every loss and every resume (so a gap is visible), a type filter (`t`), pause
//! (`Space`: new events are held and counted, not lost) and the detail of one event (`Enter`).

use std::collections::{BTreeSet, VecDeque};

use pms_proto::rest::StoredEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Wrap};

use super::{Cursor, popup};
use crate::action::StreamUpdate;
use crate::theme::Theme;

/// How many rows the tab keeps (older ones are dropped).
pub const CAPACITY: usize = 2_000;

/// One row of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EventRow {
    Event(Box<StoredEvent>),
    /// A connection change: lost, or resumed after an id.
    Marker(String),
}

/// Connection state for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Idle,
    Connecting,
    Live,
    Reconnecting(String),
}

/// State of the Events tab.
#[derive(Debug)]
pub struct EventsView {
    pub rows: VecDeque<EventRow>,
    /// Arrived while paused.
    pub held: Vec<EventRow>,
    pub paused: bool,
    /// Show only this type.
    pub filter: Option<String>,
    pub types: BTreeSet<String>,
    pub cursor: Cursor,
    /// Follow the newest row (off once the user moves up).
    pub follow: bool,
    pub detail: bool,
    pub connection: Connection,
}

impl Default for EventsView {
    fn default() -> EventsView {
        EventsView {
            rows: VecDeque::new(),
            held: Vec::new(),
            paused: false,
            filter: None,
            types: BTreeSet::new(),
            cursor: Cursor::default(),
            follow: true,
            detail: false,
            connection: Connection::Idle,
        }
    }
}

impl EventsView {
    /// A stream update arrived.
    pub fn on_stream(&mut self, update: StreamUpdate) {
        match update {
            StreamUpdate::Connecting => {
                if self.connection == Connection::Idle {
                    self.connection = Connection::Connecting;
                }
            }
            StreamUpdate::Connected { resumed_after } => {
                if let Some(id) = resumed_after {
                    self.push(EventRow::Marker(format!(
                        "⟳ reconnected — resumed after #{id}; nothing missed"
                    )));
                }
                self.connection = Connection::Live;
            }
            StreamUpdate::Lost {
                reason,
                retry_in_ms,
            } => {
                self.push(EventRow::Marker(format!(
                    "✗ stream lost ({reason}) — retrying in {:.1} s",
                    retry_in_ms as f64 / 1000.0
                )));
                self.connection = Connection::Reconnecting(reason);
            }
            StreamUpdate::Event(event) => {
                self.types.insert(event.event_type.clone());
                self.push(EventRow::Event(event));
            }
        }
    }

    fn push(&mut self, row: EventRow) {
        if self.paused {
            self.held.push(row);
            return;
        }
        self.rows.push_back(row);
        if self.rows.len() > CAPACITY {
            self.rows.pop_front();
            self.cursor.up(1);
        }
        if self.follow {
            self.cursor.selected = self.visible().len().saturating_sub(1);
        }
    }

    /// `Space`: pause, or resume and take in what was held.
    pub fn toggle_pause(&mut self) {
        self.paused = !self.paused;
        if !self.paused {
            for row in std::mem::take(&mut self.held) {
                self.push(row);
            }
        }
    }

    /// `t`: all types, then each type seen, in order.
    pub fn cycle_filter(&mut self) {
        self.filter = match &self.filter {
            None => self.types.iter().next().cloned(),
            Some(current) => self
                .types
                .range::<String, _>((
                    std::ops::Bound::Excluded(current.clone()),
                    std::ops::Bound::Unbounded,
                ))
                .next()
                .cloned(),
        };
        self.cursor.selected = self.visible().len().saturating_sub(1);
        self.follow = true;
    }

    /// The rows the filter lets through (markers always).
    pub fn visible(&self) -> Vec<&EventRow> {
        self.rows
            .iter()
            .filter(|row| match (row, &self.filter) {
                (EventRow::Event(e), Some(kind)) => &e.event_type == kind,
                _ => true,
            })
            .collect()
    }

    /// Moves the cursor; following resumes at the last row.
    pub fn move_by(&mut self, down: bool, by: usize) {
        let len = self.visible().len();
        if down {
            self.cursor.down(len, by);
        } else {
            self.cursor.up(by);
        }
        self.follow = self.cursor.selected + 1 >= len;
    }

    /// Draws the tab.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let [top, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
        let mut spans = vec![Span::styled(
            format!(
                "type: {}",
                self.filter.as_deref().unwrap_or("all (t filters)")
            ),
            theme.dim(),
        )];
        if self.paused {
            spans.push(Span::styled(
                format!("  ⏸ paused, +{} new (Space resumes)", self.held.len()),
                theme.warn(),
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), top);
        let visible = self.visible();
        let height = body.height.saturating_sub(3) as usize;
        let window = self.cursor.window(visible.len(), height);
        let rows = visible[window.clone()].iter().enumerate().map(|(i, row)| {
            let r = match row {
                EventRow::Event(e) => Row::new(vec![
                    e.seq.to_string(),
                    e.occurred_at.format("%H:%M:%S").to_string(),
                    e.event_type.clone(),
                    e.key.clone(),
                ]),
                EventRow::Marker(text) => Row::new(vec![
                    String::new(),
                    String::new(),
                    "── stream ──".to_owned(),
                    text.clone(),
                ])
                .style(theme.warn()),
            };
            if window.start + i == self.cursor.selected {
                r.style(theme.selected())
            } else {
                r
            }
        });
        let table = Table::new(
            rows,
            [
                Constraint::Length(6),
                Constraint::Length(8),
                Constraint::Length(20),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(["#", "Time", "Type", "Key"]).style(theme.title()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Live events ", theme.title())),
        );
        frame.render_widget(table, body);
        if visible.is_empty() {
            let inner = Rect {
                y: body.y + 2,
                height: 1,
                x: body.x + 2,
                width: body.width.saturating_sub(4),
            };
            frame.render_widget(
                Paragraph::new(Span::styled("waiting for events…", theme.dim())),
                inner,
            );
        }
        if self.detail
            && let Some(EventRow::Event(e)) = visible.get(self.cursor.selected)
        {
            let area = popup(area, 76, 18);
            frame.render_widget(Clear, area);
            let data = serde_json::to_string_pretty(&e.data).unwrap_or_default();
            let mut lines = vec![
                Line::raw(format!("#{}  {}  {}", e.seq, e.event_type, e.topic)),
                Line::raw(format!("id {}  key {}", e.event_id, e.key)),
                Line::raw(format!("at {}", e.occurred_at.to_rfc3339())),
                Line::raw(""),
            ];
            lines.extend(data.lines().map(|l| Line::raw(l.to_owned())));
            frame.render_widget(
                Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(Span::styled(" Event — Esc closes ", theme.title())),
                ),
                area,
            );
        }
    }
}
