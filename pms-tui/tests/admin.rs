//! The Admin tab's actions: new user, role change, disable/enable after a question, the audit
//! filter — through `App::update` (requests queued, no network) and drawn on `TestBackend` at
//! 80×24 and 120×40 (insta snapshots in `tests/snapshots/`).
#![allow(clippy::unwrap_used)]

mod fixtures;

use crossterm::event::KeyCode;
use fixtures::*;
use pms_cli::Error;
use pms_cli::error::{StatusCode, TokenSource};
use pms_proto::rest::{AuditEntry, Role, User};
use pms_tui::action::{Action, Op, Request};
use pms_tui::app::App;
use pms_tui::keys::Mode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn admin_app(w: u16, h: u16) -> App {
    let mut app = loaded_app(w, h);
    let mut users = users();
    users.push(User {
        id: id(10),
        email: "nurse@clinic.test".into(),
        role: Role::Clinician,
        disabled: false,
        created_at: at(2),
        updated_at: at(2),
    });
    app.update(Action::UsersLoaded(users));
    app.update(Action::AuditLoaded(vec![
        audit(1, "patient.read", "SUCCESS"),
        audit(2, "patient.delete", "DENIED"),
        audit(3, "auth.login", "SUCCESS"),
    ]));
    press(&mut app, key(KeyCode::Char('5')));
    app.requests.clear();
    app
}

fn audit(n: u128, action: &str, outcome: &str) -> AuditEntry {
    AuditEntry {
        id: id(100 + n),
        occurred_at: at(u32::try_from(n).unwrap()),
        actor_id: Some(id(9)),
        actor_role: Some("ADMIN".into()),
        action: action.into(),
        resource: "patient".into(),
        patient_id: Some(id(1)),
        outcome: outcome.into(),
        client_ip: None,
        request_id: None,
    }
}

#[test]
fn n_creates_a_user_through_the_form() {
    let mut app = admin_app(80, 24);
    press(&mut app, key(KeyCode::Char('n')));
    assert_eq!(app.mode(), Mode::Text);
    press(&mut app, key(KeyCode::Enter));
    assert!(app.requests.is_empty(), "email and password are required");
    let form = app.admin.form.as_ref().unwrap();
    assert!(form.error.as_deref().unwrap().contains("required"));
    type_text(&mut app, "new@clinic.test");
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "a long passphrase");
    press(&mut app, key(KeyCode::Tab));
    for _ in 0.."VIEWER".len() {
        press(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, "nobody");
    press(&mut app, key(KeyCode::Enter));
    assert!(app.requests.is_empty(), "an unknown role is refused");
    for _ in 0.."nobody".len() {
        press(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, "billing");
    press(&mut app, ctrl('s'));
    match app.requests.as_slice() {
        [Request::CreateUser { body }] => {
            assert_eq!(body.email, "new@clinic.test");
            assert_eq!(body.password, "a long passphrase");
            assert_eq!(body.role, Role::Billing);
        }
        other => panic!("expected CreateUser, got {other:?}"),
    }
    app.requests.clear();
    press(&mut app, key(KeyCode::Enter));
    assert!(
        app.requests.is_empty(),
        "a second Enter while sending sends nothing"
    );
    app.update(Action::UserSaved(Box::new(User {
        id: id(11),
        email: "new@clinic.test".into(),
        role: Role::Billing,
        disabled: false,
        created_at: at(3),
        updated_at: at(3),
    })));
    assert!(app.admin.form.is_none());
    assert_eq!(app.admin.users.len(), 3);
    assert!(app.flash.as_ref().unwrap().text.contains("created"));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Audit { patient: None }]
    ));
}

#[test]
fn a_refused_user_keeps_the_form_with_the_reason() {
    let mut app = admin_app(80, 24);
    press(&mut app, key(KeyCode::Char('n')));
    type_text(&mut app, "admin@clinic.test");
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "pw");
    press(&mut app, key(KeyCode::Enter));
    assert_eq!(app.requests.len(), 1);
    app.update(Action::Failed {
        op: Op::SaveUser,
        error: Error::Api {
            status: StatusCode::CONFLICT,
            problem: None,
            context: None,
            source_kind: TokenSource::Session,
            retry_after: None,
        },
    });
    let form = app.admin.form.as_ref().unwrap();
    assert!(!form.sending);
    assert!(
        form.error.as_deref().unwrap().contains("conflict"),
        "{form:?}"
    );
    press(&mut app, key(KeyCode::Esc));
    assert!(app.admin.form.is_none());
}

#[test]
fn e_changes_the_selected_users_role() {
    let mut app = admin_app(80, 24);
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Char('e')));
    let form = app.admin.form.as_ref().unwrap();
    assert_eq!(form.fields[0].1.text, "CLINICIAN");
    for _ in 0.."CLINICIAN".len() {
        press(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, "viewer");
    press(&mut app, key(KeyCode::Enter));
    match app.requests.as_slice() {
        [Request::UpdateUser { id: who, body }] => {
            assert_eq!(*who, id(10));
            assert_eq!(body.role, Some(Role::Viewer));
            assert_eq!(body.disabled, None);
        }
        other => panic!("expected UpdateUser, got {other:?}"),
    }
}

#[test]
fn d_disables_and_enables_only_after_yes() {
    let mut app = admin_app(80, 24);
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Char('d')));
    assert_eq!(app.mode(), Mode::Confirm);
    assert!(app.requests.is_empty());
    press(&mut app, key(KeyCode::Char('n')));
    assert!(app.admin.confirm_toggle.is_none());
    assert!(app.requests.is_empty(), "no means nothing is sent");
    press(&mut app, key(KeyCode::Char('d')));
    press(&mut app, key(KeyCode::Char('y')));
    match app.requests.as_slice() {
        [Request::UpdateUser { id: who, body }] => {
            assert_eq!(*who, id(10));
            assert_eq!(body.disabled, Some(true));
            assert_eq!(body.role, None);
        }
        other => panic!("expected UpdateUser, got {other:?}"),
    }
    app.requests.clear();
    let mut disabled = app.admin.users[1].clone();
    disabled.disabled = true;
    app.update(Action::UserSaved(Box::new(disabled)));
    assert!(app.admin.users[1].disabled);
    assert!(app.flash.as_ref().unwrap().text.contains("disabled"));
    // Pressed again on a disabled user, `d` offers to enable.
    press(&mut app, key(KeyCode::Char('d')));
    assert!(
        !app.admin.confirm_toggle.as_ref().unwrap().2,
        "offers to enable"
    );
}

#[test]
fn user_keys_do_nothing_on_the_audit_list() {
    let mut app = admin_app(80, 24);
    press(&mut app, key(KeyCode::Tab));
    press(&mut app, key(KeyCode::Char('d')));
    press(&mut app, key(KeyCode::Char('e')));
    assert!(app.admin.confirm_toggle.is_none());
    assert!(app.admin.form.is_none());
}

#[test]
fn slash_filters_the_audit_by_patient_action_and_outcome() {
    let mut app = admin_app(80, 24);
    assert_eq!(app.admin.visible_audit().len(), 3);
    press(&mut app, key(KeyCode::Char('/')));
    type_text(&mut app, "not-a-uuid");
    press(&mut app, key(KeyCode::Enter));
    assert!(app.requests.is_empty());
    assert!(app.admin.form.as_ref().unwrap().error.is_some());
    for _ in 0.."not-a-uuid".len() {
        press(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, &id(1).to_string());
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "PATIENT");
    press(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "success");
    press(&mut app, key(KeyCode::Enter));
    assert!(app.admin.form.is_none());
    match app.requests.as_slice() {
        [Request::Audit { patient }] => assert_eq!(*patient, Some(id(1))),
        other => panic!("expected Audit for the patient, got {other:?}"),
    }
    let rows = app.admin.visible_audit();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].action, "patient.read");
    // `r` reloads with the filter kept.
    app.requests.clear();
    press(&mut app, key(KeyCode::Char('r')));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Users, Request::Audit { patient: Some(_) }]
    ));
}

fn check(name: &str, setup: impl Fn(u16, u16) -> App) {
    for (w, h) in [(80, 24), (120, 40)] {
        let app = setup(w, h);
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|frame| app.draw(frame)).unwrap();
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn snapshot_new_user_form() {
    check("admin_new_user", |w, h| {
        let mut app = admin_app(w, h);
        press(&mut app, key(KeyCode::Char('n')));
        type_text(&mut app, "new@clinic.test");
        press(&mut app, key(KeyCode::Tab));
        type_text(&mut app, "secret");
        app
    });
}

#[test]
fn snapshot_disable_question() {
    check("admin_disable", |w, h| {
        let mut app = admin_app(w, h);
        press(&mut app, key(KeyCode::Down));
        press(&mut app, key(KeyCode::Char('d')));
        app
    });
}

#[test]
fn snapshot_audit_filtered() {
    check("admin_audit_filtered", |w, h| {
        let mut app = admin_app(w, h);
        press(&mut app, key(KeyCode::Char('/')));
        press(&mut app, key(KeyCode::Tab));
        press(&mut app, key(KeyCode::Tab));
        type_text(&mut app, "denied");
        press(&mut app, key(KeyCode::Enter));
        app
    });
}

#[test]
fn snapshot_role_form() {
    check("admin_role", |w, h| {
        let mut app = admin_app(w, h);
        press(&mut app, key(KeyCode::Down));
        press(&mut app, key(KeyCode::Char('e')));
        app
    });
}
