//! The Patients tab: a server-paged table (scrolling near the end fetches the next page),
//! server-side `/` search, sort, the detail pane (fields, billing, history, audit) and the
//! delete confirmation. The create/edit form is [`super::patient_form`].

use pms_cli::api::Page;
use pms_proto::rest::Patient;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};
use uuid::Uuid;

use super::patient_form::PatientForm;
use super::{Cursor, TextField, popup};
use crate::action::{PatientDetail, Request};
use crate::money;
use crate::theme::Theme;

/// Sort orders offered by `s`: (API value, label).
pub const SORTS: [(&str, &str); 3] = [
    ("name", "name"),
    ("-createdAt", "newest"),
    ("createdAt", "oldest"),
];

/// Fetch the next page when the cursor is this close to the end of what is loaded.
const PREFETCH: usize = 20;

/// State of the Patients tab.
#[derive(Debug, Default)]
pub struct PatientsView {
    pub items: Vec<Patient>,
    pub next: Option<String>,
    pub loading: bool,
    pub loaded: bool,
    pub error: Option<String>,
    /// The query the list shows.
    pub query: String,
    /// The search box, while open.
    pub search: Option<TextField>,
    pub sort: usize,
    pub cursor: Cursor,
    pub detail: Option<Box<PatientDetail>>,
    pub detail_loading: bool,
    pub form: Option<PatientForm>,
    /// Delete asked for: (id, name), waiting for `y`.
    pub confirm_delete: Option<(Uuid, String)>,
}

impl PatientsView {
    /// The request for the first page of the current query and sort.
    pub fn reload(&mut self) -> Request {
        self.loading = true;
        self.error = None;
        Request::Patients {
            q: Some(self.query.clone()).filter(|q| !q.is_empty()),
            sort: SORTS[self.sort].0.to_owned(),
            cursor: None,
        }
    }

    /// A page arrived.
    pub fn loaded(&mut self, append: bool, page: Page<Patient>) {
        let keep = self.selected().map(|p| p.id);
        if append {
            self.items.extend(page.items);
        } else {
            self.items = page.items;
            // Keep the selection on the same patient when it is still listed.
            self.cursor.selected = keep
                .and_then(|id| self.items.iter().position(|p| p.id == id))
                .unwrap_or(0);
        }
        self.next = page.next;
        self.loading = false;
        self.loaded = true;
    }

    /// The patient under the cursor.
    pub fn selected(&self) -> Option<&Patient> {
        self.items.get(self.cursor.selected)
    }

    /// Moves down; near the end of what is loaded asks for the next page.
    pub fn down(&mut self, by: usize) -> Option<Request> {
        self.cursor.down(self.items.len(), by);
        let near_end = self.cursor.selected + PREFETCH >= self.items.len();
        match &self.next {
            Some(next) if near_end && !self.loading => {
                self.loading = true;
                Some(Request::Patients {
                    q: None,
                    sort: String::new(),
                    cursor: Some(next.clone()),
                })
            }
            _ => None,
        }
    }

    /// `/` submitted: search on the server.
    pub fn submit_search(&mut self) -> Request {
        let text = self.search.take().map(|f| f.text).unwrap_or_default();
        self.query = text.trim().to_owned();
        self.cursor = Cursor::default();
        self.reload()
    }

    /// Draws the tab.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let [top, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
        let search = match &self.search {
            Some(field) => Line::from(vec![
                Span::styled("/ ", theme.focus()),
                Span::raw(field.text.clone()),
                Span::styled("▏", theme.focus()),
                Span::styled("  Enter search · Esc cancel", theme.dim()),
            ]),
            None => {
                let mut spans = vec![Span::styled(
                    format!("sort: {}", SORTS[self.sort].1),
                    theme.dim(),
                )];
                if !self.query.is_empty() {
                    spans.push(Span::raw(format!("  search: “{}”", self.query)));
                }
                let more = if self.next.is_some() { "+" } else { "" };
                spans.push(Span::styled(
                    format!("  {}{more} loaded", self.items.len()),
                    theme.dim(),
                ));
                if self.loading {
                    spans.push(Span::styled("  loading…", theme.warn()));
                }
                if let Some(e) = &self.error {
                    spans.push(Span::styled(format!("  ✗ {e}"), theme.error()));
                }
                Line::from(spans)
            }
        };
        frame.render_widget(Paragraph::new(search), top);
        let (list_area, detail_area) = if self.detail.is_some() || self.detail_loading {
            let [l, r] =
                Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                    .areas(body);
            (l, Some(r))
        } else {
            (body, None)
        };
        self.draw_table(frame, list_area, theme, detail_area.is_some());
        if let Some(area) = detail_area {
            self.draw_detail(frame, area, theme);
        }
        if let Some(form) = &self.form {
            form.draw(frame, area, theme);
        }
        if let Some((_, name)) = &self.confirm_delete {
            let area = popup(area, 50, 5);
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::raw(format!("Delete {name}?")),
                    Line::raw(""),
                    Line::styled("y delete · n / Esc keep", theme.dim()),
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

    fn draw_table(&self, frame: &mut Frame, area: Rect, theme: Theme, narrow: bool) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(" Patients ", theme.title()));
        let inner_height = area.height.saturating_sub(3) as usize; // borders + header
        let window = self.cursor.window(self.items.len(), inner_height);
        // Only the visible rows are built: 10,000 loaded patients cost one screenful.
        let rows = self.items[window.clone()].iter().enumerate().map(|(i, p)| {
            let style = if window.start + i == self.cursor.selected {
                theme.selected()
            } else {
                theme.text()
            };
            let mut cells = vec![Cell::from(p.name.clone()), Cell::from(p.mrn.clone())];
            if !narrow {
                cells.push(Cell::from(p.email.clone()));
                cells.push(Cell::from(p.date_of_birth.to_string()));
            }
            Row::new(cells).style(style)
        });
        let (header, widths): (Vec<&str>, Vec<Constraint>) = if narrow {
            (
                vec!["Name", "MRN"],
                vec![Constraint::Fill(2), Constraint::Length(12)],
            )
        } else {
            (
                vec!["Name", "MRN", "Email", "Born"],
                vec![
                    Constraint::Fill(2),
                    Constraint::Length(12),
                    Constraint::Fill(2),
                    Constraint::Length(10),
                ],
            )
        };
        let table = Table::new(rows, widths)
            .header(Row::new(header).style(theme.title()))
            .block(block);
        frame.render_widget(table, area);
        if self.items.is_empty() && !self.loading && self.loaded {
            let hint = if self.query.is_empty() {
                "no patients yet — n creates one"
            } else {
                "no patient matches — / to search again"
            };
            let inner = Rect {
                y: area.y + 2,
                height: 1,
                x: area.x + 2,
                width: area.width.saturating_sub(4),
            };
            frame.render_widget(Paragraph::new(Span::styled(hint, theme.dim())), inner);
        }
    }

    fn draw_detail(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(" Detail ", theme.title()));
        let Some(detail) = &self.detail else {
            frame.render_widget(Paragraph::new("loading…").block(block), area);
            return;
        };
        let p = &detail.patient;
        let field = |k: &str, v: String| {
            Line::from(vec![
                Span::styled(format!("{k:<11}"), theme.dim()),
                Span::raw(v),
            ])
        };
        let mut lines = vec![
            field("Name", p.name.clone()),
            field("MRN", p.mrn.clone()),
            field("Email", p.email.clone()),
            field("Address", p.address.clone()),
            field("Born", p.date_of_birth.to_string()),
            field("Registered", p.registered_date.to_string()),
            field("Phone", p.phone.clone().unwrap_or_else(|| "—".into())),
            field(
                "Sex",
                p.sex
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|| "—".into()),
            ),
            field("Version", p.version.to_string()),
            field("ID", p.id.to_string()),
            Line::styled("Billing", theme.title()),
        ];
        if detail.accounts.is_empty() {
            lines.push(Line::styled("  no billing account yet", theme.dim()));
        }
        for a in &detail.accounts {
            let currency = a.currency.clone().unwrap_or_else(|| "USD".into());
            lines.push(Line::raw(format!(
                "  {} balance {}",
                a.status.as_str(),
                money::format(a.balance, &currency)
            )));
        }
        lines.push(Line::styled("History", theme.title()));
        let mut previous: Option<&Patient> = None;
        for v in &detail.history {
            let changed = previous
                .map(|old| changed_fields(old, &v.patient).join(", "))
                .unwrap_or_else(|| "created".into());
            lines.push(Line::raw(format!(
                "  v{} {} {} {}",
                v.version,
                v.changed_at.format("%Y-%m-%d %H:%M"),
                v.change_type,
                changed
            )));
            previous = Some(&v.patient);
        }
        if let Some(audit) = &detail.audit {
            lines.push(Line::styled("Audit", theme.title()));
            for a in audit.iter().take(20) {
                lines.push(Line::raw(format!(
                    "  {} {} {}",
                    a.occurred_at.format("%Y-%m-%d %H:%M"),
                    a.action,
                    a.outcome
                )));
            }
        }
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
    }
}

/// Names of the fields that differ between two versions of a patient.
pub fn changed_fields(old: &Patient, new: &Patient) -> Vec<&'static str> {
    let mut out = Vec::new();
    let checks: [(&'static str, bool); 7] = [
        ("name", old.name != new.name),
        ("email", old.email != new.email),
        ("address", old.address != new.address),
        ("dateOfBirth", old.date_of_birth != new.date_of_birth),
        ("registeredDate", old.registered_date != new.registered_date),
        ("phone", old.phone != new.phone),
        ("sex", old.sex != new.sex),
    ];
    for (name, differs) in checks {
        if differs {
            out.push(name);
        }
    }
    out
}
