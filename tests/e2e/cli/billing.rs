//! `pms billing …` against the real billing service: the JSON shapes, idempotent money moves
//! with `--idempotency-key`, the statement, and the exit codes of refused operations.

use super::{Backend, Pms, Server, keys};

async fn billing_flow(backend: Backend) {
    let server = Server::start(backend).await;
    let pms = Pms::new();
    pms.login(&server).expect(0);
    let email = format!("biller-{}@example.com", uuid::Uuid::new_v4().simple());
    let patient = pms
        .run(
            &[
                "patients",
                "create",
                "--name",
                "Bill Payer",
                "--email",
                &email,
                "--address",
                "1 Ledger Lane",
                "--dob",
                "1980-02-29",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    let patient_id = patient["id"].as_str().expect("id");
    // Human ids: the MRN names the patient, an email the user.
    let mrn = patient["mrn"].as_str().expect("mrn");
    let by_mrn = pms
        .run(
            &["patients", "get", &mrn.to_lowercase(), "-o", "json"],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(by_mrn["id"], patient_id);
    let no_such = pms
        .run(&["patients", "history", "MRN-999999999"], None)
        .expect(3);
    assert_eq!(
        no_such.stderr.trim(),
        "error: no patient has MRN MRN-999999999"
    );
    let admin = pms
        .run(
            &[
                "users",
                "get",
                &server.admin_email.to_uppercase(),
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(admin["email"], server.admin_email.as_str());

    // The account comes with the patient; `create` returns the existing one.
    let account = pms
        .run(
            &[
                "billing",
                "accounts",
                "create",
                "--patient",
                patient_id,
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(
        keys(&account),
        [
            "balance",
            "createdAt",
            "currency",
            "id",
            "patientId",
            "status",
            "updatedAt"
        ]
    );
    assert_eq!(account["status"], "ACTIVE");
    let account_id = account["id"].as_str().expect("id").to_owned();
    let listed = pms
        .run(
            &[
                "billing",
                "accounts",
                "list",
                "--patient",
                mrn,
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(listed[0]["id"], account_id.as_str());

    let invoice = pms
        .run(
            &[
                "billing",
                "invoices",
                "create",
                "--account",
                &account_id,
                "--currency",
                "usd",
                "--line",
                "Consultation:1:50.00",
                "--line",
                "X-ray: chest:2:12.5",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(
        keys(&invoice),
        [
            "accountId",
            "balance",
            "createdAt",
            "currency",
            "dueDate",
            "id",
            "issuedAt",
            "lines",
            "number",
            "paid",
            "status",
            "total",
            "voidedAt"
        ]
    );
    assert_eq!(
        (invoice["status"].as_str(), invoice["total"].as_i64()),
        (Some("DRAFT"), Some(7500))
    );
    assert_eq!(invoice["lines"][1]["description"], "X-ray: chest");
    assert_eq!(
        keys(&invoice["lines"][0]),
        ["amount", "description", "quantity", "unitPrice"]
    );
    let invoice_id = invoice["id"].as_str().expect("id").to_owned();

    let issued = pms
        .run(
            &["billing", "invoices", "issue", &invoice_id, "-o", "json"],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(issued["status"], "ISSUED");
    let again = pms
        .run(&["billing", "invoices", "issue", &invoice_id], None)
        .expect(5);
    assert!(again.stderr.starts_with("error: conflict"), "{again:?}");

    // The same idempotency key pays once, however often it is sent.
    let key = format!("pay-{invoice_id}");
    let pay = [
        "billing",
        "invoices",
        "pay",
        &invoice_id,
        "--amount",
        "30.00",
        "--method",
        "card",
        "--idempotency-key",
        &key,
        "-o",
        "json",
    ];
    let first = pms.run(&pay, None).expect(0).json();
    let second = pms.run(&pay, None).expect(0).json();
    assert_eq!(first["id"], second["id"], "replayed, not paid twice");
    assert_eq!(
        keys(&first),
        [
            "accountId",
            "amount",
            "currency",
            "id",
            "invoiceId",
            "method",
            "receivedAt",
            "reference",
            "refunded"
        ]
    );
    let payments = pms
        .run(
            &[
                "billing",
                "payments",
                "list",
                "--invoice",
                &invoice_id,
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(payments.as_array().expect("array").len(), 1);
    let payment_id = first["id"].as_str().expect("id").to_owned();
    pms.run(
        &["billing", "payments", "get", &payment_id, "-o", "json"],
        None,
    )
    .expect(0);

    let overpay = pms
        .run(
            &[
                "billing",
                "invoices",
                "pay",
                &invoice_id,
                "--amount",
                "999999",
                "--method",
                "cash",
            ],
            None,
        )
        .expect(5);
    assert!(overpay.stderr.starts_with("error: rejected"), "{overpay:?}");

    let refund = pms
        .run(
            &[
                "billing",
                "payments",
                "refund",
                &payment_id,
                "--amount",
                "5",
                "--reason",
                "goodwill",
                "--yes",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(
        keys(&refund),
        [
            "amount",
            "createdAt",
            "currency",
            "id",
            "invoiceId",
            "paymentId",
            "reason"
        ]
    );

    let statement = pms
        .run(
            &[
                "billing",
                "accounts",
                "statement",
                &account_id,
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(
        keys(&statement),
        [
            "accountId",
            "balance",
            "currency",
            "entries",
            "invoiced",
            "paid",
            "refunded"
        ]
    );
    assert_eq!(
        (
            statement["invoiced"].as_i64(),
            statement["paid"].as_i64(),
            statement["refunded"].as_i64(),
            statement["balance"].as_i64()
        ),
        (Some(7500), Some(3000), Some(500), Some(5000))
    );
    assert_eq!(statement["entries"].as_array().expect("entries").len(), 3);
    let table = pms
        .run(&["billing", "accounts", "statement", &account_id], None)
        .expect(0)
        .stdout;
    assert!(table.contains("Invoiced:  75.00 USD\n"), "{table}");
    assert!(table.contains("Balance:   50.00 USD\n"), "{table}");
    let invoice_table = pms
        .run(&["billing", "invoices", "get", &invoice_id], None)
        .expect(0)
        .stdout;
    assert!(
        invoice_table.contains("total:     75.00\n"),
        "{invoice_table}"
    );
    // More decimals than the currency has is a usage error, before anything is sent.
    let cents = pms
        .run(
            &[
                "billing",
                "invoices",
                "pay",
                &invoice_id,
                "--amount",
                "1.005",
                "--method",
                "cash",
            ],
            None,
        )
        .expect(2);
    assert_eq!(
        cents.stderr.trim(),
        "error: --amount: USD has 2 decimal places: `1.005`"
    );

    let draft = pms
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
                "Mistake:1:1.00",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    let voided = pms
        .run(
            &[
                "billing",
                "invoices",
                "void",
                draft["id"].as_str().expect("id"),
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(voided["status"], "VOID");
    let listed = pms
        .run(
            &[
                "billing",
                "invoices",
                "list",
                "--account",
                &account_id,
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(listed.as_array().expect("array").len(), 2);

    let suspended = pms
        .run(
            &[
                "billing",
                "accounts",
                "update",
                &account_id,
                "--status",
                "suspended",
                "-o",
                "json",
            ],
            None,
        )
        .expect(0)
        .json();
    assert_eq!(suspended["status"], "SUSPENDED");
    pms.run(
        &[
            "billing",
            "invoices",
            "create",
            "--account",
            &account_id,
            "--currency",
            "USD",
            "--line",
            "No:1:100",
        ],
        None,
    )
    .expect(5);

    let audit = pms
        .run(
            &["billing", "audit", "--account", &account_id, "-o", "json"],
            None,
        )
        .expect(0)
        .json();
    assert!(!audit.as_array().expect("array").is_empty());
    assert_eq!(
        keys(&audit[0]),
        [
            "accountId",
            "action",
            "actorId",
            "actorRole",
            "amount",
            "clientIp",
            "id",
            "occurredAt",
            "outcome",
            "patientId",
            "requestId",
            "resource",
            "resourceId"
        ]
    );
    let missing = uuid::Uuid::new_v4().to_string();
    let gone = pms
        .run(&["billing", "invoices", "get", &missing], None)
        .expect(3);
    assert_eq!(
        gone.stderr.trim(),
        format!("error: invoice {missing} not found")
    );
    pms.run(
        &[
            "billing",
            "invoices",
            "create",
            "--account",
            &account_id,
            "--currency",
            "USD",
        ],
        None,
    )
    .expect(2);
    // Three letters are not a currency: refused by the CLI (exit 2) and by the server (400).
    let made_up = pms
        .run(
            &[
                "billing",
                "invoices",
                "create",
                "--account",
                &account_id,
                "--currency",
                "XYZ",
                "--line",
                "X:1:1",
            ],
            None,
        )
        .expect(2);
    assert!(
        made_up.stderr.contains("`XYZ` is not an ISO 4217 currency"),
        "{made_up:?}"
    );
}

#[tokio::test]
async fn billing_commands_on_sqlite() {
    billing_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn billing_commands_on_postgres() {
    billing_flow(Backend::Postgres).await;
}
