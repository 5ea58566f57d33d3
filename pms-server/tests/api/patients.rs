//! Patient API tests over real sockets, on SQLite and PostgreSQL, in two environments (see
//! [`env`]): `standalone::*` (the patient service with minted tokens) and `full_app::*` (the
//! all-in-one app with tokens from the auth service). Same test bodies in both.

use chrono::{Duration, Utc};
use pms_proto::rest::{AuditEntry, Patient, PatientVersion, Role};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::BACKENDS;

mod env;

use env::{Env, bad_fields, next_link, problem};

/// Generates, for each test body, one `#[tokio::test]` per environment, each looping over both
/// backends.
macro_rules! api_tests {
    ($($name:ident),* $(,)?) => {
        mod standalone {
            $(#[tokio::test]
            async fn $name() {
                for backend in super::BACKENDS {
                    println!("--- {backend:?}");
                    super::$name(&super::Env::standalone(backend).await).await;
                }
            })*
        }
        mod full_app {
            $(#[tokio::test]
            async fn $name() {
                for backend in super::BACKENDS {
                    println!("--- {backend:?}");
                    super::$name(&super::Env::full_app(backend).await).await;
                }
            })*
        }
    };
}

api_tests!(
    lifecycle_create_read_update_delete_history,
    the_reference_body_is_accepted,
    each_validation_rule_names_its_field,
    several_invalid_fields_are_reported_together,
    updates_validate_and_keep_what_is_absent,
    duplicate_emails_conflict_case_insensitively,
    link_paging_returns_every_patient_exactly_once,
    q_searches_names_emails_and_mrns,
    bad_listing_parameters_are_rejected,
    hostile_input_is_refused_or_stored_verbatim,
    roles_are_enforced,
    admins_see_an_audit_trail_without_field_values,
    requests_without_a_valid_token_are_unauthorized,
    the_openapi_document_is_served,
);

fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.org", Uuid::new_v4().simple())
}

/// The reference system's create body.
fn reference_body(name: &str, email: &str) -> Value {
    json!({
        "name": name,
        "email": email,
        "address": "221B Baker Street, London",
        "dateOfBirth": "1985-06-15",
        "registeredDate": "2024-01-10",
    })
}

fn today_plus(days: i64) -> String {
    (Utc::now() + Duration::days(days))
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_owned())
}

async fn lifecycle_create_read_update_delete_history(env: &Env) {
    let email = unique_email("life");
    let mut body = reference_body("Sherlock Holmes", &email);
    body["phone"] = json!("+44 20 7224 3688");
    body["sex"] = json!("MALE");
    let response = env
        .as_role(Role::Clinician, Method::POST, "/patients")
        .await
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "etag").as_deref(), Some("\"1\""));
    let location = header(&response, "location").expect("Location");
    let created: Patient = response.json().await.expect("patient");
    assert_eq!(location, format!("/api/patients/{}", created.id));
    assert!(
        created.mrn.starts_with("MRN-") && created.mrn[4..].chars().all(|c| c.is_ascii_digit()),
        "{}",
        created.mrn
    );
    assert_eq!(
        (
            created.name.as_str(),
            created.email.as_str(),
            created.version
        ),
        ("Sherlock Holmes", email.as_str(), 1)
    );
    assert_eq!(created.date_of_birth.to_string(), "1985-06-15");
    assert_eq!(created.registered_date.to_string(), "2024-01-10");
    assert_eq!(created.phone.as_deref(), Some("+44 20 7224 3688"));

    // Read it back through the Location.
    let token = env.token(Role::Viewer).await;
    let response = env
        .client
        .get(env.follow(&location))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "etag").as_deref(), Some("\"1\""));
    assert_eq!(response.json::<Patient>().await.expect("patient"), created);

    let (listed, _) = env.list_all(Role::Viewer, "/patients").await;
    assert_eq!(listed, std::slice::from_ref(&created));

    // Update with the current version.
    let path = format!("/patients/{}", created.id);
    let mut changed = body.clone();
    changed["address"] = json!("Reichenbach Falls");
    changed
        .as_object_mut()
        .expect("object")
        .remove("registeredDate");
    let response = env
        .as_role(Role::Clinician, Method::PUT, &path)
        .await
        .header("If-Match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .expect("update");
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "etag").as_deref(), Some("\"2\""));
    let updated: Patient = response.json().await.expect("patient");
    assert_eq!(
        (updated.version, updated.address.as_str()),
        (2, "Reichenbach Falls")
    );
    assert_eq!((updated.id, &updated.mrn), (created.id, &created.mrn));
    assert_eq!(updated.registered_date, created.registered_date);

    // A writer still holding version 1 is refused, and nothing changes.
    let response = env
        .as_role(Role::Clinician, Method::PUT, &path)
        .await
        .header("If-Match", "\"1\"")
        .json(&body)
        .send()
        .await
        .expect("stale update");
    problem(response, 412).await;
    let now: Patient = env
        .as_role(Role::Viewer, Method::GET, &path)
        .await
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("patient");
    assert_eq!(now, updated);

    let response = env
        .as_role(Role::Clinician, Method::DELETE, &path)
        .await
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    assert_eq!(response.text().await.expect("body"), "");
    for method in [Method::GET, Method::DELETE] {
        let response = env
            .as_role(Role::Admin, method.clone(), &path)
            .await
            .send()
            .await
            .expect("after delete");
        problem(response, 404).await;
    }
    let (listed, _) = env.list_all(Role::Viewer, "/patients").await;
    assert!(listed.is_empty(), "{listed:?}");

    let response = env
        .as_role(Role::Viewer, Method::GET, &format!("{path}/history"))
        .await
        .send()
        .await
        .expect("history");
    assert_eq!(response.status(), 200);
    let history: Vec<PatientVersion> = response.json().await.expect("versions");
    let (clinician, _) = env.user(Role::Clinician).await;
    let summary: Vec<(i64, &str, &str)> = history
        .iter()
        .map(|v| {
            (
                v.version,
                v.change_type.as_str(),
                v.patient.address.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "CREATED", "221B Baker Street, London"),
            (2, "UPDATED", "Reichenbach Falls"),
            (3, "DELETED", "Reichenbach Falls"),
        ]
    );
    assert!(history.iter().all(|v| v.changed_by == Some(clinician)));
    assert_eq!(history[0].patient, created);
    assert_eq!(history[1].patient, updated);
}

async fn the_reference_body_is_accepted(env: &Env) {
    let email = unique_email("ref");
    let response = env
        .as_role(Role::Admin, Method::POST, "/patients")
        .await
        .json(&reference_body("John Watson", &email))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    for field in [
        "id",
        "mrn",
        "name",
        "email",
        "address",
        "dateOfBirth",
        "registeredDate",
        "phone",
        "sex",
        "createdAt",
        "updatedAt",
        "version",
    ] {
        assert!(body.get(field).is_some(), "missing {field} in {body}");
    }
    assert_eq!(body["name"], "John Watson");
    assert_eq!(body["email"], email);
    assert_eq!(body["dateOfBirth"], "1985-06-15");
    assert_eq!(body["registeredDate"], "2024-01-10");
    assert_eq!((&body["phone"], &body["sex"]), (&Value::Null, &Value::Null));
    assert_eq!(body["version"], 1);
}

async fn each_validation_rule_names_its_field(env: &Env) {
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

async fn several_invalid_fields_are_reported_together(env: &Env) {
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

async fn updates_validate_and_keep_what_is_absent(env: &Env) {
    let mut body = reference_body("Irene Adler", &unique_email("upd"));
    body["phone"] = json!("555 0101");
    let created = env.create(&body).await;
    let path = format!("/patients/{}", created.id);

    // registeredDate, phone and sex are optional on update and kept when absent.
    let partial = json!({
        "name": "Irene Norton",
        "email": created.email,
        "address": "Briony Lodge",
        "dateOfBirth": "1985-06-15",
    });
    let response = env
        .as_role(Role::Admin, Method::PUT, &path)
        .await
        .header("If-Match", "W/\"1\"")
        .json(&partial)
        .send()
        .await
        .expect("update");
    assert_eq!(response.status(), 200, "weak ETags are accepted");
    let updated: Patient = response.json().await.expect("patient");
    assert_eq!(updated.name, "Irene Norton");
    assert_eq!(updated.registered_date, created.registered_date);
    assert_eq!(updated.phone.as_deref(), Some("555 0101"));

    // `*` matches any version; an empty string clears phone.
    let mut clear = partial.clone();
    clear["phone"] = json!("");
    let response = env
        .as_role(Role::Admin, Method::PUT, &path)
        .await
        .header("If-Match", "*")
        .json(&clear)
        .send()
        .await
        .expect("update");
    assert_eq!(response.status(), 200);
    let cleared: Patient = response.json().await.expect("patient");
    assert_eq!((cleared.version, cleared.phone.as_deref()), (3, None));

    // The same rules as on create, except registeredDate.
    let mut bad = partial.clone();
    bad["email"] = json!("bad");
    bad["registeredDate"] = json!(today_plus(5));
    bad.as_object_mut().expect("object").remove("name");
    let response = env
        .as_role(Role::Admin, Method::PUT, &path)
        .await
        .json(&bad)
        .send()
        .await
        .expect("update");
    assert_eq!(
        bad_fields(response).await,
        ["name", "email", "registeredDate"]
    );

    let unknown = format!("/patients/{}", Uuid::new_v4());
    let response = env
        .as_role(Role::Admin, Method::PUT, &unknown)
        .await
        .json(&partial)
        .send()
        .await
        .expect("update unknown");
    problem(response, 404).await;
    let response = env
        .as_role(Role::Admin, Method::PUT, "/patients/not-a-uuid")
        .await
        .json(&partial)
        .send()
        .await
        .expect("update bad id");
    problem(response, 400).await;
    let response = env
        .as_role(Role::Admin, Method::PUT, &path)
        .await
        .header("If-Match", "\"not-a-version\"")
        .json(&partial)
        .send()
        .await
        .expect("update bad etag");
    problem(response, 412).await;

    let after: Patient = env
        .as_role(Role::Admin, Method::GET, &path)
        .await
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("patient");
    assert_eq!(after, cleared, "refused updates changed nothing");
}

async fn duplicate_emails_conflict_case_insensitively(env: &Env) {
    let email = unique_email("Dup");
    let first = env.create(&reference_body("First", &email)).await;
    let response = env
        .as_role(Role::Admin, Method::POST, "/patients")
        .await
        .json(&reference_body("Second", &email.to_uppercase()))
        .send()
        .await
        .expect("duplicate");
    let conflict = problem(response, 409).await;
    assert!(
        !conflict.detail.unwrap_or_default().contains(&email),
        "the email is not echoed"
    );

    let other = env
        .create(&reference_body("Other", &unique_email("o")))
        .await;
    let response = env
        .as_role(Role::Admin, Method::PUT, &format!("/patients/{}", other.id))
        .await
        .json(&reference_body("Other", &email.to_lowercase()))
        .send()
        .await
        .expect("update to a taken email");
    problem(response, 409).await;

    let response = env
        .as_role(
            Role::Admin,
            Method::DELETE,
            &format!("/patients/{}", first.id),
        )
        .await
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    let reused = env.create(&reference_body("Second", &email)).await;
    assert_ne!(reused.id, first.id);
    assert_ne!(reused.mrn, first.mrn);
}

async fn link_paging_returns_every_patient_exactly_once(env: &Env) {
    let names = ["delta", "Alpha", "charlie", "alpha", "Bravo"];
    let mut created = Vec::new();
    for i in 0..23 {
        let name = format!("{} Pager", names[i % names.len()]);
        created.push(
            env.create(&reference_body(&name, &unique_email("page")))
                .await,
        );
    }
    let (listed, sizes) = env.list_all(Role::Viewer, "/patients?limit=5").await;
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    assert_eq!(listed, created, "creation order, each exactly once");

    let (listed, sizes) = env
        .list_all(Role::Viewer, "/patients?limit=10&sort=-name")
        .await;
    assert_eq!(sizes, [10, 10, 3]);
    let mut expected = created.clone();
    expected.sort_by(|a, b| (b.name.to_lowercase(), &b.mrn).cmp(&(a.name.to_lowercase(), &a.mrn)));
    assert_eq!(listed, expected);

    // The Link header carries the query and names the gateway path.
    let response = env
        .as_role(
            Role::Viewer,
            Method::GET,
            "/patients?limit=2&q=alpha&sort=name",
        )
        .await
        .send()
        .await
        .expect("list");
    let link = next_link(&response).expect("a next page");
    assert!(link.starts_with("/api/patients?limit=2&cursor="), "{link}");
    assert!(link.ends_with("&q=alpha&sort=name"), "{link}");
    let (listed, sizes) = env
        .list_all(Role::Viewer, "/patients?limit=2&q=alpha&sort=name")
        .await;
    assert_eq!(sizes, [2, 2, 2, 2, 1]);
    let mut alphas: Vec<&Patient> = created
        .iter()
        .filter(|p| p.name.to_lowercase() == "alpha pager")
        .collect();
    alphas.sort_by_key(|p| &p.mrn);
    assert_eq!(listed.iter().collect::<Vec<_>>(), alphas);

    // A page that holds everything announces no next page.
    let response = env
        .as_role(Role::Viewer, Method::GET, "/patients?limit=23")
        .await
        .send()
        .await
        .expect("list");
    assert_eq!(next_link(&response), None);
    assert_eq!(
        response.json::<Vec<Patient>>().await.expect("page").len(),
        23
    );
}

async fn q_searches_names_emails_and_mrns(env: &Env) {
    let ada = env
        .create(&reference_body(
            "Ada Lovelace",
            "ada.byron@analytical.example",
        ))
        .await;
    env.create(&reference_body("Charles Babbage", &unique_email("cb")))
        .await;
    env.create(&reference_body("100% Literal_Name", &unique_email("lit")))
        .await;
    env.create(&reference_body("1000 LiteralXName", &unique_email("lit")))
        .await;
    let search = |q: &str| {
        let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        async move {
            let (found, _) = env
                .list_all(Role::Viewer, &format!("/patients?q={q}"))
                .await;
            let mut names: Vec<String> = found.into_iter().map(|p| p.name).collect();
            names.sort();
            names
        }
    };
    assert_eq!(search("ada").await, ["Ada Lovelace"]);
    assert_eq!(
        search("LOVE").await,
        ["Ada Lovelace"],
        "any word of the name"
    );
    assert_eq!(search("ADA.BYRON@").await, ["Ada Lovelace"], "email prefix");
    assert_eq!(
        search(&ada.mrn.to_lowercase()).await,
        ["Ada Lovelace"],
        "MRN"
    );
    assert!(
        search("velace").await.is_empty(),
        "prefixes, not substrings"
    );
    assert_eq!(search("100%").await, ["100% Literal_Name"], "% is literal");
    assert_eq!(
        search("literal_").await,
        ["100% Literal_Name"],
        "_ is literal"
    );
    assert!(search("%").await.is_empty());
    assert_eq!(search("charles babbage").await, ["Charles Babbage"]);
}

async fn bad_listing_parameters_are_rejected(env: &Env) {
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("limit=-5", "limit"),
        ("sort=age", "sort"),
        ("sort=createdAt&cursor=garbage!", "cursor"),
        ("cursor=eyJvIjoibmFtZSIsInMiOjF9", "cursor"),
    ] {
        let response = env
            .as_role(Role::Viewer, Method::GET, &format!("/patients?{query}"))
            .await
            .send()
            .await
            .expect("list");
        assert_eq!(bad_fields(response).await, [field], "{query}");
    }
    let response = env
        .as_role(
            Role::Viewer,
            Method::GET,
            "/patients?limit=1000&sort=-createdAt",
        )
        .await
        .send()
        .await
        .expect("list");
    assert_eq!(response.status(), 200);
    for path in ["/patients/not-a-uuid", "/patients/123/history"] {
        let response = env
            .as_role(Role::Viewer, Method::GET, path)
            .await
            .send()
            .await
            .expect("get");
        problem(response, 400).await;
    }
}

async fn hostile_input_is_refused_or_stored_verbatim(env: &Env) {
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

async fn roles_are_enforced(env: &Env) {
    let patient = env
        .create(&reference_body("Role Target", &unique_email("r")))
        .await;
    let path = format!("/patients/{}", patient.id);
    let history = format!("{path}/history");
    let body = reference_body("Role Target", &patient.email);
    for reader in [Role::Viewer, Role::Billing, Role::Clinician, Role::Admin] {
        for read in ["/patients", path.as_str(), history.as_str()] {
            let response = env
                .as_role(reader, Method::GET, read)
                .await
                .send()
                .await
                .expect("read");
            assert_eq!(response.status(), 200, "{reader} GET {read}");
        }
    }
    for role in [Role::Viewer, Role::Billing] {
        let attempts = [
            (
                Method::POST,
                "/patients",
                Some(reference_body("X", &unique_email("x"))),
            ),
            (Method::PUT, path.as_str(), Some(body.clone())),
            (Method::DELETE, path.as_str(), None),
        ];
        for (method, target, json) in attempts {
            let mut request = env.as_role(role, method.clone(), target).await;
            if let Some(json) = json {
                request = request.json(&json);
            }
            let response = request.send().await.expect("write");
            problem(response, 403).await;
        }
    }
    for role in [Role::Viewer, Role::Billing, Role::Clinician] {
        let response = env
            .as_role(role, Method::GET, "/audit")
            .await
            .send()
            .await
            .expect("audit");
        problem(response, 403).await;
    }
    // A forbidden write with an invalid body is still a 403: the role is checked first.
    let response = env
        .as_role(Role::Viewer, Method::POST, "/patients")
        .await
        .json(&json!({ "name": "" }))
        .send()
        .await
        .expect("write");
    problem(response, 403).await;
    let unchanged: Patient = env
        .as_role(Role::Viewer, Method::GET, &path)
        .await
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("patient");
    assert_eq!(unchanged, patient);
}

async fn audit_entries(env: &Env, patient: Uuid, limit: u32) -> (Vec<AuditEntry>, String) {
    let token = env.token(Role::Admin).await;
    let mut url = env.url(&format!("/audit?patientId={patient}&limit={limit}"));
    let (mut entries, mut raw) = (Vec::new(), String::new());
    loop {
        let response = env
            .client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("audit");
        assert_eq!(response.status(), 200);
        let next = next_link(&response);
        let text = response.text().await.expect("body");
        let page: Vec<AuditEntry> = serde_json::from_str(&text).expect("entries");
        assert!(page.len() <= limit as usize);
        raw.push_str(&text);
        entries.extend(page);
        match next {
            Some(path) => url = env.follow(&path),
            None => return (entries, raw),
        }
    }
}

async fn admins_see_an_audit_trail_without_field_values(env: &Env) {
    let email = unique_email("audited");
    let created = env.create(&reference_body("Audit Subject", &email)).await;
    let path = format!("/patients/{}", created.id);
    let admin = env.token(Role::Admin).await;
    let send = |method: Method, token: String, json: Option<Value>| {
        let mut request = env
            .client
            .request(method, env.url(&path))
            .bearer_auth(token)
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-request-id", "audit-test-request");
        if let Some(json) = json {
            request = request.json(&json);
        }
        async move { request.send().await.expect("request").status().as_u16() }
    };
    let body = reference_body("Audit Subject", &email);
    assert_eq!(send(Method::GET, admin.clone(), None).await, 200);
    assert_eq!(
        send(Method::PUT, admin.clone(), Some(body.clone())).await,
        200
    );
    let invalid = json!({ "name": "" });
    assert_eq!(send(Method::PUT, admin.clone(), Some(invalid)).await, 400);
    let viewer = env.token(Role::Viewer).await;
    assert_eq!(send(Method::DELETE, viewer, None).await, 403);
    assert_eq!(send(Method::DELETE, admin.clone(), None).await, 204);
    assert_eq!(send(Method::GET, admin.clone(), None).await, 404);

    let (entries, raw) = audit_entries(env, created.id, 2).await;
    let trail: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            ("patient.read", "NOT_FOUND"),
            ("patient.delete", "SUCCESS"),
            ("patient.delete", "DENIED"),
            ("patient.update", "REJECTED"),
            ("patient.update", "SUCCESS"),
            ("patient.read", "SUCCESS"),
            ("patient.create", "SUCCESS"),
        ]
    );
    assert!(entries.iter().all(|e| e.patient_id == Some(created.id)));
    assert!(entries.iter().all(|e| e.resource == "patient"));
    let (admin_id, _) = env.user(Role::Admin).await;
    let (viewer_id, _) = env.user(Role::Viewer).await;
    assert_eq!(entries[2].actor_id, Some(viewer_id));
    assert_eq!(entries[2].actor_role.as_deref(), Some("VIEWER"));
    assert_eq!(entries[1].actor_id, Some(admin_id));
    assert_eq!(entries[1].actor_role.as_deref(), Some("ADMIN"));
    assert_eq!(entries[0].client_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(entries[0].request_id.as_deref(), Some("audit-test-request"));
    for value in [email.as_str(), "Audit Subject", "221B Baker", "1985-06-15"] {
        assert!(!raw.contains(value), "audit JSON contains `{value}`: {raw}");
    }

    // Reading the audit log is audited too (one row per page read above).
    let (again, _) = audit_entries(env, created.id, 100).await;
    let reads = again
        .iter()
        .take_while(|e| e.action == "audit.read")
        .count();
    assert_eq!(reads, 4, "{again:?}");
    assert!(
        again[..reads]
            .iter()
            .all(|e| e.outcome == "SUCCESS" && e.resource == "audit")
    );
}

async fn requests_without_a_valid_token_are_unauthorized(env: &Env) {
    let id = env
        .create(&reference_body("Guarded", &unique_email("g")))
        .await
        .id;
    let targets = [
        (Method::GET, "/patients".to_owned()),
        (Method::POST, "/patients".to_owned()),
        (Method::GET, format!("/patients/{id}")),
        (Method::DELETE, format!("/patients/{id}")),
        (Method::GET, format!("/patients/{id}/history")),
        (Method::GET, "/audit".to_owned()),
    ];
    for (method, path) in &targets {
        for auth in [
            None,
            Some("Bearer garbage"),
            Some("Bearer a.b.c"),
            Some("Basic YWRtaW4="),
        ] {
            let mut request = env.client.request(method.clone(), env.url(path));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.expect("request");
            assert!(response.headers().contains_key("www-authenticate"));
            problem(response, 401).await;
        }
    }
    let response = env
        .as_role(Role::Viewer, Method::GET, &format!("/patients/{id}"))
        .await
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200, "still there");
}

async fn the_openapi_document_is_served(env: &Env) {
    let response = env
        .client
        .get(env.url("/openapi.json"))
        .send()
        .await
        .expect("openapi");
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/patients",
        "/patients/{id}",
        "/patients/{id}/history",
        "/audit",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    assert!(doc["components"]["schemas"]["Patient"].is_object());
}

/// Tokens that are expired, or signed by a key the service does not trust, are refused. Only
/// the standalone environment can forge them. An unknown `kid` makes the verifier refetch the
/// JWKS; that path must answer 401, not hang.
#[tokio::test]
async fn expired_and_foreign_tokens_are_refused() {
    for backend in BACKENDS {
        let env = Env::standalone(backend).await;
        let minter = env.minter().expect("standalone mints");
        let expired = minter.mint(Uuid::new_v4(), Role::Admin, -120);
        let foreign = Env::standalone(backend)
            .await
            .minter()
            .expect("mints")
            .mint(Uuid::new_v4(), Role::Admin, 600);
        for (what, token) in [("expired", expired), ("foreign-key", foreign)] {
            let request = env
                .client
                .get(env.url("/patients"))
                .bearer_auth(token)
                .send();
            let response = tokio::time::timeout(std::time::Duration::from_secs(15), request)
                .await
                .unwrap_or_else(|_| panic!("verifying a {what} token hung"))
                .expect("list");
            problem(response, 401).await;
        }
        let fresh = minter.mint(Uuid::new_v4(), Role::Viewer, 600);
        let response = env
            .client
            .get(env.url("/patients"))
            .bearer_auth(fresh)
            .send()
            .await
            .expect("list");
        assert_eq!(response.status(), 200);
    }
}
