//! The `-o json` shape of every command against the real server (the documented contract), and
//! `-o csv` / table output of lists.

use serde_json::Value;

use super::{Backend, Pms, Server, keys, patient_json};

const PATIENT_KEYS: [&str; 12] = [
    "address",
    "createdAt",
    "dateOfBirth",
    "email",
    "id",
    "mrn",
    "name",
    "phone",
    "registeredDate",
    "sex",
    "updatedAt",
    "version",
];

fn patient_keys(value: &Value) -> Vec<String> {
    let mut k = keys(value);
    k.retain(|k| k != "billingAccountId"); // create response only, when billing answered
    k
}

async fn every_json_shape(backend: Backend) {
    let server = Server::start(backend).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);

    let status = pms
        .run(&["auth", "status", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(
        keys(&status),
        [
            "accessTokenExpiresAt",
            "email",
            "loggedIn",
            "profile",
            "role",
            "server",
            "source",
            "store",
            "storePath",
            "verified"
        ]
    );
    let me = pms.run(&["whoami", "-o", "json"], None).expect(0).json();
    assert_eq!(keys(&me), ["email", "id", "role", "tokenExpiresAt"]);
    assert_eq!(me["email"], server.admin_email.as_str());

    let body = patient_json("Shape Tester");
    let created = pms
        .run(
            &[
                "patients",
                "create",
                "--name",
                "Shape Tester",
                "--email",
                body["email"].as_str().expect("email"),
                "--address",
                "1 Main St",
                "--dob",
                "1990-04-01",
                "--phone",
                "+1 555 0100",
                "--sex",
                "female",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0);
    assert!(created.stderr.contains("Created patient"), "{created:?}");
    let created = created.json();
    assert_eq!(patient_keys(&created), PATIENT_KEYS);
    assert_eq!(created["sex"], "FEMALE");
    assert_eq!(
        created["registeredDate"],
        chrono::Utc::now().date_naive().to_string(),
        "defaults to today"
    );
    let id = created["id"].as_str().expect("id").to_owned();

    let got = pms
        .run(&["patients", "get", &id, "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(patient_keys(&got), PATIENT_KEYS);
    let list = pms
        .run(&["patients", "list", "-q", "Shape", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(list.as_array().expect("array").len(), 1);
    assert_eq!(patient_keys(&list[0]), PATIENT_KEYS);

    let updated = pms
        .run(
            &[
                "patients",
                "update",
                &id,
                "--address",
                "2 Main St",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(updated["address"], "2 Main St");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["name"], "Shape Tester", "untouched fields kept");
    assert_eq!(
        updated["phone"], "+1 555 0100",
        "untouched optional fields kept"
    );

    let history = pms
        .run(&["patients", "history", &id, "-o", "json"], None)
        .expect(0)
        .json();
    let history = history.as_array().expect("array");
    assert_eq!(history.len(), 2);
    assert_eq!(
        keys(&history[0]),
        ["changeType", "changedAt", "changedBy", "patient", "version"]
    );

    let audit = pms
        .run(&["audit", "--patient", &id, "-o", "json"], None)
        .expect(0)
        .json();
    let audit = audit.as_array().expect("array");
    assert!(audit.len() >= 3, "create, read, update…: {audit:?}");
    assert_eq!(
        keys(&audit[0]),
        [
            "action",
            "actorId",
            "actorRole",
            "clientIp",
            "id",
            "occurredAt",
            "outcome",
            "patientId",
            "requestId",
            "resource"
        ]
    );

    let email = format!("clin-{}@pms.test", uuid::Uuid::new_v4().simple());
    let user = pms
        .run(
            &[
                "users",
                "create",
                "--email",
                &email,
                "--role",
                "clinician",
                "--password-stdin",
                "-o",
                "json",
            ],
            Some("clinician-password-1\n"),
        )
        .expect(0)
        .json();
    assert_eq!(
        keys(&user),
        ["createdAt", "disabled", "email", "id", "role", "updatedAt"]
    );
    assert_eq!(user["role"], "CLINICIAN");
    let user_id = user["id"].as_str().expect("id").to_owned();
    let users = pms
        .run(&["users", "list", "-o", "json"], None)
        .expect(0)
        .json();
    assert!(
        users
            .as_array()
            .expect("array")
            .iter()
            .any(|u| u["email"] == email.as_str())
    );
    let got = pms
        .run(&["users", "get", &user_id, "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(got["email"], email.as_str());
    let disabled = pms
        .run(
            &[
                "users",
                "update",
                &user_id,
                "--disable",
                "--role",
                "viewer",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(
        (disabled["disabled"].clone(), disabled["role"].clone()),
        (Value::Bool(true), Value::from("VIEWER"))
    );

    let summary = pms
        .run(&["analytics", "summary", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(
        keys(&summary),
        [
            "accounts",
            "billing",
            "eventsTotal",
            "generatedAt",
            "patients"
        ]
    );
    assert_eq!(
        keys(&summary["patients"]),
        ["active", "new30d", "new7d", "newToday", "total"]
    );
    let flat = pms.run(&["analytics", "summary"], None).expect(0).stdout;
    assert!(
        flat.contains("patients.total "),
        "flattened for people: {flat}"
    );

    // CSV and tables for lists.
    let csv = pms
        .run(&["patients", "list", "-q", "Shape", "-o", "csv"], None)
        .expect(0)
        .stdout;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,mrn,name,email,dateOfBirth,registeredDate,phone,sex,address,version")
    );
    assert!(
        lines.next().expect("row").starts_with(&format!("{id},")),
        "{csv}"
    );
    let table = pms
        .run(&["patients", "list", "-q", "Shape"], None)
        .expect(0)
        .stdout;
    assert!(
        table.starts_with("MRN "),
        "plain header (the narrow default columns) without a terminal: {table}"
    );
    assert!(!table.contains('\x1b'), "no colour without a terminal");
    pms.run(&["patients", "delete", &id, "--yes"], None)
        .expect(0);
    let empty = pms
        .run(&["patients", "list", "-q", "Shape"], None)
        .expect(0);
    assert!(
        empty.stdout.is_empty() && empty.stderr.contains("No patients found"),
        "{empty:?}"
    );
    let json_empty = pms
        .run(&["patients", "list", "-q", "Shape", "-o", "json"], None)
        .expect(0);
    assert_eq!(json_empty.stdout, "[]\n");
}

#[tokio::test]
async fn every_command_json_shape_on_sqlite() {
    every_json_shape(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_command_json_shape_on_postgres() {
    every_json_shape(Backend::Postgres).await;
}

#[tokio::test]
async fn paging_follows_link_headers() {
    let server = Server::start(Backend::Sqlite).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);
    let client = server.admin_client().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    for i in 0..5 {
        let mut body = patient_json("Pager");
        body["name"] = Value::from(format!("Pager{tag} {i}"));
        client
            .create_patient(&serde_json::from_value(body).expect("request"))
            .await
            .expect("create");
    }
    let query = format!("Pager{tag}");
    let page = pms
        .run(
            &[
                "patients", "list", "-q", &query, "--limit", "2", "-o", "json",
            ],
            None,
        )
        .expect(0);
    assert_eq!(page.json().as_array().expect("array").len(), 2);
    assert!(
        page.stderr.contains("--cursor "),
        "tells how to get more: {page:?}"
    );
    let cursor = page
        .stderr
        .trim()
        .rsplit(' ')
        .next()
        .expect("cursor")
        .to_owned();
    let next = pms
        .run(
            &[
                "patients", "list", "-q", &query, "--limit", "2", "--cursor", &cursor, "-o", "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(next.as_array().expect("array").len(), 2);
    let all = pms
        .run(
            &[
                "patients", "list", "-q", &query, "--limit", "2", "--all", "-o", "json",
            ],
            None,
        )
        .expect(0);
    let all = all.json();
    let mut ids: Vec<&str> = all
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 5, "--all follows every Link");
    ids.dedup();
    assert_eq!(ids.len(), 5, "no duplicates");
}
