//! The part of `App::update` that belongs to one tab: navigation keys go to the visible tab,
//! worker answers to the tab they are for.

use crate::action::{Action, Request, Tab};
use crate::app::App;
use crate::components::TextField;
use crate::components::admin_form::{AdminForm, AdminFormKind};
use crate::components::patient_form::PatientForm;
use crate::components::refund::RefundConfirm;
use pms_proto::rest::UpdateUserRequest;

/// Applies a tab-specific action.
pub fn route(app: &mut App, action: Action) {
    let page = app.page();
    match action {
        Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
            let down = matches!(action, Action::Down | Action::PageDown);
            let by = if matches!(action, Action::PageUp | Action::PageDown) {
                page
            } else {
                1
            };
            move_cursor(app, down, by);
        }
        Action::Open => open(app),
        Action::Refresh => refresh(app),
        Action::StartSearch if app.tab == Tab::Admin && app.is_admin() => {
            app.admin.form = Some(AdminForm::audit_filter(&app.admin.filter));
        }
        Action::NewPatient if app.tab == Tab::Admin && app.is_admin() => {
            app.admin.form = Some(AdminForm::new_user());
        }
        Action::EditPatient if app.tab == Tab::Admin => {
            if let Some(u) = app.admin.selected_user() {
                app.admin.form = Some(AdminForm::role(u.id, u.email.clone(), u.role));
            }
        }
        Action::DeletePatient if app.tab == Tab::Admin => {
            if let Some(u) = app.admin.selected_user() {
                app.admin.confirm_toggle = Some((u.id, u.email.clone(), !u.disabled));
            }
        }
        Action::StartSearch if app.tab == Tab::Patients && app.patients.form.is_none() => {
            app.patients.search = Some(TextField::with(app.patients.query.clone()));
        }
        Action::CycleSort if app.tab == Tab::Patients => {
            app.patients.sort = (app.patients.sort + 1) % crate::components::patients::SORTS.len();
            app.patients.cursor = Default::default();
            let r = app.patients.reload();
            app.requests.push(r);
        }
        Action::NewPatient if app.tab == Tab::Patients => {
            app.patients.form = Some(PatientForm::new(app.today));
        }
        Action::EditPatient if app.tab == Tab::Patients => {
            // Edit from the loaded detail (it carries the ETag for If-Match).
            match &app.patients.detail {
                Some(d) if Some(d.patient.id) == app.patients.selected().map(|p| p.id) => {
                    app.patients.form = Some(PatientForm::edit(&d.patient, d.etag.clone()));
                }
                _ => {
                    if let Some(p) = app.patients.selected() {
                        let etag = pms_cli::api::etag_for(&p.version.to_string());
                        app.patients.form = Some(PatientForm::edit(p, Some(etag)));
                    }
                }
            }
        }
        Action::DeletePatient if app.tab == Tab::Patients => {
            if let Some(p) = app.patients.selected() {
                app.patients.confirm_delete = Some((p.id, p.name.clone()));
            }
        }
        Action::Confirm if app.billing.refund.is_some() => {
            if let Some(r) = app.billing.refund.as_mut().and_then(|r| r.confirm()) {
                app.requests.push(r);
            }
        }
        Action::Confirm => {
            if let Some((id, _, disable)) = app.admin.confirm_toggle.take() {
                app.requests.push(Request::UpdateUser {
                    id,
                    body: UpdateUserRequest {
                        role: None,
                        disabled: Some(disable),
                    },
                });
            }
            if let Some((id, _)) = app.patients.confirm_delete.take() {
                app.requests.push(Request::DeletePatient { id });
            }
            if let Some((invoice, _)) = app.billing.confirm_void.take() {
                app.billing.invoices_loading = true;
                app.requests.push(Request::InvoiceAction {
                    invoice,
                    action: "void",
                    idempotency_key: uuid::Uuid::new_v4().to_string(),
                });
            }
        }
        Action::RecordPayment if app.tab == Tab::Billing => app.billing.open_payment(),
        Action::AddLine | Action::RemoveLine => {
            if let Some(form) = &mut app.billing.invoice_form {
                if matches!(action, Action::AddLine) {
                    form.add_line();
                } else {
                    form.remove_line();
                }
            }
        }
        Action::RefundPayment if app.tab == Tab::Billing && app.billing.account.is_some() => {
            if let Some(i) = app
                .billing
                .invoices
                .get(app.billing.invoice_cursor.selected)
            {
                app.requests.push(Request::RefundCandidates {
                    invoice: i.id,
                    number: i.number.clone(),
                });
            }
        }
        Action::ShowStatement if app.tab == Tab::Billing => {
            let account = app
                .billing
                .account
                .or_else(|| app.billing.selected_account().map(|a| a.id));
            if let Some(account) = account {
                app.requests.push(Request::Statement { account });
            }
        }
        Action::StatementLoaded(statement) => app.billing.statement = Some(*statement),
        Action::PaymentsLoaded { number, payments } => {
            app.billing.refund = RefundConfirm::for_payments(&payments, &number);
            if app.billing.refund.is_none() {
                app.note(format!("invoice {number} has no payment left to refund"));
            }
        }
        Action::Refunded(refund) => {
            app.billing.refund = None;
            app.note(format!(
                "✓ refunded {}",
                crate::money::format(refund.amount, &refund.currency)
            ));
            if let Some(account) = app.billing.account {
                app.billing.invoices_loading = true;
                app.requests.push(Request::Invoices { account });
            }
            app.requests.push(Request::Accounts);
        }
        Action::NewInvoice if app.tab == Tab::Billing => app.billing.open_invoice_form(),
        Action::IssueInvoice | Action::VoidInvoice if app.tab == Tab::Billing => {
            let verb = if matches!(action, Action::IssueInvoice) {
                "issue"
            } else {
                "void"
            };
            if let Some(r) = app.billing.invoice_action(verb) {
                app.requests.push(r);
            }
        }
        Action::CycleBucket if app.tab == Tab::Analytics => {
            let bucket = app.analytics.cycle_bucket();
            app.requests.push(Request::Registrations { bucket });
        }
        Action::CycleEventFilter if app.tab == Tab::Events => app.events.cycle_filter(),
        Action::TogglePause if app.tab == Tab::Events => app.events.toggle_pause(),
        Action::PatientsLoaded { append, page } => app.patients.loaded(append, page),
        Action::PatientDetailLoaded(detail) => {
            app.patients.detail_loading = false;
            if let Some(form) = &mut app.patients.form
                && form.id == Some(detail.patient.id)
                && form.saving
            {
                // The answer to a 412: rebase the form on the new version.
                form.rebase(&detail.patient, detail.etag.clone());
            }
            app.patients.detail = Some(detail);
        }
        Action::PatientSaved(patient) => {
            let created = app.patients.form.as_ref().is_some_and(|f| f.id.is_none());
            app.patients.form = None;
            app.note(format!(
                "✓ {} {} (MRN {})",
                if created { "created" } else { "saved" },
                patient.name,
                patient.mrn
            ));
            if app
                .patients
                .detail
                .as_ref()
                .is_some_and(|d| d.patient.id == patient.id)
            {
                app.requests.push(Request::PatientDetail {
                    id: patient.id,
                    with_audit: app.is_admin(),
                });
            }
            let r = app.patients.reload();
            app.requests.push(r);
        }
        Action::PatientDeleted(id) => {
            app.note("✓ patient deleted");
            if app
                .patients
                .detail
                .as_ref()
                .is_some_and(|d| d.patient.id == id)
            {
                app.patients.detail = None;
            }
            let r = app.patients.reload();
            app.requests.push(r);
        }
        Action::AccountsLoaded(accounts) => {
            let b = &mut app.billing;
            b.accounts = accounts;
            b.cursor.down(b.accounts.len(), 0);
            b.loading = false;
            b.loaded = true;
            b.error = None;
        }
        Action::InvoicesLoaded { account, invoices } => {
            let b = &mut app.billing;
            if b.account == Some(account) {
                b.invoices = invoices;
                b.invoice_cursor.down(b.invoices.len(), 0);
            }
            b.invoices_loading = false;
        }
        Action::PaymentRecorded(payment) => {
            let text = format!(
                "✓ payment of {} recorded",
                crate::money::format(payment.amount, &payment.currency)
            );
            app.billing.payment = None;
            app.note(text);
            if let Some(account) = app.billing.account {
                app.billing.invoices_loading = true;
                app.requests.push(Request::Invoices { account });
            }
            app.requests.push(Request::Accounts);
        }
        Action::InvoiceChanged(invoice) => {
            app.billing.invoice_form = None;
            app.note(format!(
                "✓ invoice {} is {}",
                invoice.number,
                invoice.status.as_str()
            ));
            app.billing.invoices_loading = true;
            app.requests.push(Request::Invoices {
                account: invoice.account_id,
            });
            app.requests.push(Request::Accounts);
        }
        Action::SummaryLoaded(summary) => {
            app.analytics.summary = Some(*summary);
            app.analytics.loading = false;
            app.analytics.loaded = true;
        }
        Action::RegistrationsLoaded(buckets) => {
            app.analytics.buckets = buckets;
            app.analytics.error = None;
        }
        Action::UsersLoaded(users) => {
            app.admin.users = users;
            app.admin.loading = false;
            app.admin.loaded = true;
        }
        Action::AuditLoaded(audit) => app.admin.audit = audit,
        Action::UserSaved(user) => {
            let created = matches!(
                app.admin.form.as_ref().map(|f| &f.kind),
                Some(AdminFormKind::NewUser)
            );
            app.admin.form = None;
            let what = if created {
                "created".to_owned()
            } else if user.disabled {
                "disabled".to_owned()
            } else {
                format!("is {} and active", user.role)
            };
            app.note(format!("✓ user {} {what}", user.email));
            match app.admin.users.iter_mut().find(|u| u.id == user.id) {
                Some(u) => *u = *user,
                None => app.admin.users.push(*user),
            }
            // The change is audited: show it.
            app.requests.push(Request::Audit {
                patient: app.admin.filter.patient,
            });
        }
        Action::Stream(update) => app.events.on_stream(update),
        _ => {}
    }
}

fn move_cursor(app: &mut App, down: bool, by: usize) {
    match app.tab {
        Tab::Patients => {
            if down {
                if let Some(r) = app.patients.down(by) {
                    app.requests.push(r);
                }
            } else {
                app.patients.cursor.up(by);
            }
        }
        Tab::Billing => {
            let b = &mut app.billing;
            let (cursor, len) = if b.account.is_some() {
                (&mut b.invoice_cursor, b.invoices.len())
            } else {
                (&mut b.cursor, b.accounts.len())
            };
            if down {
                cursor.down(len, by);
            } else {
                cursor.up(by);
            }
        }
        Tab::Events => app.events.move_by(down, by),
        Tab::Admin => app.admin.move_by(down, by),
        Tab::Analytics => {}
    }
}

fn open(app: &mut App) {
    match app.tab {
        Tab::Patients => {
            if let Some(p) = app.patients.selected() {
                let id = p.id;
                app.patients.detail_loading = true;
                app.requests.push(Request::PatientDetail {
                    id,
                    with_audit: app.is_admin(),
                });
            }
        }
        Tab::Billing if app.billing.account.is_none() => {
            if let Some(a) = app.billing.selected_account() {
                let account = a.id;
                app.billing.account = Some(account);
                app.billing.invoices.clear();
                app.billing.invoice_cursor = Default::default();
                app.billing.invoices_loading = true;
                app.requests.push(Request::Invoices { account });
            }
        }
        Tab::Events => app.events.detail = !app.events.detail,
        _ => {}
    }
}

fn refresh(app: &mut App) {
    match app.tab {
        Tab::Patients => {
            let r = app.patients.reload();
            app.requests.push(r);
        }
        Tab::Billing => {
            app.billing.loading = true;
            app.requests.push(Request::Accounts);
            if let Some(account) = app.billing.account {
                app.requests.push(Request::Invoices { account });
            }
        }
        Tab::Analytics => {
            app.analytics.loading = true;
            app.requests.push(Request::Summary);
            app.requests.push(Request::Registrations {
                bucket: app.analytics.bucket,
            });
        }
        Tab::Admin if app.is_admin() => {
            app.admin.loading = true;
            app.requests.push(Request::Users);
            app.requests.push(Request::Audit {
                patient: app.admin.filter.patient,
            });
        }
        _ => {}
    }
}
