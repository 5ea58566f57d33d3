//! Every view drawn on ratatui's `TestBackend` at 80×24 and 120×40, compared with the committed
//! insta snapshots (`tests/snapshots/`). Data and the date are fixed, so the text is stable.
#![allow(clippy::unwrap_used)]

mod fixtures;

use crossterm::event::KeyCode;
use fixtures::*;
use pms_tui::action::{Action, PatientDetail};
use pms_tui::app::App;
use pms_tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|frame| app.draw(frame)).unwrap();
    terminal
}

fn check(name: &str, setup: impl Fn(u16, u16) -> App) {
    for (w, h) in SIZES {
        let app = setup(w, h);
        let terminal = render(&app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn login() {
    check("login", |w, h| {
        let mut app = App::new(
            Theme::new(true),
            "http://127.0.0.1:4004".into(),
            false,
            Some("admin@clinic.test".into()),
        );
        app.size = (w, h);
        type_text(&mut app, "secret");
        app
    });
}

#[test]
fn patients_list() {
    check("patients_list", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Down));
        app
    });
}

#[test]
fn patients_detail() {
    check("patients_detail", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Enter));
        let mut older = patient(1, "Doe, J");
        older.version = 1;
        let mut newer = patient(1, "Doe, Jane");
        newer.version = 2;
        app.update(Action::PatientDetailLoaded(Box::new(PatientDetail {
            patient: newer.clone(),
            etag: Some("\"2\"".into()),
            accounts: vec![account(1, 10_000)],
            history: vec![
                pms_proto::rest::PatientVersion {
                    version: 1,
                    change_type: "CREATED".into(),
                    changed_at: at(1),
                    changed_by: None,
                    patient: older,
                },
                pms_proto::rest::PatientVersion {
                    version: 2,
                    change_type: "UPDATED".into(),
                    changed_at: at(2),
                    changed_by: None,
                    patient: newer,
                },
            ],
            audit: Some(vec![]),
        })));
        app
    });
}

#[test]
fn patients_search() {
    check("patients_search", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('/')));
        type_text(&mut app, "smi");
        app
    });
}

#[test]
fn patient_form_with_server_errors() {
    check("patient_form_errors", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('n')));
        type_text(&mut app, "Doe, Jane");
        press(&mut app, ctrl('s'));
        app.update(Action::Failed {
            op: pms_tui::action::Op::SavePatient,
            error: pms_cli::Error::Api {
                status: pms_cli::error::StatusCode::BAD_REQUEST,
                problem: Some(Box::new(pms_proto::rest::Problem {
                    type_: "about:blank".into(),
                    title: "Bad Request".into(),
                    status: 400,
                    detail: None,
                    errors: vec![pms_proto::rest::FieldError {
                        field: "email".into(),
                        message: "must be a valid email".into(),
                    }],
                    request_id: None,
                })),
                context: None,
                source_kind: pms_cli::error::TokenSource::Session,
                retry_after: None,
            },
        });
        app
    });
}

#[test]
fn delete_confirmation() {
    check("delete_confirm", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('d')));
        app
    });
}

#[test]
fn billing_accounts() {
    check("billing_accounts", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('2')));
        app
    });
}

#[test]
fn billing_payment() {
    check("billing_payment", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('2')));
        press(&mut app, key(KeyCode::Enter));
        app.update(Action::InvoicesLoaded {
            account: id(1001),
            invoices: vec![invoice(1), invoice(2)],
        });
        press(&mut app, key(KeyCode::Char('p')));
        app
    });
}

#[test]
fn analytics() {
    check("analytics", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('3')));
        app
    });
}

#[test]
fn events() {
    check("events", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('4')));
        press(&mut app, key(KeyCode::Char(' ')));
        app
    });
}

#[test]
fn event_detail() {
    check("event_detail", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('4')));
        press(&mut app, key(KeyCode::Up));
        press(&mut app, key(KeyCode::Up));
        press(&mut app, key(KeyCode::Up));
        press(&mut app, key(KeyCode::Enter));
        app
    });
}

#[test]
fn admin() {
    check("admin", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('5')));
        app
    });
}

#[test]
fn help_overlay() {
    check("help", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char('?')));
        app
    });
}

#[test]
fn command_palette() {
    check("palette", |w, h| {
        let mut app = loaded_app(w, h);
        press(&mut app, key(KeyCode::Char(':')));
        type_text(&mut app, "ev");
        app
    });
}

#[test]
fn too_small_says_so() {
    let app = loaded_app(40, 10);
    let terminal = render(&app, 40, 10);
    insta::assert_snapshot!("too_small_40x10", terminal.backend());
}

#[test]
fn no_color_marks_the_selection_with_reverse_only() {
    use ratatui::style::{Color, Modifier};
    let app = loaded_app(80, 24);
    let terminal = render(&app, 80, 24);
    let buffer = terminal.backend().buffer();
    // Row 4: the first patient (tabs, search line, border, header come first).
    let cell = &buffer[(2, 4)];
    assert!(cell.modifier.contains(Modifier::REVERSED), "{cell:?}");
    for cell in buffer.content() {
        assert_eq!(cell.fg, Color::Reset, "NO_COLOR sets no foreground");
        assert_eq!(cell.bg, Color::Reset, "NO_COLOR sets no background");
    }
}
