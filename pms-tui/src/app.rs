//! The app state and `update`: one [`Action`] in, state changed, at most one follow-up action
//! out. Network work leaves as [`Request`]s queued in `requests` (the run loop hands them to the
//! worker), so `update` needs no terminal and no network and is tested directly. Drawing is in
//! [`crate::view`] and only reads this state.

use pms_proto::rest::Role;

use crate::action::{Action, Op, Request, Tab};
use crate::components::admin::AdminView;
use crate::components::analytics::AnalyticsView;
use crate::components::billing::BillingView;
use crate::components::events::EventsView;
use crate::components::login::LoginView;
use crate::components::patient_form::PatientForm;
use crate::components::patients::PatientsView;
use crate::components::{TextField, describe, help};
use crate::keys::{self, Mode};
use crate::theme::Theme;

/// Ticks (of [`TICK`](crate::TICK)) an info message stays.
const FLASH_TICKS: u32 = 16;

/// A status-bar message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    /// Info messages expire; errors stay until the next action.
    pub ticks_left: u32,
}

/// Everything on screen.
#[derive(Debug)]
pub struct App {
    pub theme: Theme,
    pub server: String,
    pub tab: Tab,
    /// (email, role) once logged in.
    pub user: Option<(String, Option<Role>)>,
    pub login: Option<LoginView>,
    pub patients: PatientsView,
    pub billing: BillingView,
    pub analytics: AnalyticsView,
    pub events: EventsView,
    pub admin: AdminView,
    pub help: bool,
    pub palette: Option<TextField>,
    pub flash: Option<Flash>,
    /// Requests for the worker, drained by the run loop.
    pub requests: Vec<Request>,
    pub quit: bool,
    pub size: (u16, u16),
    /// Today, injected so forms and snapshots do not depend on the clock.
    pub today: chrono::NaiveDate,
}

impl App {
    /// A new app. `user` is known when a session or `PMS_TOKEN` exists; otherwise the login
    /// screen shows first.
    pub fn new(theme: Theme, server: String, logged_in: bool, last_email: Option<String>) -> App {
        let mut app = App {
            theme,
            server,
            tab: Tab::Patients,
            user: None,
            login: None,
            patients: PatientsView::default(),
            billing: BillingView::default(),
            analytics: AnalyticsView::default(),
            events: EventsView::default(),
            admin: AdminView::default(),
            help: false,
            palette: None,
            flash: None,
            requests: Vec::new(),
            quit: false,
            size: (80, 24),
            today: chrono::Utc::now().date_naive(),
        };
        if logged_in {
            app.requests.push(Request::Me);
        } else {
            app.login = Some(LoginView::new(last_email, None));
        }
        app
    }

    /// Whether the user is an ADMIN.
    pub fn is_admin(&self) -> bool {
        matches!(&self.user, Some((_, Some(Role::Admin))))
    }

    /// How keys are read now.
    pub fn mode(&self) -> Mode {
        if self.login.is_some() || self.palette.is_some() {
            return Mode::Text;
        }
        if self.help {
            return Mode::Normal;
        }
        match self.tab {
            Tab::Patients if self.patients.confirm_delete.is_some() => Mode::Confirm,
            Tab::Patients if self.patients.form.is_some() || self.patients.search.is_some() => {
                Mode::Text
            }
            Tab::Billing
                if self.billing.confirm_void.is_some() || self.billing.refund.is_some() =>
            {
                Mode::Confirm
            }
            Tab::Admin if self.admin.confirm_toggle.is_some() => Mode::Confirm,
            Tab::Admin if self.admin.form.is_some() => Mode::Text,
            Tab::Billing
                if self.billing.payment.is_some() || self.billing.invoice_form.is_some() =>
            {
                Mode::Text
            }
            _ => Mode::Normal,
        }
    }

    /// Rows a list shows (the screen minus tabs, status, search line, borders and header).
    pub fn page(&self) -> usize {
        usize::from(self.size.1.saturating_sub(6)).max(1)
    }

    fn info(&mut self, text: impl Into<String>) {
        self.flash = Some(Flash {
            text: text.into(),
            error: false,
            ticks_left: FLASH_TICKS,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.flash = Some(Flash {
            text: text.into(),
            error: true,
            ticks_left: u32::MAX,
        });
    }

    /// Applies one action. Returns a follow-up action to apply next, if any.
    pub fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Key(key) => {
                let mapped = keys::map(key, self.mode());
                if mapped.is_some() && self.flash.as_ref().is_some_and(|f| f.error) {
                    self.flash = None; // errors stay until the next action
                }
                return mapped;
            }
            Action::Resize(w, h) => self.size = (w, h),
            Action::Tick => {
                if let Some(flash) = &mut self.flash {
                    flash.ticks_left = flash.ticks_left.saturating_sub(1);
                    if flash.ticks_left == 0 {
                        self.flash = None;
                    }
                }
            }
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            Action::OpenPalette => {
                if self.login.is_none() {
                    self.palette = Some(TextField::default());
                }
            }
            Action::SwitchTab(tab) => self.switch(tab),
            Action::Back => self.back(),
            Action::Input(c) => self.input(c),
            Action::Backspace => self.backspace(),
            Action::NextField | Action::PrevField => {
                self.next_field(matches!(action, Action::NextField))
            }
            Action::Submit => return self.submit(),
            Action::LoggedIn { email, role } => {
                self.login = None;
                self.user = Some((email, role));
                self.requests.push(Request::Stream);
                self.switch(self.tab);
            }
            Action::Failed { op, error } => {
                if error.needs_login()
                    || (op == Op::Me && matches!(error, pms_cli::Error::NotLoggedIn { .. }))
                {
                    let email = self.user.take().map(|(e, _)| e);
                    let message = "✗ session expired — log in again".to_owned();
                    self.login = Some(LoginView::new(email, Some(message)));
                    return None;
                }
                self.failed(op, error);
            }
            other => crate::routes::route(self, other),
        }
        None
    }

    /// Shows a tab, loading its data on the first visit.
    pub fn switch(&mut self, tab: Tab) {
        self.tab = tab;
        self.help = false;
        if self.user.is_none() {
            return;
        }
        match tab {
            Tab::Patients if !self.patients.loaded && !self.patients.loading => {
                let r = self.patients.reload();
                self.requests.push(r);
            }
            Tab::Billing if !self.billing.loaded && !self.billing.loading => {
                self.billing.loading = true;
                self.requests.push(Request::Accounts);
            }
            Tab::Analytics if !self.analytics.loaded && !self.analytics.loading => {
                self.analytics.loading = true;
                self.requests.push(Request::Summary);
                self.requests.push(Request::Registrations {
                    bucket: self.analytics.bucket,
                });
            }
            Tab::Admin if self.is_admin() && !self.admin.loaded && !self.admin.loading => {
                self.admin.loading = true;
                self.requests.push(Request::Users);
                self.requests.push(Request::Audit {
                    patient: self.admin.filter.patient,
                });
            }
            _ => {}
        }
    }

    /// `Esc`: closes the innermost thing open.
    fn back(&mut self) {
        if self.help {
            self.help = false;
        } else if self.palette.is_some() {
            self.palette = None;
        } else if self.login.is_some() {
            // Nothing behind the login screen.
        } else {
            match self.tab {
                Tab::Patients => {
                    let p = &mut self.patients;
                    if p.confirm_delete.take().is_none()
                        && p.form.take().is_none()
                        && p.search.take().is_none()
                    {
                        p.detail = None;
                        p.detail_loading = false;
                    }
                }
                Tab::Billing => {
                    let b = &mut self.billing;
                    if b.payment.take().is_none()
                        && b.invoice_form.take().is_none()
                        && b.confirm_void.take().is_none()
                        && b.refund.take().is_none()
                        && b.statement.take().is_none()
                    {
                        b.account = None;
                        b.invoices.clear();
                    }
                }
                Tab::Events => self.events.detail = false,
                Tab::Admin if self.admin.confirm_toggle.take().is_none() => {
                    self.admin.form = None;
                }
                _ => {}
            }
        }
    }

    fn input(&mut self, c: char) {
        if let Some(login) = &mut self.login {
            login.input(c);
        } else if let Some(palette) = &mut self.palette {
            palette.push(c);
        } else if let Some(form) = &mut self.patients.form {
            form.input(c);
        } else if let Some(search) = &mut self.patients.search {
            search.push(c);
        } else if let Some(payment) = &mut self.billing.payment {
            payment.input(c);
        } else if let Some(form) = &mut self.billing.invoice_form {
            form.input(c);
        } else if let Some(form) = &mut self.admin.form {
            form.input(c);
        }
    }

    fn backspace(&mut self) {
        if let Some(login) = &mut self.login {
            login.backspace();
        } else if let Some(palette) = &mut self.palette {
            palette.backspace();
        } else if let Some(form) = &mut self.patients.form {
            form.backspace();
        } else if let Some(search) = &mut self.patients.search {
            search.backspace();
        } else if let Some(payment) = &mut self.billing.payment {
            payment.backspace();
        } else if let Some(form) = &mut self.billing.invoice_form {
            form.backspace();
        } else if let Some(form) = &mut self.admin.form {
            form.backspace();
        }
    }

    fn next_field(&mut self, forward: bool) {
        if let Some(login) = &mut self.login {
            login.next_field();
        } else if let Some(form) = &mut self.patients.form {
            if forward {
                form.next_field();
            } else {
                form.prev_field();
            }
        } else if let Some(payment) = &mut self.billing.payment {
            payment.next_field();
        } else if let Some(form) = &mut self.billing.invoice_form {
            form.next_field();
        } else if let Some(form) = &mut self.admin.form {
            form.next_field(forward);
        } else if self.tab == Tab::Admin {
            self.admin.focus = 1 - self.admin.focus;
        }
    }

    fn submit(&mut self) -> Option<Action> {
        if let Some(login) = &mut self.login {
            if let Some(r) = login.submit() {
                self.requests.push(r);
            }
        } else if let Some(palette) = self.palette.take() {
            match help::command(&palette.text) {
                Ok(action) => return Some(action),
                Err(e) => self.error(format!("✗ {e}")),
            }
        } else if self.tab == Tab::Patients && self.patients.form.is_some() {
            if let Some(r) = self.patients.form.as_mut().and_then(PatientForm::submit) {
                self.requests.push(r);
            }
        } else if self.tab == Tab::Patients && self.patients.search.is_some() {
            let r = self.patients.submit_search();
            self.requests.push(r);
        } else if let Some(payment) = &mut self.billing.payment {
            if let Some(r) = payment.submit() {
                self.requests.push(r);
            }
        } else if let Some(form) = &mut self.billing.invoice_form {
            if let Some(r) = form.submit() {
                self.requests.push(r);
            }
        } else if let Some(form) = &mut self.admin.form {
            match form.submit() {
                Some(Ok(r)) => self.requests.push(r),
                Some(Err(filter)) => {
                    self.admin.form = None;
                    self.admin.audit_cursor = Default::default();
                    let patient = filter.patient;
                    self.admin.filter = filter;
                    self.requests.push(Request::Audit { patient });
                }
                None => {}
            }
        }
        None
    }

    fn failed(&mut self, op: Op, error: pms_cli::Error) {
        let text = describe(&error);
        match op {
            Op::SavePatient => {
                if error.status().is_some_and(|s| s.as_u16() == 412) {
                    if let Some(id) = self.patients.form.as_ref().and_then(|f| f.id) {
                        self.requests.push(Request::PatientDetail {
                            id,
                            with_audit: self.is_admin(),
                        });
                    }
                    return;
                }
                if let Some(form) = &mut self.patients.form {
                    form.rejected(error.problem(), text);
                    return;
                }
            }
            Op::Pay => {
                if let Some(payment) = &mut self.billing.payment {
                    payment.sending = false;
                    payment.error = Some(text);
                    return;
                }
            }
            Op::InvoiceAction => {
                self.billing.invoices_loading = false;
                if let Some(form) = &mut self.billing.invoice_form {
                    form.sending = false;
                    form.error = Some(text);
                    return;
                }
            }
            Op::Patients => {
                self.patients.loading = false;
                self.patients.error = Some(text.clone());
            }
            Op::PatientDetail => self.patients.detail_loading = false,
            Op::Accounts | Op::Invoices => {
                self.billing.loading = false;
                self.billing.invoices_loading = false;
                self.billing.error = Some(text.clone());
            }
            Op::Summary | Op::Registrations => {
                self.analytics.loading = false;
                self.analytics.error = Some(text.clone());
            }
            Op::SaveUser => {
                if let Some(form) = &mut self.admin.form {
                    form.sending = false;
                    form.error = Some(format!("✗ {text}"));
                    return;
                }
            }
            Op::Users | Op::Audit => {
                self.admin.loading = false;
                self.admin.error = Some(text.clone());
            }
            Op::Login => {
                if let Some(login) = &mut self.login {
                    login.busy = false;
                    login.error = Some(if error.status().is_some_and(|s| s.as_u16() == 401) {
                        "✗ wrong email or password".to_owned()
                    } else {
                        format!("✗ {text}")
                    });
                    return;
                }
            }
            Op::Refund => {
                if let Some(refund) = &mut self.billing.refund {
                    // Keep the question and its key: `y` retries the same refund.
                    refund.sending = false;
                }
            }
            Op::DeletePatient | Op::Me | Op::Statement => {}
        }
        self.error(format!("✗ {text}"));
    }

    /// Shows an info message (used by the routes).
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.info(text);
    }
}
