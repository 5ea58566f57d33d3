//! The Admin tab's popups: a new user (email, password, role), a role change, the audit-log
//! filter, and the yes/no question before a user is disabled or enabled. One small form type
//! serves the three text popups; what `Enter` sends depends on its [`AdminFormKind`].

use std::str::FromStr;

use pms_proto::rest::{CreateUserRequest, Role, UpdateUserRequest};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use uuid::Uuid;

use super::{TextField, popup};
use crate::action::Request;
use crate::theme::Theme;

/// What the form is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminFormKind {
    /// `n`: a new user.
    NewUser,
    /// `e`: the role of this user.
    Role { id: Uuid, email: String },
    /// `/`: the audit filter (patient id on the server; action and outcome on the rows).
    AuditFilter,
}

/// The audit filter in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Sent as `patientId`.
    pub patient: Option<Uuid>,
    /// Substring of the action (`patient.read`), case-insensitive.
    pub action: String,
    /// The outcome (`SUCCESS`, `DENIED`, …), case-insensitive.
    pub outcome: String,
}

impl AuditFilter {
    /// Whether a row passes the client-side part of the filter.
    pub fn keeps(&self, action: &str, outcome: &str) -> bool {
        (self.action.is_empty() || action.to_lowercase().contains(&self.action.to_lowercase()))
            && (self.outcome.is_empty() || outcome.eq_ignore_ascii_case(&self.outcome))
    }

    /// One line describing the filter, empty when there is none.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.patient {
            parts.push(format!("patient {p}"));
        }
        if !self.action.is_empty() {
            parts.push(format!("action ~ {}", self.action));
        }
        if !self.outcome.is_empty() {
            parts.push(format!("outcome = {}", self.outcome.to_uppercase()));
        }
        parts.join(", ")
    }
}

/// A text popup of the Admin tab.
#[derive(Debug, Clone)]
pub struct AdminForm {
    pub kind: AdminFormKind,
    pub fields: Vec<(&'static str, TextField)>,
    pub focus: usize,
    pub error: Option<String>,
    pub sending: bool,
}

impl AdminForm {
    /// The new-user form (role defaults to VIEWER, the least privilege).
    pub fn new_user() -> AdminForm {
        AdminForm::with(
            AdminFormKind::NewUser,
            vec![
                ("Email", TextField::default()),
                ("Password", TextField::default()),
                ("Role", TextField::with("VIEWER")),
            ],
        )
    }

    /// The role form for a user, holding the current role.
    pub fn role(id: Uuid, email: String, role: Role) -> AdminForm {
        AdminForm::with(
            AdminFormKind::Role { id, email },
            vec![("Role", TextField::with(role.as_str()))],
        )
    }

    /// The audit filter form, holding the filter in force.
    pub fn audit_filter(filter: &AuditFilter) -> AdminForm {
        AdminForm::with(
            AdminFormKind::AuditFilter,
            vec![
                (
                    "Patient id",
                    TextField::with(filter.patient.map(|p| p.to_string()).unwrap_or_default()),
                ),
                ("Action", TextField::with(filter.action.clone())),
                ("Outcome", TextField::with(filter.outcome.clone())),
            ],
        )
    }

    fn with(kind: AdminFormKind, fields: Vec<(&'static str, TextField)>) -> AdminForm {
        AdminForm {
            kind,
            fields,
            focus: 0,
            error: None,
            sending: false,
        }
    }

    /// Types into the focused field.
    pub fn input(&mut self, c: char) {
        if let Some((_, f)) = self.fields.get_mut(self.focus) {
            f.push(c);
        }
    }

    /// Deletes in the focused field.
    pub fn backspace(&mut self) {
        if let Some((_, f)) = self.fields.get_mut(self.focus) {
            f.backspace();
        }
    }

    /// Moves focus (wraps).
    pub fn next_field(&mut self, forward: bool) {
        let n = self.fields.len();
        self.focus = if forward {
            (self.focus + 1) % n
        } else {
            (self.focus + n - 1) % n
        };
    }

    fn text(&self, i: usize) -> &str {
        self.fields.get(i).map_or("", |(_, f)| f.text.trim())
    }

    fn parse_role(&mut self, i: usize) -> Option<Role> {
        match Role::from_str(&self.text(i).to_uppercase()) {
            Ok(role) => Some(role),
            Err(_) => {
                self.error = Some("✗ role must be ADMIN, CLINICIAN, BILLING or VIEWER".to_owned());
                self.focus = i;
                None
            }
        }
    }

    /// `Enter`: the user request to send, or the filter to apply; `None` with `error` set when
    /// the input is incomplete (the server checks the rest and its answer shows here).
    pub fn submit(&mut self) -> Option<Result<Request, AuditFilter>> {
        if self.sending {
            return None; // one request per press; the answer closes or re-enables the form
        }
        match self.kind.clone() {
            AdminFormKind::NewUser => {
                if self.text(0).is_empty() || self.text(1).is_empty() {
                    self.error = Some("✗ email and password are required".to_owned());
                    return None;
                }
                let role = self.parse_role(2)?;
                self.sending = true;
                self.error = None;
                Some(Ok(Request::CreateUser {
                    body: CreateUserRequest {
                        email: self.text(0).to_owned(),
                        password: self.fields[1].1.text.clone(),
                        role,
                    },
                }))
            }
            AdminFormKind::Role { id, .. } => {
                let role = self.parse_role(0)?;
                self.sending = true;
                self.error = None;
                Some(Ok(Request::UpdateUser {
                    id,
                    body: UpdateUserRequest {
                        role: Some(role),
                        disabled: None,
                    },
                }))
            }
            AdminFormKind::AuditFilter => {
                let patient = match self.text(0) {
                    "" => None,
                    text => match Uuid::parse_str(text) {
                        Ok(id) => Some(id),
                        Err(_) => {
                            self.error = Some("✗ patient id must be a UUID".to_owned());
                            self.focus = 0;
                            return None;
                        }
                    },
                };
                Some(Err(AuditFilter {
                    patient,
                    action: self.text(1).to_owned(),
                    outcome: self.text(2).to_owned(),
                }))
            }
        }
    }

    /// Draws the popup over `area`.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let title = match &self.kind {
            AdminFormKind::NewUser => " New user ".to_owned(),
            AdminFormKind::Role { email, .. } => format!(" Role of {email} "),
            AdminFormKind::AuditFilter => " Filter the audit log ".to_owned(),
        };
        let mut lines: Vec<Line> = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, (label, f))| {
                let shown = if *label == "Password" {
                    "•".repeat(f.text.chars().count())
                } else {
                    f.text.clone()
                };
                let cursor = if i == self.focus { "▏" } else { "" };
                let style = if i == self.focus {
                    theme.selected()
                } else {
                    theme.text()
                };
                Line::from(vec![
                    Span::styled(format!("{label:>10}: "), theme.dim()),
                    Span::styled(format!("{shown}{cursor}"), style),
                ])
            })
            .collect();
        let hint = match self.kind {
            AdminFormKind::NewUser | AdminFormKind::Role { .. } => {
                "roles: ADMIN CLINICIAN BILLING VIEWER"
            }
            AdminFormKind::AuditFilter => "empty = any · outcome e.g. SUCCESS, DENIED",
        };
        lines.push(Line::from(Span::styled(hint, theme.dim())));
        lines.push(match (&self.error, self.sending) {
            (Some(e), _) => Line::from(Span::styled(e.clone(), theme.error())),
            (None, true) => Line::from(Span::styled("sending…", theme.warn())),
            (None, false) => Line::from(Span::styled(
                "Tab next field · Enter/Ctrl-S submit · Esc cancel",
                theme.dim(),
            )),
        });
        let height = u16::try_from(lines.len()).unwrap_or(8) + 2;
        let area = popup(area, 60, height);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(Span::styled(title, theme.title())),
            ),
            area,
        );
    }
}

/// Draws the disable/enable question.
pub fn draw_confirm(frame: &mut Frame, area: Rect, theme: Theme, email: &str, disable: bool) {
    let verb = if disable { "Disable" } else { "Enable" };
    let consequence = if disable {
        "They can no longer log in; their sessions end."
    } else {
        "They can log in again."
    };
    let area = popup(area, 60, 5);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(format!("{verb} {email}?")),
            Line::from(Span::styled(consequence, theme.dim())),
            Line::from(Span::styled("y yes · n / Esc no", theme.warn())),
        ])
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(format!(" {verb} user "), theme.title())),
        ),
        area,
    );
}
