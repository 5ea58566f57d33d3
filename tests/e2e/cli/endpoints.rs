//! The commands of the endpoints session 4 gave the CLI (issue 13): deleted patients and
//! restore, the audit filters and emails, the auth audit log, analytics registrations and
//! events, `--page-info` paging, and `INV-` numbers wherever an invoice is taken. Each runs the
//! real `pms` against a real server, on both backends (the restore migration differs).
//!
//! Waiting for asynchronous effects (analytics consuming events, billing reopening an account)
//! polls until they show, up to [`PATIENCE`]; no assertion depends on timing.

use std::time::Duration;

use serde_json::Value;

use super::{Backend, Pms, Server, patient_json};

/// How long asynchronous effects (outbox → consumers) may take on a loaded CI machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `pms` with `args` until `done` accepts its JSON output (panics after [`PATIENCE`]).
async fn eventually(pms: &Pms, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let value = pms.run(args, None).expect(0).json();
        if done(&value) {
            return value;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "`pms {}` never showed what was expected; last:\n{value:#}",
            args.join(" ")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn create(pms: &Pms, body: &Value) -> Value {
    pms.run(
        &["patients", "create", "--from-file", "-", "-o", "json"],
        Some(&body.to_string()),
    )
    .expect(0)
    .json()
}

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
        .to_owned()
}

async fn endpoint_commands(backend: Backend) {
    let server = Server::start(backend).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);
    let a = create(&pms, &patient_json("Ada Restored"));
    let b_body = patient_json("Bea Taken");
    let b = create(&pms, &b_body);
    let c = create(&pms, &patient_json("Cy Owing"));
    let (a_mrn, b_mrn, c_mrn) = (text(&a, "mrn"), text(&b, "mrn"), text(&c, "mrn"));

    // --page-info: the items and the next cursor, which continues the list.
    let first = pms
        .run(
            &[
                "patients",
                "list",
                "--limit",
                "2",
                "-o",
                "json",
                "--page-info",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2), "{first}");
    let cursor = text(&first, "next");
    let rest = pms
        .run(
            &[
                "patients",
                "list",
                "--limit",
                "2",
                "--cursor",
                &cursor,
                "-o",
                "json",
                "--page-info",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(rest["items"][0]["mrn"], c_mrn.as_str(), "{rest}");
    assert_eq!(rest["next"], Value::Null);
    let plain = pms
        .run(&["patients", "list", "--limit", "2", "-o", "json"], None)
        .expect(0)
        .json();
    assert!(
        plain.is_array(),
        "the default shape stays an array: {plain}"
    );
    let usage = pms
        .run(&["patients", "list", "--page-info"], None)
        .expect(2);
    assert!(usage.stderr.contains("add -o json"), "{usage:?}");

    // Deleted patients: listed, restored by MRN (same id, next version), gone from the list.
    pms.run(&["patients", "delete", &a_mrn, "--yes"], None)
        .expect(0);
    let deleted = pms
        .run(&["patients", "deleted", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(deleted[0]["mrn"], a_mrn.as_str(), "{deleted}");
    assert_eq!(deleted.as_array().map(Vec::len), Some(1));
    let restored = pms
        .run(
            &["patients", "restore", &a_mrn.to_lowercase(), "-o", "json"],
            None,
        )
        .expect(0);
    assert!(
        restored
            .stderr
            .contains(&format!("Restored patient {a_mrn}")),
        "{restored:?}"
    );
    let restored = restored.json();
    assert_eq!(restored[0]["id"], a["id"]);
    assert_eq!(restored[0]["version"], 3);
    pms.run(&["patients", "get", &a_mrn], None).expect(0);
    let empty = pms
        .run(&["patients", "deleted", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(empty, serde_json::json!([]));
    let history = pms
        .run(&["patients", "history", &a_mrn, "-o", "json"], None)
        .expect(0)
        .json();
    let changes: Vec<&str> = history
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["changeType"].as_str())
        .collect();
    assert_eq!(changes, ["CREATED", "DELETED", "RESTORED"]);
    let again = pms.run(&["patients", "restore", &a_mrn], None).expect(3);
    assert_eq!(
        again.stderr.trim(),
        format!("error: no deleted patient has MRN {a_mrn}")
    );
    // A live patient took the email meanwhile: 409, exit 5.
    pms.run(&["patients", "delete", &b_mrn, "--yes"], None)
        .expect(0);
    create(&pms, &b_body);
    let taken = pms.run(&["patients", "restore", &b_mrn], None).expect(5);
    assert!(taken.stderr.starts_with("error: conflict"), "{taken:?}");

    // The audit log, filtered: actor by email, action, time range; the table names people.
    let restores = pms
        .run(
            &[
                "audit",
                "--actor",
                &server.admin_email.to_uppercase(),
                "--action",
                "patient.restore",
                "--since",
                "1h",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    let mut outcomes: Vec<&str> = restores
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["CONFLICT", "SUCCESS"], "{restores:#}");
    assert!(
        restores
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["action"] == "patient.restore")
    );
    let before = pms
        .run(&["audit", "--until", "2000-01-01", "-o", "json"], None)
        .expect(0)
        .json();
    assert_eq!(before, serde_json::json!([]));
    let table = pms
        .run(&["audit", "--action", "patient.restore"], None)
        .expect(0);
    assert!(table.stdout.contains(&server.admin_email), "{table:?}");
    let page = pms
        .run(
            &["audit", "--limit", "1", "-o", "json", "--page-info"],
            None,
        )
        .expect(0)
        .json();
    let next = text(&page, "next");
    let second = pms
        .run(
            &["audit", "--limit", "1", "--cursor", &next, "-o", "json"],
            None,
        )
        .expect(0)
        .json();
    assert_ne!(second[0]["id"], page["items"][0]["id"]);
    pms.run(&["audit", "--action", "patient.dance"], None)
        .expect(2);

    // The auth audit log.
    let auth = pms
        .run(&["auth", "audit", "--limit", "50", "-o", "json"], None)
        .expect(0)
        .json();
    assert!(
        auth.as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "auth.login" && e["outcome"] == "SUCCESS"),
        "{auth:#}"
    );
    let auth_table = pms.run(&["auth", "audit"], None).expect(0);
    assert!(
        auth_table.stdout.contains(&server.admin_email),
        "{auth_table:?}"
    );

    // Analytics: registrations per bucket; the stored events, paged by `seq`.
    let months = pms
        .run(
            &[
                "analytics",
                "registrations",
                "--from",
                "2026-01-15",
                "--to",
                "2026-03-02",
                "--bucket",
                "month",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    let starts: Vec<&str> = months
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(|b| b["start"].as_str())
        .collect();
    assert_eq!(
        starts,
        ["2026-01-01", "2026-02-01", "2026-03-01"],
        "{months}"
    );
    let restored_event = eventually(
        &pms,
        &[
            "analytics",
            "events",
            "--type",
            "patient_restored",
            "-o",
            "json",
        ],
        |events| events.as_array().is_some_and(|e| !e.is_empty()),
    )
    .await;
    assert_eq!(restored_event[0]["key"], a["id"]);
    let one = pms
        .run(
            &[
                "analytics",
                "events",
                "--limit",
                "1",
                "-o",
                "json",
                "--page-info",
            ],
            None,
        )
        .expect(0)
        .json();
    let after = text(&one, "next");
    assert_eq!(after, one["items"][0]["seq"].to_string());
    let later = pms
        .run(
            &["analytics", "events", "--after", &after, "-o", "json"],
            None,
        )
        .expect(0)
        .json();
    let seq: i64 = after.parse().expect("a sequence number");
    assert!(
        later
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["seq"].as_i64().is_some_and(|s| s > seq)),
        "{later:#}"
    );

    // INV- numbers wherever an invoice is taken.
    let account = pms
        .run(
            &[
                "billing",
                "accounts",
                "list",
                "--patient",
                &c_mrn,
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    let account_id = text(&account[0], "id");
    let invoice = pms
        .run(
            &[
                "billing",
                "invoices",
                "create",
                "--account",
                &account_id,
                "--currency",
                "USD",
                "--line",
                "Consultation:1:50.00",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    let number = text(&invoice, "number");
    let by_number = pms
        .run(
            &[
                "billing",
                "invoices",
                "get",
                &number.to_lowercase(),
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(by_number["id"], invoice["id"]);
    pms.run(
        &["billing", "invoices", "issue", &number, "-o", "json"],
        None,
    )
    .expect(0);
    pms.run(
        &[
            "billing", "invoices", "pay", &number, "--amount", "10.00", "--method", "cash",
        ],
        None,
    )
    .expect(0);
    let payments = pms
        .run(
            &[
                "billing",
                "payments",
                "list",
                "--invoice",
                &number,
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(payments[0]["amount"], 1000);
    let missing = pms
        .run(&["billing", "invoices", "get", "INV-999999"], None)
        .expect(3);
    assert_eq!(
        missing.stderr.trim(),
        "error: no invoice has the number INV-999999"
    );

    // Deleting a patient who owes suspends the account; restoring reopens it.
    // The server says what happens to the balance (`Prefer: return=representation`).
    let deleted_c = pms
        .run(&["patients", "delete", &c_mrn, "--yes"], None)
        .expect(0);
    assert!(
        deleted_c.stderr.contains(
            "still owes 40.00 USD: the patient still owes money: the billing account is suspended"
        ),
        "{deleted_c:?}"
    );
    let c_id = text(&c, "id");
    let accounts = [
        "billing",
        "accounts",
        "list",
        "--patient",
        &c_id,
        "-o",
        "json",
    ];
    eventually(&pms, &accounts, |a| a[0]["status"] == "SUSPENDED").await;
    pms.run(&["patients", "restore", &c_mrn], None).expect(0);
    eventually(&pms, &accounts, |a| a[0]["status"] == "ACTIVE").await;
}

#[tokio::test]
async fn endpoint_commands_on_sqlite() {
    endpoint_commands(Backend::Sqlite).await;
}

#[tokio::test]
async fn endpoint_commands_on_postgres() {
    endpoint_commands(Backend::Postgres).await;
}
