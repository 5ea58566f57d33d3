//! Golden tests: the `-o json` / `-o csv` / table output of every record type is compared with
//! files under `output/golden/`. The JSON shapes are a public contract: a change here is a
//! breaking change for scripts. `PMS_UPDATE_GOLDEN=1 cargo test -p pms-cli` rewrites the files
//! (then review the diff).

use super::shapes::{AuthStatus, EventLine};
use super::*;
use chrono::{NaiveDate, TimeZone, Utc};
use pms_proto::rest::{AuditEntry, Me, Patient, PatientVersion, Role, Sex, User};
use uuid::Uuid;

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/output/golden")
        .join(name);
    if std::env::var_os("PMS_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

fn at(h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 11, 28, h, 30, 0).unwrap()
}

fn patients() -> Vec<Patient> {
    vec![
        Patient {
            id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001),
            mrn: "MRN-000001".into(),
            name: "Jane Doe".into(),
            email: "jane@example.com".into(),
            address: "1 Main St, Springfield".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1990, 4, 1).unwrap(),
            registered_date: NaiveDate::from_ymd_opt(2024, 11, 28).unwrap(),
            phone: Some("+1 555 0100".into()),
            sex: Some(Sex::Female),
            created_at: at(9),
            updated_at: at(10),
            version: 2,
            billing_account_id: None,
        },
        Patient {
            id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002),
            mrn: "MRN-000002".into(),
            name: "John \"Jack\" Roe".into(),
            email: "jack@example.com".into(),
            address: "2 Side St".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1985, 12, 31).unwrap(),
            registered_date: NaiveDate::from_ymd_opt(2024, 11, 28).unwrap(),
            phone: None,
            sex: None,
            created_at: at(11),
            updated_at: at(11),
            version: 1,
            billing_account_id: None,
        },
    ]
}

const PLAIN_TABLE: Style = Style {
    format: Format::Table,
    color: false,
    width: None,
    columns: None,
};
const JSON: Style = Style {
    format: Format::Json,
    color: false,
    width: None,
    columns: None,
};
const CSV: Style = Style {
    format: Format::Csv,
    color: false,
    width: None,
    columns: None,
};

#[test]
fn patient_list_in_every_format() {
    let list = patients();
    golden("patients.json", &super::list(&list, JSON).unwrap());
    golden("patients.csv", &super::list(&list, CSV).unwrap());
    golden("patients.txt", &super::list(&list, PLAIN_TABLE).unwrap());
    let wide = Style {
        format: Format::Wide,
        ..PLAIN_TABLE
    };
    golden("patients-wide.txt", &super::list(&list, wide).unwrap());
    // On a 60-column terminal the default table shortens cells with `…`; wide never does.
    let narrow_terminal = Style {
        width: Some(60),
        ..PLAIN_TABLE
    };
    golden(
        "patients-60.txt",
        &super::list(&list, narrow_terminal).unwrap(),
    );
    let wide_terminal = Style {
        width: Some(40),
        ..wide
    };
    assert_eq!(
        super::list(&list, wide_terminal).unwrap(),
        super::list(&list, wide).unwrap()
    );
    let picked: &'static [String] = Box::leak(Box::new(["name".into(), "MRN".into()]));
    let columns = Style {
        columns: Some(picked),
        ..PLAIN_TABLE
    };
    assert_eq!(
        super::list(&list, columns).unwrap(),
        "NAME             MRN\nJane Doe         MRN-000001\nJohn \"Jack\" Roe  MRN-000002\n"
    );
    let csv_columns = Style {
        columns: Some(picked),
        ..CSV
    };
    assert_eq!(
        super::list(&list, csv_columns).unwrap(),
        "name,mrn\r\nJane Doe,MRN-000001\r\n\"John \"\"Jack\"\" Roe\",MRN-000002\r\n"
    );
    golden("patient.txt", &super::one(&list[0], PLAIN_TABLE).unwrap());
    golden("patient.json", &super::one(&list[0], JSON).unwrap());
}

#[test]
fn empty_lists_are_valid_json_and_csv() {
    let none: Vec<Patient> = Vec::new();
    assert_eq!(super::list(&none, JSON).unwrap(), "[]\n");
    assert!(super::list(&none, CSV).unwrap().starts_with("id,mrn,name"));
}

#[test]
fn history_users_me_audit_shapes() {
    let p = patients().remove(0);
    let history = vec![PatientVersion {
        version: 1,
        change_type: "CREATED".into(),
        changed_at: at(9),
        changed_by: Some(Uuid::from_u128(7)),
        patient: p,
    }];
    golden("history.json", &super::list(&history, JSON).unwrap());
    let users = vec![User {
        id: Uuid::from_u128(8),
        email: "clinician@pms.test".into(),
        role: Role::Clinician,
        disabled: false,
        created_at: at(8),
        updated_at: at(8),
    }];
    golden("users.json", &super::list(&users, JSON).unwrap());
    golden("users.txt", &super::list(&users, PLAIN_TABLE).unwrap());
    let me = Me {
        id: Uuid::from_u128(9),
        email: "admin@pms.test".into(),
        role: Role::Admin,
        token_expires_at: at(12),
    };
    golden("me.json", &super::one(&me, JSON).unwrap());
    let audit = vec![AuditEntry {
        id: Uuid::from_u128(10),
        occurred_at: at(9),
        actor_id: Some(Uuid::from_u128(9)),
        actor_role: Some("ADMIN".into()),
        action: "patient.create".into(),
        resource: "patient".into(),
        patient_id: Some(Uuid::from_u128(1)),
        outcome: "SUCCESS".into(),
        client_ip: Some("127.0.0.1".into()),
        request_id: Some("req-1".into()),
    }];
    golden("audit.json", &super::list(&audit, JSON).unwrap());
    golden("audit.csv", &super::list(&audit, CSV).unwrap());
}

#[test]
fn cli_shapes() {
    let status = AuthStatus {
        profile: "default".into(),
        server: "http://127.0.0.1:4004".into(),
        logged_in: true,
        source: Some("keyring".into()),
        store: Some("secret-service".into()),
        store_path: None,
        email: Some("admin@pms.test".into()),
        role: Some(Role::Admin),
        access_token_expires_at: Some(at(12)),
        verified: Some(true),
    };
    golden("auth-status.json", &super::one(&status, JSON).unwrap());
    golden(
        "auth-status.txt",
        &super::one(&status, PLAIN_TABLE).unwrap(),
    );
    let line = EventLine {
        id: Some("42".into()),
        kind: "PATIENT_CREATED".into(),
        data: serde_json::json!({"patientId": "0193", "occurredAt": "2024-11-28T09:30:00Z"}),
    };
    assert_eq!(
        json_line(&line).unwrap(),
        "{\"id\":\"42\",\"type\":\"PATIENT_CREATED\",\"data\":{\"occurredAt\":\"2024-11-28T09:30:00Z\",\"patientId\":\"0193\"}}\n"
    );
}

#[test]
fn values_flatten_for_tables() {
    let v =
        serde_json::json!({"patients": {"total": 3, "active": 2}, "buckets": [1, 2], "note": null});
    assert_eq!(
        value(&v, PLAIN_TABLE).unwrap(),
        "buckets[0]       1\nbuckets[1]       2\nnote             \npatients.active  2\npatients.total   3\n"
    );
    assert_eq!(
        value(&v, CSV).unwrap(),
        "key,value\r\nbuckets[0],1\r\nbuckets[1],2\r\nnote,\r\npatients.active,2\r\npatients.total,3\r\n"
    );
}

#[test]
fn colour_only_when_asked() {
    let users: Vec<User> = Vec::new();
    let plain = super::list(&users, PLAIN_TABLE).unwrap();
    assert!(!plain.contains('\x1b'));
    let coloured = super::list(
        &users,
        Style {
            color: true,
            ..PLAIN_TABLE
        },
    )
    .unwrap();
    assert!(coloured.starts_with("\x1b[1mEMAIL"), "{coloured:?}");
}

#[test]
fn csv_quotes_what_needs_quoting() {
    let out = csv(
        &["a", "b"],
        vec![vec!["x,y".into(), "say \"hi\"\nbye".into()]].into_iter(),
    );
    assert_eq!(out, "a,b\r\n\"x,y\",\"say \"\"hi\"\"\nbye\"\r\n");
}

#[test]
fn csv_neutralizes_cells_a_spreadsheet_would_run_as_formulas() {
    for (cell, written) in [
        ("=1+2", "'=1+2"),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tx", "'\tx"),
        ("\rx", "\"'\rx\""),
        (
            "=HYPERLINK(\"http://x\",\"y\")",
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
        ),
        ("a=1", "a=1"),
        ("", ""),
    ] {
        let out = csv(&["c"], std::iter::once(vec![cell.to_owned()]));
        assert_eq!(out, format!("c\r\n{written}\r\n"), "{cell:?}");
    }
    // Through a whole list, as `pms patients list -o csv` writes it.
    let mut list = patients();
    list[0].name = "=1+2".into();
    list[0].address = "@evil".into();
    list[1].name = "-cmd|' /C calc'!A0".into();
    list[1].email = "+x@example.com".into();
    let out = super::list(&list, CSV).unwrap();
    golden("patients-formulas.csv", &out);
    for line in out.lines().skip(1) {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?} in {line:?}"
            );
        }
    }
}
