//! The patient form (`n` new, `e` edit): `Tab` moves between fields, `Ctrl-S` submits. The
//! server validates; its per-field errors come back in the problem body and are shown under
//! each field (with a `✗`, so they read without colour). A 412 (someone else saved first)
//! reloads the patient and says which fields changed.

use pms_proto::rest::{Patient, PatientRequest, Problem};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use uuid::Uuid;

use super::patients::changed_fields;
use super::{TextField, popup};
use crate::action::Request;
use crate::theme::Theme;

/// (label, API field name) of every field, in Tab order.
pub const FIELDS: [(&str, &str); 7] = [
    ("Name", "name"),
    ("Email", "email"),
    ("Address", "address"),
    ("Born", "dateOfBirth"),
    ("Registered", "registeredDate"),
    ("Phone", "phone"),
    ("Sex", "sex"),
];

/// State of the form.
#[derive(Debug, Clone)]
pub struct PatientForm {
    /// `None` for a new patient.
    pub id: Option<Uuid>,
    pub etag: Option<String>,
    /// The version the form was opened on (to tell what others changed on a 412).
    pub original: Option<Patient>,
    pub values: [TextField; 7],
    pub errors: [Option<String>; 7],
    pub focus: usize,
    /// A form-wide message (the 412 explanation, a non-field error).
    pub message: Option<String>,
    pub saving: bool,
}

impl PatientForm {
    /// An empty form; the registration date defaults to `today`.
    pub fn new(today: chrono::NaiveDate) -> PatientForm {
        let mut values: [TextField; 7] = Default::default();
        values[4] = TextField::with(today.to_string());
        PatientForm {
            id: None,
            etag: None,
            original: None,
            values,
            errors: Default::default(),
            focus: 0,
            message: None,
            saving: false,
        }
    }

    /// A form holding `patient`.
    pub fn edit(patient: &Patient, etag: Option<String>) -> PatientForm {
        PatientForm {
            id: Some(patient.id),
            etag,
            original: Some(patient.clone()),
            values: values_of(patient),
            errors: Default::default(),
            focus: 0,
            message: None,
            saving: false,
        }
    }

    /// Types into the focused field.
    pub fn input(&mut self, c: char) {
        self.values[self.focus].push(c);
    }

    /// Deletes in the focused field.
    pub fn backspace(&mut self) {
        self.values[self.focus].backspace();
    }

    /// `Tab`.
    pub fn next_field(&mut self) {
        self.focus = (self.focus + 1) % FIELDS.len();
    }

    /// `Shift-Tab`.
    pub fn prev_field(&mut self) {
        self.focus = (self.focus + FIELDS.len() - 1) % FIELDS.len();
    }

    /// `Ctrl-S`: the save request (ignored while one is in flight).
    pub fn submit(&mut self) -> Option<Request> {
        if self.saving {
            return None;
        }
        self.saving = true;
        self.message = None;
        let value = |i: usize| {
            Some(self.values[i].text.trim().to_owned()).filter(|v: &String| !v.is_empty())
        };
        Some(Request::SavePatient {
            id: self.id,
            etag: self.etag.clone(),
            body: PatientRequest {
                name: value(0),
                email: value(1),
                address: value(2),
                date_of_birth: value(3),
                registered_date: value(4),
                phone: value(5),
                sex: value(6).map(|s| s.to_ascii_uppercase()),
            },
        })
    }

    /// The server refused: put each field error under its field; the rest in the message.
    pub fn rejected(&mut self, problem: Option<&Problem>, summary: String) {
        self.saving = false;
        self.errors = Default::default();
        let mut unplaced = Vec::new();
        for e in problem.map(|p| p.errors.as_slice()).unwrap_or_default() {
            match FIELDS.iter().position(|(_, key)| *key == e.field) {
                Some(i) => self.errors[i] = Some(e.message.clone()),
                None => unplaced.push(format!("{}: {}", e.field, e.message)),
            }
        }
        if let Some(first) = self.errors.iter().position(Option::is_some) {
            self.focus = first;
        }
        let count = self.errors.iter().filter(|e| e.is_some()).count();
        self.message = Some(match (count, unplaced.is_empty()) {
            (0, true) => summary,
            (0, false) => unplaced.join("; "),
            (n, _) => format!("{n} field(s) need fixing"),
        });
    }

    /// The patient was reloaded after a 412: take the new version; fields the user did not
    /// touch follow the server, and the message names what the other writer changed.
    pub fn rebase(&mut self, fresh: &Patient, etag: Option<String>) {
        self.saving = false;
        let changed = match &self.original {
            Some(old) => {
                let before = values_of(old);
                let after = values_of(fresh);
                for i in 0..FIELDS.len() {
                    if self.values[i] == before[i] {
                        self.values[i] = after[i].clone();
                    }
                }
                changed_fields(old, fresh)
            }
            None => Vec::new(),
        };
        self.original = Some(fresh.clone());
        self.etag = etag;
        self.message = Some(if changed.is_empty() {
            "saved by someone else meanwhile: reloaded, Ctrl-S to save again".to_owned()
        } else {
            format!(
                "changed on the server meanwhile: {} — reloaded, Ctrl-S to save again",
                changed.join(", ")
            )
        });
    }

    /// Draws the form as a popup over `area`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let height = (FIELDS.len() as u16) * 2 + 4;
        let area = popup(area, 72, height);
        frame.render_widget(Clear, area);
        let errors = self.errors.iter().filter(|e| e.is_some()).count();
        let mut title = if self.id.is_some() {
            " Edit patient ".to_owned()
        } else {
            " New patient ".to_owned()
        };
        if errors > 0 {
            title = format!("{title}— ✗ {errors} error(s) ");
        }
        let block = Block::default().borders(Borders::ALL).title(Span::styled(
            title,
            if errors > 0 {
                theme.error()
            } else {
                theme.title()
            },
        ));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let mut constraints = vec![Constraint::Length(1); FIELDS.len() * 2];
        constraints.push(Constraint::Length(1));
        constraints.push(Constraint::Length(1));
        let rows = Layout::vertical(constraints).split(inner);
        for (i, (label, _)) in FIELDS.iter().enumerate() {
            let focused = self.focus == i;
            let marker = if focused { "▸ " } else { "  " };
            let mut spans = vec![
                Span::styled(
                    format!("{marker}{label:<11}"),
                    if focused { theme.focus() } else { theme.text() },
                ),
                Span::raw(self.values[i].text.clone()),
            ];
            if focused {
                spans.push(Span::styled("▏", theme.focus()));
            }
            if self.values[i].text.is_empty() && !focused {
                spans.push(Span::styled(placeholder(i), theme.dim()));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), rows[i * 2]);
            if let Some(e) = &self.errors[i] {
                frame.render_widget(
                    Paragraph::new(Span::styled(format!("             ✗ {e}"), theme.error())),
                    rows[i * 2 + 1],
                );
            }
        }
        let status = match (&self.message, self.saving) {
            (_, true) => Span::styled("saving…", theme.warn()),
            (Some(m), false) => Span::styled(format!("✗ {m}"), theme.error()),
            (None, false) => Span::raw(""),
        };
        frame.render_widget(Paragraph::new(status), rows[FIELDS.len() * 2]);
        frame.render_widget(
            Paragraph::new(Span::styled(
                "Tab next · Shift-Tab previous · Ctrl-S save · Esc cancel",
                theme.dim(),
            )),
            rows[FIELDS.len() * 2 + 1],
        );
    }
}

fn placeholder(i: usize) -> &'static str {
    match i {
        3 | 4 => "YYYY-MM-DD",
        5 => "optional",
        6 => "optional: FEMALE, MALE, OTHER, UNKNOWN",
        _ => "",
    }
}

fn values_of(p: &Patient) -> [TextField; 7] {
    [
        TextField::with(p.name.clone()),
        TextField::with(p.email.clone()),
        TextField::with(p.address.clone()),
        TextField::with(p.date_of_birth.to_string()),
        TextField::with(p.registered_date.to_string()),
        TextField::with(p.phone.clone().unwrap_or_default()),
        TextField::with(p.sex.map(|s| s.as_str()).unwrap_or_default()),
    ]
}
