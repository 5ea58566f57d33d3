//! Input validation: one 400 error per bad field, several at once, and hostile input that must be
//! refused whole or stored verbatim — never a 5xx, never half-stored.

use pms_proto::rest::{Patient, Role};
use reqwest::Method;
use serde_json::{Value, json};

use super::env::{Env, bad_fields, problem};
use super::{reference_body, today_plus, unique_email};

pub(super) async fn each_validation_rule_names_its_field(env: &Env) {
    let cases: Vec<(&str, &str, Value)> = vec![
        ("name", "name", Value::Null),
        ("name", "name", json!("   ")),
        ("name", "name", json!("n".repeat(101))),
        ("email", "email", Value::Null),
        ("email", "email", json!("not-an-email")),
        ("email", "email", json!("two@@example.org")),
        (
            "email",
            "email",
            json!(format!("{}@example.org", "e".repeat(250))),
        ),
        ("address", "address", Value::Null),
        ("address", "address", json!("")),
        ("address", "address", json!("a".repeat(501))),
        ("dateOfBirth", "dateOfBirth", Value::Null),
        ("dateOfBirth", "dateOfBirth", json!(today_plus(2))),
        ("dateOfBirth", "dateOfBirth", json!("1899-12-31")),
        ("dateOfBirth", "dateOfBirth", json!("2024-02-30")),
        ("dateOfBirth", "dateOfBirth", json!("15/06/1985")),
        ("registeredDate", "registeredDate", Value::Null),
        ("registeredDate", "registeredDate", json!(today_plus(2))),
        ("registeredDate", "registeredDate", json!("yesterday")),
        ("phone", "phone", json!("555-CALL-NOW")),
        ("phone", "phone", json!("1234")),
        ("phone", "phone", json!("1".repeat(31))),
        ("sex", "sex", json!("F")),
    ];
    for (key, field, value) in cases {
        let mut body = reference_body("Valid Name", &unique_email("v"));
        if value.is_null() {
            body.as_object_mut().expect("object").remove(key);
        } else {
            body[key] = value.clone();
        }
        let response = env
            .as_role(Role::Admin, Method::POST, "/patients")
            .await
            .json(&body)
            .send()
            .await
            .expect("create");
        assert_eq!(bad_fields(response).await, [field], "{key} = {value}");
    }
    // Nothing of any refused request was stored.
    let (listed, _) = env.list_all(Role::Admin, "/patients").await;
    assert!(listed.is_empty(), "{listed:?}");
}

pub(super) async fn several_invalid_fields_are_reported_together(env: &Env) {
    let body = json!({
        "name": "",
        "email": "nope",
        "address": "Somewhere",
        "dateOfBirth": today_plus(3),
        "phone": "x",
        "sex": "robot",
    });
    let response = env
        .as_role(Role::Admin, Method::POST, "/patients")
        .await
        .json(&body)
        .send()
        .await
        .expect("create");
    let problem = problem(response, 400).await;
    let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "email",
            "dateOfBirth",
            "phone",
            "sex",
            "registeredDate"
        ]
    );
    assert!(problem.errors.iter().all(|e| !e.message.is_empty()));
    assert_eq!(problem.detail.as_deref(), Some("6 fields are invalid"));
}

pub(super) async fn hostile_input_is_refused_or_stored_verbatim(env: &Env) {
    let email = unique_email("h");
    let raw_bodies = [
        r#"{"name": "Unclosed"#.to_owned(),
        "not json at all".to_owned(),
        r#"[1, 2, 3]"#.to_owned(),
        r#"{"name": 5, "email": "x@example.org"}"#.to_owned(),
        format!(
            r#"{{"name":"A","email":"{email}","address":"B","dateOfBirth":"1990-01-01","registeredDate":"2024-01-01","role":"ADMIN"}}"#
        ),
        format!(
            r#"{{"name":"A","email":"{email}","address":"B","dateOfBirth":"2024-02-30","registeredDate":"2024-01-01"}}"#
        ),
    ];
    for raw in &raw_bodies {
        let response = env
            .as_role(Role::Admin, Method::POST, "/patients")
            .await
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .expect("create");
        problem(response, 400).await;
    }
    let response = env
        .as_role(Role::Admin, Method::POST, "/patients")
        .await
        .body(reference_body("No Content Type", &email).to_string())
        .send()
        .await
        .expect("create");
    problem(response, 415).await;

    // SQL in values is data: stored and returned verbatim, and harmless.
    let sql_name = "Robert'); DROP TABLE patients;--";
    let sql_address = "1' OR '1'='1; DELETE FROM patient_audit; --";
    let mut body = reference_body(sql_name, &email);
    body["address"] = json!(sql_address);
    let stored = env.create(&body).await;
    assert_eq!(
        (stored.name.as_str(), stored.address.as_str()),
        (sql_name, sql_address)
    );
    let response = env
        .as_role(Role::Admin, Method::GET, "/patients?q=robert%27%29%3B")
        .await
        .send()
        .await
        .expect("search");
    assert_eq!(response.status(), 200);
    let found: Vec<Patient> = response.json().await.expect("patients");
    assert_eq!(found, std::slice::from_ref(&stored));
    // Nothing of the refused requests was half-stored.
    let (all, _) = env.list_all(Role::Admin, "/patients").await;
    assert_eq!(all, [stored]);
}
