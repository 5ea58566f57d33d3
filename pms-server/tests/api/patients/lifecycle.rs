//! Create, read, update, delete and history through the API; the reference body; update semantics
//! (If-Match, kept fields); duplicate emails.

use pms_proto::rest::{Patient, PatientVersion, Role};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::env::{Env, bad_fields, problem};
use super::{header, reference_body, today_plus, unique_email};

pub(super) async fn lifecycle_create_read_update_delete_history(env: &Env) {
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
    let mut created: Patient = response.json().await.expect("patient");
    assert_eq!(location, format!("/api/patients/{}", created.id));
    // Create-only field (present when billing answered); reads never carry it.
    created.billing_account_id = None;
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

pub(super) async fn the_reference_body_is_accepted(env: &Env) {
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

pub(super) async fn updates_validate_and_keep_what_is_absent(env: &Env) {
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

pub(super) async fn duplicate_emails_conflict_case_insensitively(env: &Env) {
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
