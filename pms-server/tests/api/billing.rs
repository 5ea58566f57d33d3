//! Billing API tests over real sockets, on both backends.
//!
//! The billing service runs on its own (`Topology::Billing`, REST and gRPC on port 0) and trusts
//! a test token issuer that serves a JWKS exactly like the auth service does, so these tests do
//! not depend on the auth service or the gateway. The REST scenarios take a base URL and a set of
//! tokens ([`Api`], [`Tokens`]), so the same functions also run through the gateway of the
//! all-in-one app with real users ([`gateway`]).

mod access;
mod all_in_one;
mod events;
mod gateway;
mod grpc;
mod ledger;

use std::net::SocketAddr;

use axum::Json;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pms_proto::rest::Role;
use pms_server::app::{self, Running, Topology};
use pms_server::authn::{Claims, Jwk, Jwks};
use pms_server::config::Settings;
use ring::signature::KeyPair;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{Backend, test_settings};

/// Signs access tokens like the auth service and serves their public key at
/// `{url}/.well-known/jwks.json`.
pub struct Issuer {
    pub url: String,
    kid: String,
    pkcs8: Vec<u8>,
    issuer: String,
    audience: String,
}

impl Issuer {
    pub async fn start(settings: &Settings) -> Issuer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        let kid = Uuid::new_v4().to_string();
        let jwks = Jwks {
            keys: vec![Jwk::ed25519(&kid, pair.public_key().as_ref())],
        };
        let router = axum::Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move { Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Issuer {
            url,
            kid,
            pkcs8: pkcs8.as_ref().to_vec(),
            issuer: settings.auth.issuer.clone(),
            audience: settings.auth.audience.clone(),
        }
    }

    /// A fresh user with `role` and a valid access token: `(user id, token)`.
    pub fn user(&self, role: Role) -> (Uuid, String) {
        let now = chrono::Utc::now().timestamp();
        let id = Uuid::new_v4();
        let claims = Claims {
            sub: id,
            email: format!("{}@pms.test", id.simple()),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + 600,
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&self.pkcs8))
            .expect("sign");
        (id, token)
    }

    pub fn tokens(&self) -> Tokens {
        Tokens {
            admin: self.user(Role::Admin).1,
            billing: self.user(Role::Billing).1,
            clinician: self.user(Role::Clinician).1,
            viewer: self.user(Role::Viewer).1,
        }
    }
}

/// One access token per role.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub admin: String,
    pub billing: String,
    pub clinician: String,
    pub viewer: String,
}

/// A billing service started alone, with its token issuer.
pub struct BillingApp {
    pub api: Api,
    pub grpc_addr: SocketAddr,
    pub issuer: Issuer,
    pub tokens: Tokens,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_billing(backend: Backend) -> BillingApp {
    if std::env::var_os("TEST_LOG").is_some() {
        pms_server::telemetry::init_logging(&Settings::default().log);
    }
    pms_server::telemetry::init_metrics();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(backend, dir.path()).await;
    settings.billing.port = 0;
    settings.billing.grpc_port = 0;
    let issuer = Issuer::start(&settings).await;
    settings.auth.url = issuer.url.parse().expect("a URL");
    let running = app::start(Topology::Billing, settings, CancellationToken::new())
        .await
        .expect("billing starts");
    let rest = running.billing.expect("billing REST address");
    BillingApp {
        api: Api::new(format!("http://{rest}")),
        grpc_addr: running.billing_grpc.expect("billing gRPC address"),
        tokens: issuer.tokens(),
        issuer,
        running: Some(running),
        _dir: dir,
    }
}

impl BillingApp {
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean stop");
        }
    }
}

/// A response: status, headers and JSON body (`Null` if none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// The billing REST API at `base` (`http://billing` directly, `http://gateway/api` through the
/// gateway): `{base}/billing/...`.
#[derive(Debug, Clone)]
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

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(self.client.get(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(
            self.client
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn post_keyed(&self, path: &str, token: &str, key: &str, body: Value) -> Reply {
        let request = self.client.post(self.url(path)).bearer_auth(token);
        self.send(request.header("Idempotency-Key", key).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(
            self.client
                .patch(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    /// Creates (or finds) the account of a new random patient through REST; returns its JSON.
    pub async fn new_account(&self, token: &str) -> Value {
        let patient = Uuid::new_v4();
        let reply = self
            .post("/billing/accounts", token, json!({ "patientId": patient }))
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body
    }

    /// A DRAFT invoice with one line per price, in USD.
    pub async fn new_invoice(&self, token: &str, account: &str, prices: &[i64]) -> Value {
        let lines: Vec<Value> = prices
            .iter()
            .map(|p| json!({ "description": format!("Item {p}"), "quantity": 1, "unitPrice": p }))
            .collect();
        let reply = self
            .post(
                &format!("/billing/accounts/{account}/invoices"),
                token,
                json!({ "currency": "USD", "lines": lines }),
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body
    }

    /// An ISSUED invoice of `total`.
    pub async fn issued_invoice(&self, token: &str, account: &str, total: i64) -> Value {
        let draft = self.new_invoice(token, account, &[total]).await;
        let id = draft["id"].as_str().expect("id");
        let reply = self
            .post(&format!("/billing/invoices/{id}/issue"), token, json!(null))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body
    }

    pub async fn pay(&self, token: &str, invoice: &str, amount: i64) -> Reply {
        self.post(
            &format!("/billing/invoices/{invoice}/payments"),
            token,
            json!({ "amount": amount, "method": "CARD", "reference": "slip-1" }),
        )
        .await
    }
}

/// The string at `key` of a JSON object.
pub fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {value}"))
}
