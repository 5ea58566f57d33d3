//! Unit tests of the patient domain types: every validation rule, and that all errors of one
//! request are reported together.

use chrono::NaiveDate;
use pms_proto::rest::{PatientRequest, Sex};

use super::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 15).expect("date")
}

fn valid() -> PatientRequest {
    PatientRequest {
        name: Some("  Ada   Lovelace ".into()),
        email: Some("Ada.Lovelace@Example.org".into()),
        address: Some("12 St James's Square, London".into()),
        date_of_birth: Some("1915-12-10".into()),
        registered_date: Some("2025-06-15".into()),
        phone: None,
        sex: None,
    }
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn a_valid_reference_body_parses_and_is_trimmed() {
    let p = NewPatient::parse(&valid(), today()).expect("valid");
    assert_eq!(p.name.as_str(), "Ada   Lovelace");
    assert_eq!(p.name.sort_key(), "ada lovelace");
    assert_eq!(p.email.as_str(), "Ada.Lovelace@Example.org");
    assert_eq!(p.email.key(), "ada.lovelace@example.org");
    assert_eq!(
        p.date_of_birth.date(),
        NaiveDate::from_ymd_opt(1915, 12, 10).expect("date")
    );
    assert_eq!(p.registered_date.date(), today());
    assert_eq!((p.phone, p.sex), (None, None));
}

#[test]
fn optional_fields_parse_and_blank_means_absent_on_create() {
    let mut req = valid();
    req.phone = Some("+44 (20) 7946-0958".into());
    req.sex = Some("female".into());
    let p = NewPatient::parse(&req, today()).expect("valid");
    assert_eq!(
        p.phone.as_ref().map(Phone::as_str),
        Some("+44 (20) 7946-0958")
    );
    assert_eq!(p.sex, Some(Sex::Female));

    req.phone = Some("  ".into());
    req.sex = Some(String::new());
    let p = NewPatient::parse(&req, today()).expect("valid");
    assert_eq!((p.phone, p.sex), (None, None));
}

#[test]
fn an_empty_body_reports_every_required_field() {
    let errors = NewPatient::parse(&PatientRequest::default(), today()).expect_err("invalid");
    assert_eq!(
        fields(&errors),
        ["name", "email", "address", "dateOfBirth", "registeredDate"]
    );
    assert!(
        errors.iter().all(|e| e.message.ends_with("is required")),
        "{errors:?}"
    );
}

#[test]
fn update_does_not_require_registered_date_but_validates_it() {
    let mut req = valid();
    req.registered_date = None;
    let c = PatientChanges::parse(&req, today()).expect("valid");
    assert_eq!(c.registered_date, None);
    assert_eq!((c.phone, c.sex), (Change::Keep, Change::Keep));

    req.phone = Some(String::new());
    req.sex = Some("OTHER".into());
    let c = PatientChanges::parse(&req, today()).expect("valid");
    assert_eq!((c.phone, c.sex), (Change::Clear, Change::Set(Sex::Other)));

    req.registered_date = Some("2025-06-16".into());
    let errors = PatientChanges::parse(&req, today()).expect_err("future");
    assert_eq!(fields(&errors), ["registeredDate"]);
}

#[test]
fn each_rule_names_its_field() {
    type Case = (&'static str, fn(&mut PatientRequest));
    let cases: [Case; 22] = [
        ("name", |r| r.name = Some("   ".into())),
        ("name", |r| r.name = Some("x".repeat(101))),
        ("name", |r| r.name = Some("Ada\u{0}Lovelace".into())),
        ("email", |r| r.email = Some(String::new())),
        ("email", |r| r.email = Some("not-an-email".into())),
        ("email", |r| r.email = Some("a@b".into())),
        ("email", |r| r.email = Some("a..b@example.org".into())),
        ("email", |r| r.email = Some("a b@example.org".into())),
        ("email", |r| r.email = Some("a@-example.org".into())),
        ("email", |r| {
            r.email = Some(format!("{}@example.org", "a".repeat(250)))
        }),
        ("address", |r| r.address = Some(" ".into())),
        ("address", |r| r.address = Some("y".repeat(501))),
        ("dateOfBirth", |r| {
            r.date_of_birth = Some("2025-06-16".into())
        }),
        ("dateOfBirth", |r| {
            r.date_of_birth = Some("1899-12-31".into())
        }),
        ("dateOfBirth", |r| {
            r.date_of_birth = Some("2024-02-30".into())
        }),
        ("dateOfBirth", |r| r.date_of_birth = Some("2024-2-3".into())),
        ("dateOfBirth", |r| {
            r.date_of_birth = Some("10/12/1915".into())
        }),
        ("registeredDate", |r| {
            r.registered_date = Some("tomorrow".into())
        }),
        ("phone", |r| r.phone = Some("12ab5678".into())),
        ("phone", |r| r.phone = Some("1234".into())),
        ("phone", |r| r.phone = Some("1".repeat(31))),
        ("sex", |r| r.sex = Some("F".into())),
    ];
    for (field, break_it) in cases {
        let mut req = valid();
        break_it(&mut req);
        let errors = NewPatient::parse(&req, today()).expect_err(field);
        assert_eq!(fields(&errors), [field], "{req:?}");
    }
}

#[test]
fn limits_are_inclusive() {
    let mut req = valid();
    req.name = Some("é".repeat(100));
    req.address = Some("a".repeat(500));
    req.date_of_birth = Some("1900-01-01".into());
    req.phone = Some("12345".into());
    let p = NewPatient::parse(&req, today()).expect("at the limits");
    assert_eq!(p.name.as_str().chars().count(), 100);
    assert_eq!(p.date_of_birth.date(), earliest_birth_date());
}

#[test]
fn several_bad_fields_are_reported_together() {
    let req = PatientRequest {
        name: Some(String::new()),
        email: Some("nope".into()),
        address: Some("ok".into()),
        date_of_birth: Some("3000-01-01".into()),
        registered_date: None,
        phone: Some("x".into()),
        sex: Some("robot".into()),
    };
    let errors = NewPatient::parse(&req, today()).expect_err("invalid");
    assert_eq!(
        fields(&errors),
        [
            "name",
            "email",
            "dateOfBirth",
            "phone",
            "sex",
            "registeredDate"
        ]
    );
}

#[test]
fn plausible_emails_are_accepted() {
    for email in [
        "a@b.co",
        "first.last+tag@sub.example.org",
        "o'brien@example.ie",
        "josé@exämple.de",
        "x_y-z@host-1.example",
    ] {
        assert!(Email::parse(email).is_ok(), "{email}");
    }
    assert!(Email::parse("user@1.2.3.4").is_err());
}

#[test]
fn name_key_lowercases_and_collapses_whitespace() {
    assert_eq!(name_key("  ÉMILE \t Zola "), "émile zola");
}

#[test]
fn latest_today_is_never_before_the_utc_date() {
    assert!(latest_today() >= chrono::Utc::now().date_naive());
}
