//! The auth service's API (DESIGN §6), on SQLite and on PostgreSQL.
//!
//! Every request goes through [`Auth`], which takes a base URL: for now the auth service itself
//! (`http://{app.auth_addr}`, paths as the service serves them); once the gateway routes `/auth/*`
//! the same tests can run against `{app.base}/auth`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pms_proto::rest::{AuthAuditEntry, Me, PROBLEM_JSON, Problem, Role, TokenResponse, User};
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

mod hardening;
mod hashing;
mod login;
mod sessions;
mod tokens;
mod users;

/// A client of the auth API at one base URL.
struct Auth<'a> {
    app: &'a TestApp,
    base: String,
}

impl<'a> Auth<'a> {
    /// The auth service, called directly.
    fn direct(app: &'a TestApp) -> Auth<'a> {
        Auth {
            app,
            base: format!("http://{}", app.auth_addr),
        }
    }

    /// The auth API through the gateway, as clients (and proxies in front of it) reach it.
    fn through_gateway(app: &'a TestApp) -> Auth<'a> {
        Auth {
            app,
            base: format!("{}/auth", app.base),
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.app.client.get(format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> RequestBuilder {
        let request = self
            .app
            .client
            .request(method, format!("{}{path}", self.base))
            .json(&body);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.send_json(reqwest::Method::POST, path, token, body)
            .send()
            .await
            .expect("request")
    }

    async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.send_json(reqwest::Method::PATCH, path, Some(token), body)
            .send()
            .await
            .expect("request")
    }

    async fn fetch(&self, path: &str, token: Option<&str>) -> Response {
        self.get(path, token).send().await.expect("request")
    }

    async fn try_login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/login",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    async fn login(&self, email: &str, password: &str) -> TokenResponse {
        let response = self.try_login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {email}");
        response.json().await.expect("token response")
    }

    async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/refresh", None, json!({ "refreshToken": refresh_token }))
            .await
    }

    async fn admin(&self) -> TokenResponse {
        self.login(&self.app.admin_email, &self.app.admin_password)
            .await
    }

    /// Creates a user with `role` as the admin; returns it and its password.
    async fn create_user(&self, admin: &str, role: Role) -> (User, String) {
        let email = format!(
            "{}-{}@pms.test",
            role.as_str().to_lowercase(),
            Uuid::new_v4().simple()
        );
        let password = format!("pw-{}", Uuid::new_v4().simple());
        let response = self
            .post(
                "/users",
                Some(admin),
                json!({ "email": email, "password": password, "role": role }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        (response.json().await.expect("user"), password)
    }
}

/// Asserts `status` and a problem+json body, and returns the problem.
async fn problem(response: Response, status: StatusCode) -> Problem {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_JSON);
    let problem: Problem = response.json().await.expect("problem body");
    assert_eq!(problem.status, status.as_u16());
    problem
}

/// Asserts a 401 with a `WWW-Authenticate: Bearer` challenge.
async fn unauthorized(response: Response) -> Problem {
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("ascii").to_owned());
    if status != StatusCode::UNAUTHORIZED || challenge.is_none() {
        // Say what came instead of a 401 (a rare failure under full-suite load lacked the header).
        let body = response.text().await.unwrap_or_default();
        panic!("expected a 401 with a Bearer challenge, got {status} ({challenge:?}): {body}");
    }
    assert!(
        challenge.is_some_and(|c| c.starts_with("Bearer")),
        "401 must challenge"
    );
    problem(response, StatusCode::UNAUTHORIZED).await
}

/// The JSON of a JWT's header and payload (unverified).
fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode = || {
        let part = parts.next().expect("jwt part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
    };
    (decode(), decode())
}
