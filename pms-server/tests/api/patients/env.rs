//! Where the patient API tests run, and where their tokens come from.
//!
//! - [`Env::standalone`]: the patient service alone, verifying tokens against a stub auth server
//!   that only publishes a JWKS; the tests mint tokens with its private key. Needs nothing but
//!   the patient service, and can forge expired or foreign-key tokens.
//! - [`Env::full_app`]: the whole all-in-one app; tokens come from real logins at the auth
//!   service. Requests go straight to the patient service for now; once the gateway routes
//!   `/api/patients*` and `/api/audit`, switch `origin`/`prefix` to the gateway and `/api`.
//!
//! Tests only see `url()`, `follow()` (for `Link`/`Location` paths, which are gateway paths),
//! `token()` and the request helpers, so they run unchanged on both.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pms_proto::rest::{Patient, Problem, Role, TokenResponse};
use pms_server::authn::{Claims, Jwk, Jwks};
use reqwest::{Method, RequestBuilder, Response};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, spawn_app_on, test_settings};

/// A running patient service and a way to get tokens for it.
pub struct Env {
    origin: String,
    prefix: &'static str,
    pub client: reqwest::Client,
    tokens: Tokens,
    cache: Mutex<HashMap<Role, (Uuid, String)>>,
}

enum Tokens {
    Minted(Arc<Minter>),
    Auth { app: Box<TestApp>, auth: String },
}

/// Signs tokens the way the auth service does, with a key the service under test trusts.
pub struct Minter {
    key: EncodingKey,
    kid: String,
    issuer: String,
    audience: String,
    _stop: DropGuard,
    _dir: tempfile::TempDir,
}

impl Minter {
    /// A token for user `sub` with `role`, valid for `ttl_secs` (negative: already expired).
    pub fn mint(&self, sub: Uuid, role: Role, ttl_secs: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub,
            email: format!("{}@pms.test", sub.simple()),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl_secs,
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign token")
    }
}

fn ed25519_key() -> (EncodingKey, Vec<u8>) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate key");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key pair");
    (
        EncodingKey::from_ed_der(pkcs8.as_ref()),
        pair.public_key().as_ref().to_vec(),
    )
}

async fn serve(router: Router, stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = stop.clone();
    tokio::spawn(async move { pms_server::http::serve(listener, router, stop).await });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl Env {
    /// The patient service alone, trusting a stub auth server's key.
    pub async fn standalone(backend: Backend) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = test_settings(backend, dir.path()).await;
        let stop = CancellationToken::new();
        let (key, public) = ed25519_key();
        let kid = format!("test-{}", Uuid::new_v4().simple());
        let jwks = Jwks {
            keys: vec![Jwk::ed25519(&kid, &public)],
        };
        let stub_auth = Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        settings.auth.url = serve(stub_auth, &stop).await.parse().expect("a URL");
        let router = pms_server::patient::build(&settings, &stop)
            .await
            .expect("patient service builds");
        let origin = serve(router, &stop).await;
        let minter = Minter {
            key,
            kid,
            issuer: settings.auth.issuer.clone(),
            audience: settings.auth.audience.clone(),
            _stop: stop.drop_guard(),
            _dir: dir,
        };
        Env {
            origin,
            prefix: "",
            client: client(),
            tokens: Tokens::Minted(Arc::new(minter)),
            cache: Mutex::new(HashMap::new()),
        }
        .ready()
        .await
    }

    /// The whole app, with tokens from real logins at its auth service.
    pub async fn full_app(backend: Backend) -> Env {
        let app = spawn_app_on(backend).await;
        Env {
            origin: format!("http://{}", app.patient_addr),
            prefix: "",
            client: client(),
            tokens: Tokens::Auth {
                auth: format!("http://{}", app.auth_addr),
                app: Box::new(app),
            },
            cache: Mutex::new(HashMap::new()),
        }
        .ready()
        .await
    }

    /// Asserts the patient service is ready (database up, auth's signing keys loaded), as an
    /// orchestrator would before sending it traffic.
    async fn ready(self) -> Env {
        let response = self
            .client
            .get(format!("{}/health/ready", self.origin))
            .send()
            .await
            .expect("readiness probe");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        self
    }

    /// Whether the service believes this test process's `X-Forwarded-For`: standalone, the
    /// process is on loopback, a trusted proxy network; in the all-in-one app it talks to an
    /// internal listener directly, which believes only its own gateway.
    pub fn believes_forwarded_for(&self) -> bool {
        matches!(self.tokens, Tokens::Minted(_))
    }

    /// The token minter, in the standalone environment only.
    pub fn minter(&self) -> Option<Arc<Minter>> {
        match &self.tokens {
            Tokens::Minted(minter) => Some(Arc::clone(minter)),
            Tokens::Auth { .. } => None,
        }
    }

    /// URL of a service path (`/patients/…`, `/audit`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.origin, self.prefix)
    }

    /// URL of a path the API hands out (`Location`, `Link`), which names the gateway's `/api/…`.
    pub fn follow(&self, api_path: &str) -> String {
        let path = api_path
            .strip_prefix("/api")
            .unwrap_or_else(|| panic!("{api_path} is not an /api path"));
        self.url(path)
    }

    /// A valid access token of a user with `role` (the same user per role and environment).
    pub async fn token(&self, role: Role) -> String {
        self.user(role).await.1
    }

    /// Id and token of the test user with `role`.
    pub async fn user(&self, role: Role) -> (Uuid, String) {
        if let Some(user) = self.cache.lock().await.get(&role) {
            return user.clone();
        }
        let user = match &self.tokens {
            Tokens::Minted(minter) => {
                let id = Uuid::new_v4();
                (id, minter.mint(id, role, 600))
            }
            Tokens::Auth { app, auth } => self.log_in_as(app, auth, role).await,
        };
        self.cache.lock().await.insert(role, user.clone());
        user
    }

    async fn log_in_as(&self, app: &TestApp, auth: &str, role: Role) -> (Uuid, String) {
        let login = |email: String, password: String| async move {
            let response = self
                .client
                .post(format!("{auth}/login"))
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .expect("login request");
            assert_eq!(response.status(), 200, "login at the auth service");
            response.json::<TokenResponse>().await.expect("token").token
        };
        let admin = login(app.admin_email.clone(), app.admin_password.clone()).await;
        if role == Role::Admin {
            return (subject(&admin), admin);
        }
        let email = format!(
            "{}-{}@pms.test",
            role.as_str().to_lowercase(),
            Uuid::new_v4().simple()
        );
        let password = format!("pw-{}", Uuid::new_v4().simple());
        let response = self
            .client
            .post(format!("{auth}/users"))
            .bearer_auth(&admin)
            .json(&json!({ "email": email, "password": password, "role": role }))
            .send()
            .await
            .expect("create user");
        assert_eq!(response.status(), 201, "create {role} user");
        let token = login(email, password).await;
        (subject(&token), token)
    }

    /// A request as a user with `role`.
    pub async fn as_role(&self, role: Role, method: Method, path: &str) -> RequestBuilder {
        let token = self.token(role).await;
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Creates a patient as ADMIN; asserts 201 and returns it.
    pub async fn create(&self, body: &Value) -> Patient {
        let response = self
            .as_role(Role::Admin, Method::POST, "/patients")
            .await
            .json(body)
            .send()
            .await
            .expect("create patient");
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let mut patient: Patient = response.json().await.expect("patient body");
        // The billing account id is in the create response only, and only when billing answered:
        // the whole app runs billing; the standalone service's billing address is closed.
        let billed = matches!(self.tokens, Tokens::Auth { .. });
        assert_eq!(
            patient.billing_account_id.is_some(),
            billed,
            "billingAccountId in the create response"
        );
        patient.billing_account_id = None;
        patient
    }

    /// Every patient of a listing, following `Link` headers from `first` (a service path).
    pub async fn list_all(&self, role: Role, first: &str) -> (Vec<Patient>, Vec<usize>) {
        let token = self.token(role).await;
        let mut url = self.url(first);
        let (mut all, mut sizes) = (Vec::new(), Vec::new());
        loop {
            let response = self
                .client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("list");
            assert_eq!(response.status(), 200, "GET {url}");
            let next = next_link(&response);
            let page: Vec<Patient> = response.json().await.expect("patients");
            sizes.push(page.len());
            all.extend(page);
            match next {
                Some(path) => url = self.follow(&path),
                None => return (all, sizes),
            }
        }
    }
}

/// The `sub` (user id) of an access token, read without verification (the service verifies).
fn subject(token: &str) -> Uuid {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url payload"),
    )
    .expect("JSON claims");
    claims["sub"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("sub is a UUID")
}

/// The path of a `Link: <path>; rel="next"` header.
pub fn next_link(response: &Response) -> Option<String> {
    let link = response
        .headers()
        .get("link")?
        .to_str()
        .expect("ascii link");
    let path = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("malformed Link header: {link}"));
    Some(path.to_owned())
}

/// Asserts an RFC 9457 problem with `status` and returns it.
pub async fn problem(response: Response, status: u16) -> Problem {
    let got = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.expect("body");
    assert_eq!(got, status, "{body}");
    assert_eq!(content_type, "application/problem+json", "{body}");
    let problem: Problem = serde_json::from_str(&body).expect("problem body");
    assert_eq!(problem.status, status);
    problem
}

/// The `field`s of a 400 problem's errors.
pub async fn bad_fields(response: Response) -> Vec<String> {
    let problem = problem(response, 400).await;
    problem.errors.into_iter().map(|e| e.field).collect()
}
