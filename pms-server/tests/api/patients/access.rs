//! Who may do what: roles, the audit trail (and that it holds no field values), 401s, forged
//! tokens, and the public OpenAPI document.

use pms_proto::rest::{AuditEntry, Patient, Role};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::env::{Env, next_link, problem};
use super::{reference_body, unique_email};
use crate::helpers::BACKENDS;

pub(super) async fn roles_are_enforced(env: &Env) {
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

pub(super) async fn admins_see_an_audit_trail_without_field_values(env: &Env) {
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
    let client = if env.believes_forwarded_for() {
        "203.0.113.7"
    } else {
        "127.0.0.1"
    };
    assert_eq!(entries[0].client_ip.as_deref(), Some(client));
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

pub(super) async fn requests_without_a_valid_token_are_unauthorized(env: &Env) {
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

pub(super) async fn the_openapi_document_is_served(env: &Env) {
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
pub(super) async fn expired_and_foreign_tokens_are_refused() {
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

pub(super) async fn lists_and_searches_are_audited_once_per_returned_patient(env: &Env) {
    let tag = Uuid::new_v4().simple().to_string();
    let listed = env
        .create(&reference_body(
            &format!("Listed {tag}"),
            &unique_email("l"),
        ))
        .await;
    let found = env
        .create(&reference_body(
            &format!("Zsearched {tag}"),
            &unique_email("s"),
        ))
        .await;
    let (viewer, _) = env.user(Role::Viewer).await;
    let list = env
        .as_role(Role::Viewer, Method::GET, "/patients?limit=1000")
        .await
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), 200);
    let search = env
        .as_role(Role::Viewer, Method::GET, "/patients?q=zsearched")
        .await
        .send()
        .await
        .expect("search");
    let hits: Vec<Patient> = search.json().await.expect("hits");
    assert_eq!(hits.iter().map(|p| p.id).collect::<Vec<_>>(), [found.id]);

    let reads_of = |entries: &[AuditEntry]| -> Vec<(String, Option<Uuid>, Option<String>)> {
        entries
            .iter()
            .filter(|e| e.action == "patient.list" || e.action == "patient.search")
            .map(|e| (e.action.clone(), e.actor_id, e.actor_role.clone()))
            .collect()
    };
    let viewer_row = |action: &str| (action.to_owned(), Some(viewer), Some("VIEWER".to_owned()));
    let (for_listed, _) = audit_entries(env, listed.id, 100).await;
    assert_eq!(reads_of(&for_listed), [viewer_row("patient.list")]);
    let (for_found, _) = audit_entries(env, found.id, 100).await;
    assert_eq!(
        reads_of(&for_found),
        [viewer_row("patient.search"), viewer_row("patient.list")]
    );
    assert!(
        for_found
            .iter()
            .filter(|e| e.action.starts_with("patient."))
            .all(|e| e.outcome == "SUCCESS" && e.resource == "patient")
    );
}
