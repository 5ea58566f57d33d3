//! Every exit code of `pms` from a real server (and from no server at all), each with its one
//! actionable line on stderr and nothing on stdout.

use super::{Backend, Pms, Server, dead_server, patient_json};

#[tokio::test]
async fn every_exit_code() {
    let server = Server::start(Backend::Sqlite).await;
    let pms = Pms::new();

    // 2: usage.
    let unknown = pms.run(&["patients", "list", "--bogus"], None).expect(2);
    assert!(unknown.stderr.contains("--bogus"), "{unknown:?}");
    let bad_id = pms.run(&["patients", "get", "not-a-uuid"], None).expect(2);
    assert!(
        bad_id.stderr.contains("is not a patient: pass its MRN"),
        "{bad_id:?}"
    );
    let no_tty = pms
        .run(&["login", "--server", &server.base], None)
        .expect(2);
    assert!(
        no_tty.stderr.contains("pass --email"),
        "never prompts without a terminal: {no_tty:?}"
    );
    let no_password = pms
        .run(
            &["login", "--server", &server.base, "--email", "a@b.test"],
            None,
        )
        .expect(2);
    assert!(
        no_password.stderr.contains("--password-stdin"),
        "{no_password:?}"
    );

    // 4: not logged in, wrong password, forbidden.
    let anonymous = pms.run(&["patients", "list"], None).expect(4);
    assert_eq!(
        anonymous.stderr.trim(),
        format!(
            "error: not logged in (profile `{}`): run `pms login` (or set PMS_TOKEN)",
            pms.profile
        )
    );
    let wrong = pms
        .run(
            &[
                "login",
                "--server",
                &server.base,
                "--email",
                &server.admin_email,
                "--password-stdin",
            ],
            Some("wrong-password-123\n"),
        )
        .expect(4);
    assert!(
        wrong.stderr.starts_with("error: not authenticated"),
        "{wrong:?}"
    );
    pms.login(&server).expect(0);
    let viewer_email = format!("viewer-{}@pms.test", uuid::Uuid::new_v4().simple());
    pms.run(
        &[
            "users",
            "create",
            "--email",
            &viewer_email,
            "--role",
            "VIEWER",
            "--password-stdin",
        ],
        Some("viewer-password-1\n"),
    )
    .expect(0);
    let mut viewer = Pms::new();
    viewer.set("PMS_TOKEN_STORE", "file");
    viewer
        .run(
            &[
                "login",
                "--server",
                &server.base,
                "--email",
                &viewer_email,
                "--password-stdin",
            ],
            Some("viewer-password-1\n"),
        )
        .expect(0);
    let forbidden = viewer
        .run(
            &["patients", "create", "--from-file", "-"],
            Some(&patient_json("Nope").to_string()),
        )
        .expect(4);
    assert!(
        forbidden.stderr.starts_with("error: forbidden"),
        "{forbidden:?}"
    );

    // 3: not found.
    let missing_id = uuid::Uuid::new_v4();
    let missing = pms
        .run(&["patients", "get", &missing_id.to_string()], None)
        .expect(3);
    assert_eq!(
        missing.stderr.trim(),
        format!("error: patient {missing_id} not found")
    );
    pms.run(
        &["patients", "delete", &missing_id.to_string(), "--yes"],
        None,
    )
    .expect(3);
    // Deleting asks first; without a terminal to ask on, --yes is required.
    let unconfirmed = pms
        .run(&["patients", "delete", &missing_id.to_string()], None)
        .expect(2);
    assert!(
        unconfirmed.stderr.contains("Pass --yes to confirm"),
        "{unconfirmed:?}"
    );
    pms.run(&["users", "get", &missing_id.to_string()], None)
        .expect(3);

    // 5: validation, conflict, precondition.
    let invalid = pms
        .run(
            &[
                "patients",
                "create",
                "--name",
                "X",
                "--email",
                "not-an-email",
                "--address",
                "1 Main",
                "--dob",
                "2999-01-01",
            ],
            None,
        )
        .expect(5);
    assert!(
        invalid.stderr.starts_with("error: invalid request"),
        "{invalid:?}"
    );
    assert!(
        invalid.stderr.contains("email") && invalid.stderr.contains("dateOfBirth"),
        "names the fields: {invalid:?}"
    );
    assert_eq!(invalid.stderr.lines().count(), 1, "{invalid:?}");
    let body = patient_json("Dupe Dan");
    let created = pms
        .run(
            &["patients", "create", "--from-file", "-", "-o", "json"],
            Some(&body.to_string()),
        )
        .expect(0)
        .json();
    let conflict = pms
        .run(
            &["patients", "create", "--from-file", "-"],
            Some(&body.to_string()),
        )
        .expect(5);
    assert!(
        conflict.stderr.starts_with("error: conflict"),
        "{conflict:?}"
    );
    let id = created["id"].as_str().expect("id");
    let stale = pms
        .run(
            &[
                "patients",
                "update",
                id,
                "--name",
                "Late",
                "--if-match",
                "7",
            ],
            None,
        )
        .expect(5);
    assert!(
        stale.stderr.starts_with("error: precondition failed"),
        "{stale:?}"
    );
    assert!(stale.stderr.contains("fetch it again"), "{stale:?}");
    // A version that is no version is a usage error, not a conflict.
    let garbled = pms
        .run(
            &[
                "patients",
                "update",
                id,
                "--name",
                "Late",
                "--if-match",
                "abc",
            ],
            None,
        )
        .expect(2);
    assert!(garbled.stderr.contains("is not a version"), "{garbled:?}");
    let bad_sort = pms
        .run(&["patients", "list", "--sort", "bogus"], None)
        .expect(2);
    assert!(bad_sort.stderr.contains("createdAt"), "{bad_sort:?}");
    // Several ids: each is reported, a missing one does not stop the others (exit 3).
    let missing = uuid::Uuid::new_v4().to_string();
    let doomed = pms
        .run(
            &["patients", "create", "--from-file", "-", "-o", "json"],
            Some(&patient_json("Doomed").to_string()),
        )
        .expect(0)
        .json();
    let doomed = doomed["id"].as_str().expect("id");
    let several = pms
        .run(&["patients", "delete", &missing, doomed, "--yes"], None)
        .expect(3);
    assert!(
        several
            .stderr
            .contains(&format!("error: patient {missing} not found\n")),
        "{several:?}"
    );
    assert!(
        several
            .stderr
            .contains(&format!("Deleted patient {doomed}.")),
        "{several:?}"
    );
    assert!(
        several
            .stderr
            .trim_end()
            .ends_with("error: 1 of 2 patients were not deleted (see above)"),
        "{several:?}"
    );
    pms.run(&["patients", "update", id], None).expect(2);

    // 6: unreachable.
    let mut offline = Pms::new();
    offline
        .set("PMS_SERVER", dead_server())
        .set("PMS_TOKEN", "x");
    let down = offline.run(&["patients", "list"], None).expect(6);
    assert!(down.stderr.contains("cannot reach"), "{down:?}");
    assert!(
        down.stderr.to_lowercase().contains("connection refused"),
        "{down:?}"
    );

    // 1: a failed request-file assertion.
    let file = tempfile::Builder::new()
        .suffix(".http")
        .tempfile()
        .expect("temp");
    std::fs::write(
        file.path(),
        "GET {{baseUrl}}/api/patients\nAuthorization: Bearer {{token}}\n\n?? status == 418\n",
    )
    .expect("write");
    let failed = pms
        .run(&["request", &file.path().to_string_lossy()], None)
        .expect(1);
    assert!(failed.stdout.contains("0 passed, 1 failed"), "{failed:?}");
    assert!(
        failed.stdout.contains("?? status == 418  (actual: 200)"),
        "{failed:?}"
    );

    // 0, and the exit-code table itself.
    let help = pms.run(&["help", "exit-codes"], None).expect(0);
    for code in 0..=6 {
        assert!(help.stdout.contains(&format!("\n  {code}  ")), "{help:?}");
    }
    for all in [pms.files(), viewer.files()] {
        assert!(
            all.iter()
                .all(|f| f == "config.toml" || f.starts_with("sessions/")),
            "{all:?}"
        );
    }
}
