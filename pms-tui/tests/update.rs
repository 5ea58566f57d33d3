//! `App::update`, one action at a time: state and the requests it queues, no terminal, no
//! network.
#![allow(clippy::unwrap_used)]

mod fixtures;

use crossterm::event::KeyCode;
use fixtures::*;
use pms_cli::Error;
use pms_cli::api::Page;
use pms_cli::error::{StatusCode, TokenSource};
use pms_proto::rest::{FieldError, Problem};
use pms_tui::action::{Action, Op, Request, StreamUpdate, Tab};
use pms_tui::app::App;
use pms_tui::theme::Theme;

fn api_error(status: StatusCode, fields: &[(&str, &str)]) -> Error {
    Error::Api {
        status,
        problem: Some(Box::new(Problem {
            type_: "about:blank".into(),
            title: "Bad Request".into(),
            status: status.as_u16(),
            detail: Some("invalid patient".into()),
            errors: fields
                .iter()
                .map(|(f, m)| FieldError {
                    field: (*f).into(),
                    message: (*m).into(),
                })
                .collect(),
            request_id: None,
        })),
        context: None,
        source_kind: TokenSource::Session,
        retry_after: None,
    }
}

#[test]
fn without_a_session_the_login_screen_submits_credentials() {
    let mut app = App::new(Theme::new(true), "http://x".into(), false, None);
    assert!(app.login.is_some());
    assert!(app.requests.is_empty(), "nothing is fetched before login");
    type_text(&mut app, "admin@x.test");
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "q1"); // `q` types, it does not quit, in a text field
    assert!(!app.quit);
    press(&mut app, key(KeyCode::Enter));
    match app.requests.as_slice() {
        [Request::Login { email, password }] => {
            assert_eq!(email, "admin@x.test");
            assert_eq!(password, "q1");
        }
        other => panic!("expected a login request, got {other:?}"),
    }
    app.requests.clear();
    app.update(Action::LoggedIn {
        email: "admin@x.test".into(),
        role: None,
    });
    assert!(app.login.is_none());
    assert!(matches!(app.requests[0], Request::Stream));
    assert!(
        matches!(app.requests[1], Request::Patients { .. }),
        "{:?}",
        app.requests
    );
}

#[test]
fn wrong_password_stays_on_the_login_screen() {
    let mut app = App::new(Theme::new(true), "http://x".into(), false, None);
    app.update(Action::Failed {
        op: Op::Login,
        error: Error::Api {
            status: StatusCode::UNAUTHORIZED,
            problem: None,
            context: None,
            source_kind: TokenSource::None,
            retry_after: None,
        },
    });
    let login = app.login.as_ref().unwrap();
    assert_eq!(login.error.as_deref(), Some("✗ wrong email or password"));
}

#[test]
fn an_expired_session_returns_to_login() {
    let mut app = loaded_app(80, 24);
    app.update(Action::Failed {
        op: Op::Patients,
        error: Error::SessionExpired,
    });
    let login = app.login.as_ref().expect("login screen");
    assert_eq!(login.email.text, "admin@clinic.test");
    assert!(login.error.as_deref().unwrap().contains("log in again"));
}

#[test]
fn number_keys_switch_tabs_and_load_once() {
    let mut app = app(80, 24);
    press(&mut app, key(KeyCode::Char('2')));
    assert_eq!(app.tab, Tab::Billing);
    assert!(matches!(app.requests.as_slice(), [Request::Accounts]));
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('1')));
    press(&mut app, key(KeyCode::Char('2')));
    assert!(app.requests.is_empty(), "still loading: no second request");
    press(&mut app, key(KeyCode::Char('3')));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Summary, Request::Registrations { .. }]
    ));
    press(&mut app, key(KeyCode::Char('5')));
    assert_eq!(app.tab, Tab::Admin);
    press(&mut app, key(KeyCode::Char('4')));
    assert_eq!(app.tab, Tab::Events);
}

#[test]
fn slash_searches_on_the_server() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('/')));
    type_text(&mut app, "smi");
    press(&mut app, key(KeyCode::Enter));
    match app.requests.as_slice() {
        [Request::Patients { q, cursor, .. }] => {
            assert_eq!(q.as_deref(), Some("smi"));
            assert!(cursor.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(app.patients.query, "smi");
    assert!(app.patients.search.is_none());
}

#[test]
fn s_cycles_the_sort_and_reloads() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('s')));
    match app.requests.as_slice() {
        [Request::Patients { sort, .. }] => assert_eq!(sort, "-createdAt"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn scrolling_near_the_end_fetches_the_next_page_once() {
    let mut app = app(80, 24);
    app.update(Action::PatientsLoaded {
        append: false,
        page: Page {
            items: patients(100),
            next: Some("/api/patients?cursor=abc".into()),
        },
    });
    for _ in 0..79 {
        press(&mut app, key(KeyCode::Down));
    }
    assert!(app.requests.is_empty(), "{:?}", app.requests);
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Down));
    match app.requests.as_slice() {
        [Request::Patients { cursor, .. }] => {
            assert_eq!(cursor.as_deref(), Some("/api/patients?cursor=abc"))
        }
        other => panic!("one next-page request expected, got {other:?}"),
    }
    app.update(Action::PatientsLoaded {
        append: true,
        page: Page {
            items: patients(100),
            next: None,
        },
    });
    assert_eq!(app.patients.items.len(), 200);
    assert_eq!(app.patients.cursor.selected, 81, "the cursor stays put");
}

#[test]
fn the_form_shows_server_field_errors_inline() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('n')));
    assert!(app.patients.form.is_some());
    press(&mut app, ctrl('s'));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::SavePatient { id: None, .. }]
    ));
    app.requests.clear();
    press(&mut app, ctrl('s'));
    assert!(
        app.requests.is_empty(),
        "no second save while one is in flight"
    );
    app.update(Action::Failed {
        op: Op::SavePatient,
        error: api_error(
            StatusCode::BAD_REQUEST,
            &[("email", "not a valid email"), ("name", "is required")],
        ),
    });
    let form = app.patients.form.as_ref().unwrap();
    assert_eq!(form.errors[0].as_deref(), Some("is required"));
    assert_eq!(form.errors[1].as_deref(), Some("not a valid email"));
    assert_eq!(form.focus, 0, "focus on the first bad field");
    assert_eq!(form.message.as_deref(), Some("2 field(s) need fixing"));
    assert!(!form.saving);
}

#[test]
fn a_saved_patient_closes_the_form_and_reloads() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('n')));
    type_text(&mut app, "Doe, Jane");
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "jane@x.test");
    press(&mut app, ctrl('s'));
    match app.requests.as_slice() {
        [Request::SavePatient { body, .. }] => {
            assert_eq!(body.name.as_deref(), Some("Doe, Jane"));
            assert_eq!(body.email.as_deref(), Some("jane@x.test"));
            assert_eq!(body.registered_date.as_deref(), Some("2026-11-30"));
            assert_eq!(
                body.address, None,
                "empty fields are left for the server to flag"
            );
        }
        other => panic!("{other:?}"),
    }
    app.requests.clear();
    app.update(Action::PatientSaved(Box::new(patient(7, "Doe, Jane"))));
    assert!(app.patients.form.is_none());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .text
            .contains("created Doe, Jane")
    );
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Patients { .. }]
    ));
}

#[test]
fn a_412_reloads_and_names_what_changed() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('e')));
    let form = app.patients.form.as_ref().unwrap();
    assert_eq!(form.etag.as_deref(), Some("\"1\""));
    press(&mut app, key(KeyCode::Tab));
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, " Apt 2"); // the user edits the address
    press(&mut app, ctrl('s'));
    app.requests.clear();
    app.update(Action::Failed {
        op: Op::SavePatient,
        error: api_error(StatusCode::PRECONDITION_FAILED, &[]),
    });
    assert!(matches!(
        app.requests.as_slice(),
        [Request::PatientDetail { .. }]
    ));
    let mut fresh = patient(1, "Doe, Janet");
    fresh.version = 2;
    app.update(Action::PatientDetailLoaded(Box::new(
        pms_tui::action::PatientDetail {
            patient: fresh,
            etag: Some("\"2\"".into()),
            accounts: vec![],
            history: vec![],
            audit: None,
        },
    )));
    let form = app.patients.form.as_ref().unwrap();
    assert_eq!(form.etag.as_deref(), Some("\"2\""));
    assert_eq!(
        form.values[0].text, "Doe, Janet",
        "untouched fields follow the server"
    );
    assert_eq!(
        form.values[2].text, "1 Main St Apt 2",
        "the user's edit is kept"
    );
    assert!(form.message.as_deref().unwrap().contains("name"));
}

#[test]
fn d_asks_before_deleting() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('d')));
    assert!(app.patients.confirm_delete.is_some());
    assert!(app.requests.is_empty());
    press(&mut app, key(KeyCode::Char('n')));
    assert!(app.patients.confirm_delete.is_none());
    assert!(app.requests.is_empty(), "n keeps the patient");
    press(&mut app, key(KeyCode::Char('d')));
    press(&mut app, key(KeyCode::Char('y')));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::DeletePatient { id: deleted }] if *deleted == id(1)
    ));
}

#[test]
fn enter_opens_the_detail_and_esc_closes_it() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Enter));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::PatientDetail { id: opened, with_audit: true }] if *opened == id(2)
    ));
    assert!(app.patients.detail_loading);
    press(&mut app, key(KeyCode::Esc));
    assert!(!app.patients.detail_loading);
}

#[test]
fn a_payment_keeps_its_idempotency_key_across_retries() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('2')));
    press(&mut app, key(KeyCode::Enter));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Invoices { account }] if *account == id(1001)
    ));
    app.update(Action::InvoicesLoaded {
        account: id(1001),
        invoices: vec![invoice(1)],
    });
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('p')));
    let form = app.billing.payment.as_ref().unwrap();
    assert_eq!(form.amount.text, "100.00", "the balance, in major units");
    for _ in 0..6 {
        press(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, "12.5");
    press(&mut app, key(KeyCode::Enter));
    let first_key = match app.requests.as_slice() {
        [
            Request::Pay {
                body,
                idempotency_key,
                ..
            },
        ] => {
            assert_eq!(body.amount, 1250, "12.5 USD in cents");
            idempotency_key.clone()
        }
        other => panic!("{other:?}"),
    };
    app.requests.clear();
    press(&mut app, key(KeyCode::Enter));
    assert!(
        app.requests.is_empty(),
        "no second payment while one is in flight"
    );
    app.update(Action::Failed {
        op: Op::Pay,
        error: Error::Unreachable {
            url: "http://x".into(),
            reason: "Connection refused".into(),
            source: None,
        },
    });
    press(&mut app, key(KeyCode::Enter));
    match app.requests.as_slice() {
        [
            Request::Pay {
                idempotency_key, ..
            },
        ] => assert_eq!(*idempotency_key, first_key),
        other => panic!("{other:?}"),
    }
    app.requests.clear();
    press(&mut app, key(KeyCode::Esc));
    press(&mut app, key(KeyCode::Char('p')));
    let new_key = app
        .billing
        .payment
        .as_ref()
        .unwrap()
        .idempotency_key
        .clone();
    assert_ne!(new_key, first_key, "a new payment gets a new key");
}

#[test]
fn amounts_are_checked_before_sending() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('2')));
    press(&mut app, key(KeyCode::Enter));
    app.update(Action::InvoicesLoaded {
        account: id(1001),
        invoices: vec![invoice(1)],
    });
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('p')));
    type_text(&mut app, "5"); // 100.005
    press(&mut app, key(KeyCode::Enter));
    assert!(app.requests.is_empty());
    let error = app.billing.payment.as_ref().unwrap().error.clone().unwrap();
    assert!(error.contains("2 decimal places"), "{error}");
}

#[test]
fn space_pauses_the_stream_without_losing_events() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('4')));
    let before = app.events.rows.len();
    press(&mut app, key(KeyCode::Char(' ')));
    assert!(app.events.paused);
    app.update(Action::Stream(StreamUpdate::Event(Box::new(event(
        3,
        "PATIENT_UPDATED",
    )))));
    assert_eq!(app.events.rows.len(), before, "held, not shown");
    assert_eq!(app.events.held.len(), 1);
    press(&mut app, key(KeyCode::Char(' ')));
    assert_eq!(app.events.rows.len(), before + 1);
    assert!(app.events.held.is_empty());
}

#[test]
fn reconnects_leave_gap_markers_and_t_filters_by_type() {
    let mut app = loaded_app(80, 24);
    use pms_tui::components::events::{Connection, EventRow};
    let markers: Vec<_> = app
        .events
        .rows
        .iter()
        .filter_map(|r| match r {
            EventRow::Marker(m) => Some(m.clone()),
            EventRow::Event(_) => None,
        })
        .collect();
    assert_eq!(markers.len(), 2, "{markers:?}");
    assert!(markers[0].starts_with("✗ stream lost"));
    assert!(markers[1].contains("resumed after #1"));
    assert_eq!(app.events.connection, Connection::Live);
    press(&mut app, key(KeyCode::Char('4')));
    press(&mut app, key(KeyCode::Char('t')));
    assert_eq!(app.events.filter.as_deref(), Some("PATIENT_CREATED"));
    let shown = app.events.visible();
    assert_eq!(
        shown
            .iter()
            .filter(|r| matches!(r, EventRow::Event(_)))
            .count(),
        1
    );
    press(&mut app, key(KeyCode::Char('t')));
    assert_eq!(app.events.filter.as_deref(), Some("PAYMENT_RECEIVED"));
    press(&mut app, key(KeyCode::Char('t')));
    assert_eq!(app.events.filter, None);
    press(&mut app, key(KeyCode::Enter));
    assert!(app.events.detail);
    press(&mut app, key(KeyCode::Esc));
    assert!(!app.events.detail);
}

#[test]
fn help_palette_and_quit() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('?')));
    assert!(app.help);
    press(&mut app, key(KeyCode::Esc));
    assert!(!app.help);
    press(&mut app, key(KeyCode::Char(':')));
    type_text(&mut app, "events");
    press(&mut app, key(KeyCode::Enter));
    assert_eq!(app.tab, Tab::Events);
    press(&mut app, key(KeyCode::Char(':')));
    type_text(&mut app, "bogus");
    press(&mut app, key(KeyCode::Enter));
    assert!(app.flash.as_ref().unwrap().error);
    assert!(!app.quit);
    press(&mut app, key(KeyCode::Char(':')));
    type_text(&mut app, "quit");
    press(&mut app, key(KeyCode::Enter));
    assert!(app.quit);
    let mut app = loaded_app(80, 24);
    press(&mut app, ctrl('c'));
    assert!(app.quit);
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('q')));
    assert!(app.quit);
}

#[test]
fn info_messages_expire_on_ticks_and_errors_stay() {
    let mut app = loaded_app(80, 24);
    app.update(Action::PatientDeleted(id(1)));
    assert!(app.flash.is_some());
    let mut redrew = false;
    for _ in 0..20 {
        redrew |= pms_tui::apply(&mut app, Action::Tick);
    }
    assert!(app.flash.is_none());
    assert!(redrew, "expiry redraws");
    assert!(
        !pms_tui::apply(&mut app, Action::Tick),
        "an idle tick draws nothing"
    );
    app.update(Action::Failed {
        op: Op::Accounts,
        error: Error::Other("boom".into()),
    });
    for _ in 0..100 {
        app.update(Action::Tick);
    }
    assert!(app.flash.as_ref().unwrap().error);
}

#[test]
fn the_wheel_and_resize_are_actions() {
    use crossterm::event::{Event, KeyModifiers, MouseEvent, MouseEventKind};
    let wheel = Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 0,
        row: 0,
        modifiers: KeyModifiers::NONE,
    });
    assert!(matches!(pms_tui::from_event(wheel), Some(Action::Down)));
    let mut app = loaded_app(80, 24);
    pms_tui::apply(
        &mut app,
        pms_tui::from_event(Event::Resize(120, 40)).unwrap(),
    );
    assert_eq!(app.size, (120, 40));
}

#[test]
fn invoices_are_created_issued_and_voided_after_a_question() {
    let mut app = loaded_app(80, 24);
    press(&mut app, key(KeyCode::Char('2')));
    press(&mut app, key(KeyCode::Enter));
    app.update(Action::InvoicesLoaded {
        account: id(1001),
        invoices: vec![invoice(1)],
    });
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('c')));
    type_text(&mut app, "X-ray");
    press(&mut app, key(KeyCode::Tab));
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "80.5");
    press(&mut app, key(KeyCode::Enter));
    match app.requests.as_slice() {
        [Request::CreateInvoice { account, body, .. }] => {
            assert_eq!(*account, id(1001));
            assert_eq!(body.currency, "USD");
            assert_eq!(body.lines[0].description, "X-ray");
            assert_eq!(body.lines[0].quantity, 1);
            assert_eq!(body.lines[0].unit_price, 8050);
        }
        other => panic!("{other:?}"),
    }
    app.requests.clear();
    app.update(Action::InvoiceChanged(Box::new(invoice(2))));
    assert!(app.billing.invoice_form.is_none());
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Invoices { .. }, Request::Accounts]
    ));
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('i')));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::InvoiceAction {
            action: "issue",
            ..
        }]
    ));
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('v')));
    assert!(app.requests.is_empty(), "void asks first");
    press(&mut app, key(KeyCode::Char('y')));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::InvoiceAction { action: "void", invoice, .. }] if *invoice == id(2001)
    ));
}
