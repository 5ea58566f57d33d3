//! Deleted patients: the listing and restore (roles, outcomes), and what `DELETE` says about the
//! billing account with `Prefer: return=representation`.

use pms_proto::rest::{AccountStatus, Patient, PatientDeletion, Role};
use reqwest::Method;

use super::env::{Env, problem};
use super::{reference_body, unique_email};

pub(super) async fn deleted_patients_are_listed_and_restored_by_writers(env: &Env) {
    let email = unique_email("restore");
    let patient = env.create(&reference_body("Restore Me", &email)).await;
    let path = format!("/patients/{}", patient.id);
    let restore = format!("{path}/restore");
    // Restoring a live patient: no deleted patient has this id.
    let live = env
        .as_role(Role::Admin, Method::POST, &restore)
        .await
        .send()
        .await
        .expect("restore live");
    problem(live, 404).await;

    // Without `Prefer`: 204 as before; with it, the patient as deleted and its account.
    let plain = env
        .as_role(Role::Clinician, Method::DELETE, &path)
        .await
        .send()
        .await
        .expect("delete");
    assert_eq!(plain.status(), 204);
    for reader in [Role::Viewer, Role::Billing, Role::Clinician, Role::Admin] {
        let deleted: Vec<Patient> = env
            .as_role(
                reader,
                Method::GET,
                "/patients/deleted?q=restore%20me&limit=1000",
            )
            .await
            .send()
            .await
            .expect("list deleted")
            .json()
            .await
            .expect("patients");
        assert!(deleted.iter().any(|p| p.id == patient.id), "{reader}");
    }
    for role in [Role::Viewer, Role::Billing] {
        let response = env
            .as_role(role, Method::POST, &restore)
            .await
            .send()
            .await
            .expect("restore");
        problem(response, 403).await;
    }
    let stale = env
        .as_role(Role::Clinician, Method::POST, &restore)
        .await
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect("stale restore");
    problem(stale, 412).await;
    let restored = env
        .as_role(Role::Clinician, Method::POST, &restore)
        .await
        .header("if-match", "\"2\"")
        .send()
        .await
        .expect("restore");
    assert_eq!(restored.status(), 200);
    assert_eq!(
        restored.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("\"3\"")
    );
    let restored: Patient = restored.json().await.expect("patient");
    assert_eq!(
        (restored.id, &restored.mrn, restored.version),
        (patient.id, &patient.mrn, 3)
    );

    let with_body = env
        .as_role(Role::Admin, Method::DELETE, &path)
        .await
        .header("prefer", "return=representation")
        .send()
        .await
        .expect("delete");
    assert_eq!(with_body.status(), 200);
    assert_eq!(
        with_body
            .headers()
            .get("preference-applied")
            .and_then(|v| v.to_str().ok()),
        Some("return=representation")
    );
    let deletion: PatientDeletion = with_body.json().await.expect("deletion");
    assert_eq!(
        (deletion.patient.id, deletion.patient.version),
        (patient.id, 4)
    );
    if env.minter().is_some() {
        // The patient service alone: billing's address is closed, so nothing is known.
        assert_eq!(deletion.billing, None);
    } else {
        let billing = deletion.billing.expect("billing answered");
        assert_eq!(
            (billing.balance, billing.status),
            (0, AccountStatus::Closed)
        );
        assert!(billing.note.contains("closed"), "{}", billing.note);
    }
    // A live patient took the email: 409.
    env.create(&reference_body("Took The Email", &email)).await;
    let taken = env
        .as_role(Role::Admin, Method::POST, &restore)
        .await
        .send()
        .await
        .expect("restore");
    problem(taken, 409).await;
}
