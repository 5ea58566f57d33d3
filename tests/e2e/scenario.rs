//! The checks every topology must pass, through the gateway: auth behaviour, the full patient
//! lifecycle, bad input and bad tokens.

use base64::Engine;
use serde_json::{Value, json};

pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: String) -> Api {
        Api {
            base,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("login");
        assert_eq!(
            response.status(),
            200,
            "login: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("json")
    }
}

fn assert_problem(response: &reqwest::Response, status: u16, context: &str) {
    assert_eq!(response.status(), status, "{context}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(
        content_type, "application/problem+json",
        "{context}: content type"
    );
}

/// Reference-system auth behaviour plus token hygiene.
pub async fn auth_checks(api: &Api, admin_email: &str, admin_password: &str) -> String {
    let tokens = api.login(admin_email, admin_password).await;
    let token = tokens["token"].as_str().expect("token").to_owned();
    assert!(
        tokens["refreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(tokens["tokenType"], "Bearer");
    assert!(
        tokens["expiresIn"]
            .as_u64()
            .is_some_and(|s| s > 0 && s <= 900)
    );

    let wrong = api
        .client
        .post(api.url("/auth/login"))
        .json(&json!({ "email": admin_email, "password": "wrong-password-123" }))
        .send()
        .await
        .expect("send");
    assert_problem(&wrong, 401, "wrong password");
    let wrong_body: Value = wrong.json().await.expect("json");
    let unknown = api
        .client
        .post(api.url("/auth/login"))
        .json(&json!({ "email": "nobody@pms.test", "password": "wrong-password-123" }))
        .send()
        .await
        .expect("send");
    assert_problem(&unknown, 401, "unknown user");
    let unknown_body: Value = unknown.json().await.expect("json");
    assert_eq!(
        wrong_body, unknown_body,
        "unknown user and wrong password must be indistinguishable"
    );

    let valid = api
        .client
        .get(api.url("/auth/validate"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(valid.status(), 200);
    let invalid = api
        .client
        .get(api.url("/auth/validate"))
        .bearer_auth("garbage")
        .send()
        .await
        .expect("send");
    assert_eq!(invalid.status(), 401);

    // Forged tokens: alg none, tampered payload.
    for (what, forged) in forged_tokens(&token) {
        for path in ["/api/patients", "/auth/validate"] {
            let response = api
                .client
                .get(api.url(path))
                .bearer_auth(&forged)
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 401, "{what} token at {path}");
            assert!(
                response.headers().contains_key("www-authenticate"),
                "{what}: WWW-Authenticate"
            );
        }
    }
    token
}

/// Tokens that must never be accepted, derived from a valid one.
pub fn forged_tokens(valid: &str) -> Vec<(&'static str, String)> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = valid.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    let mut payload: Value =
        serde_json::from_slice(&b64.decode(parts[1]).expect("b64")).expect("claims");
    payload["role"] = json!("ADMIN");
    payload["sub"] = json!(uuid::Uuid::new_v4());
    let tampered_payload = b64.encode(serde_json::to_vec(&payload).expect("json"));
    let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    vec![
        (
            "tampered",
            format!("{}.{}.{}", parts[0], tampered_payload, parts[2]),
        ),
        ("alg-none", format!("{none_header}.{}.", parts[1])),
        ("unsigned", format!("{}.{}.", parts[0], parts[1])),
    ]
}

/// Create, read, list, update (ETag/If-Match), delete, history and audit of one patient, plus
/// bad input. Returns nothing: every step asserts.
pub async fn patient_lifecycle(api: &Api, token: &str) {
    let email = format!("jane.{}@example.com", uuid::Uuid::new_v4().simple());
    // The reference system's create body, unchanged.
    let created = api
        .client
        .post(api.url("/api/patients"))
        .bearer_auth(token)
        .json(&json!({ "name": "Jane Doe", "email": email, "address": "1 Main St", "dateOfBirth": "1990-04-01", "registeredDate": "2024-11-28" }))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201, "create");
    let location = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_owned();
    let patient: Value = created.json().await.expect("json");
    let id = patient["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/api/patients/{id}"));
    assert_eq!(patient["name"], "Jane Doe");
    assert_eq!(patient["email"], email.as_str());
    assert_eq!(patient["dateOfBirth"], "1990-04-01");
    assert!(patient["mrn"].as_str().is_some_and(|m| !m.is_empty()));

    let duplicate = api
        .client
        .post(api.url("/api/patients"))
        .bearer_auth(token)
        .json(&json!({ "name": "Jane Again", "email": email.to_uppercase(), "address": "2 Main St", "dateOfBirth": "1990-04-01", "registeredDate": "2024-11-28" }))
        .send()
        .await
        .expect("duplicate");
    assert_problem(&duplicate, 409, "duplicate email (case-insensitive)");

    let got = api
        .client
        .get(api.url(&location))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), 200);
    let etag = got
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("ETag")
        .to_owned();
    let got: Value = got.json().await.expect("json");
    assert_eq!(
        got,
        patient
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.remove("billingAccountId");
                Value::Object(o)
            })
            .expect("object")
    );

    let listed: Vec<Value> = api
        .client
        .get(api.url("/api/patients?q=jane"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("array");
    assert!(
        listed.iter().any(|p| p["id"] == id.as_str()),
        "search finds the patient"
    );

    let update = json!({ "name": "Jane Q. Doe", "email": email, "address": "3 Side St", "dateOfBirth": "1990-04-01" });
    let updated = api
        .client
        .put(api.url(&location))
        .bearer_auth(token)
        .header("if-match", &etag)
        .json(&update)
        .send()
        .await
        .expect("update");
    assert_eq!(updated.status(), 200, "update with If-Match");
    let updated: Value = updated.json().await.expect("json");
    assert_eq!(updated["name"], "Jane Q. Doe");
    assert_eq!(
        updated["registeredDate"], "2024-11-28",
        "registeredDate kept when omitted"
    );
    assert_eq!(
        updated["version"].as_i64(),
        patient["version"].as_i64().map(|v| v + 1)
    );

    let stale = api
        .client
        .put(api.url(&location))
        .bearer_auth(token)
        .header("if-match", &etag)
        .json(&update)
        .send()
        .await
        .expect("stale");
    assert_problem(&stale, 412, "stale If-Match");

    bad_input(api, token).await;

    let deleted = api
        .client
        .delete(api.url(&location))
        .bearer_auth(token)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let gone = api
        .client
        .get(api.url(&location))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_problem(&gone, 404, "deleted patient");

    let history: Vec<Value> = api
        .client
        .get(api.url(&format!("{location}/history")))
        .bearer_auth(token)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("array");
    let kinds: Vec<&str> = history
        .iter()
        .filter_map(|v| v["changeType"].as_str())
        .collect();
    assert_eq!(kinds, ["CREATED", "UPDATED", "DELETED"]);

    let audit: Vec<Value> = api
        .client
        .get(api.url(&format!("/api/audit?patientId={id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("array");
    let actions: Vec<&str> = audit.iter().filter_map(|v| v["action"].as_str()).collect();
    for action in [
        "patient.create",
        "patient.read",
        "patient.update",
        "patient.delete",
    ] {
        assert!(actions.contains(&action), "audit has {action}: {actions:?}");
    }
    assert!(
        !serde_json::to_string(&audit)
            .expect("json")
            .contains(&email),
        "audit rows never contain field values"
    );
}

async fn bad_input(api: &Api, token: &str) {
    let post = |body: reqwest::Body, content_type: &'static str| {
        api.client
            .post(api.url("/api/patients"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let before: Vec<Value> = api
        .client
        .get(api.url("/api/patients?limit=1000"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("array");

    let malformed = post("{\"name\": ".into(), "application/json")
        .await
        .expect("send");
    assert_problem(&malformed, 400, "malformed JSON");
    let unknown = post(r#"{"name":"A","email":"a@b.co","address":"x","dateOfBirth":"1990-01-01","registeredDate":"2024-01-01","isAdmin":true}"#.into(), "application/json").await.expect("send");
    assert_problem(&unknown, 400, "unknown field");
    let wrong_type = post(r#"{"name":42,"email":"a@b.co","address":"x","dateOfBirth":"1990-01-01","registeredDate":"2024-01-01"}"#.into(), "application/json").await.expect("send");
    assert_problem(&wrong_type, 400, "wrong type");
    let not_json = post("name=x".into(), "application/x-www-form-urlencoded")
        .await
        .expect("send");
    assert_problem(&not_json, 415, "not JSON");
    let huge = post(
        format!("{{\"name\":\"{}\"}}", "x".repeat(2 * 1024 * 1024)).into(),
        "application/json",
    )
    .await
    .expect("send");
    assert_problem(&huge, 413, "oversized body");

    let invalid = post(r#"{"name":"","email":"not-an-email","address":"x","dateOfBirth":"2024-02-30","registeredDate":"2999-01-01"}"#.into(), "application/json").await.expect("send");
    assert_problem(&invalid, 400, "invalid fields");
    let problem: Value = invalid.json().await.expect("json");
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["dateOfBirth", "email", "name", "registeredDate"]);

    // SQL-looking input is data, stored verbatim.
    let sql_email = format!("x{}@example.com", uuid::Uuid::new_v4().simple());
    let sql = api
        .client
        .post(api.url("/api/patients"))
        .bearer_auth(token)
        .json(&json!({ "name": "Robert'); DROP TABLE patients;--", "email": sql_email, "address": "' OR 1=1 --", "dateOfBirth": "1990-01-01", "registeredDate": "2024-01-01" }))
        .send()
        .await
        .expect("send");
    assert_eq!(sql.status(), 201);
    let stored: Value = sql.json().await.expect("json");
    assert_eq!(stored["name"], "Robert'); DROP TABLE patients;--");

    let after: Vec<Value> = api
        .client
        .get(api.url("/api/patients?limit=1000"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("array");
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only the valid patient was stored"
    );
}
