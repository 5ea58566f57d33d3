//! Token trust (the JWKS, forged tokens), malformed requests, the OpenAPI document and probes.

use super::*;
use crate::helpers::{BACKENDS, spawn_app_on};

#[tokio::test]
async fn the_jwks_publishes_the_signing_key() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let token = auth.admin().await.token;
        let response = auth.fetch("/.well-known/jwks.json", None).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let jwks: Value = response.json().await.expect("jwks");
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 1);
        let key = &keys[0];
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert_eq!(
            (key["alg"].as_str(), key["use"].as_str()),
            (Some("EdDSA"), Some("sig"))
        );
        assert_eq!(key["kid"], jwt_parts(&token).0["kid"]);
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(key["x"].as_str().expect("x"))
                .expect("base64url")
                .len(),
            32
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let (user, password) = auth.create_user(&admin, Role::Viewer).await;
        let token = auth.login(&user.email, &password).await.token;
        let (header, mut claims) = jwt_parts(&token);
        let signature = token.rsplit('.').next().expect("signature");
        claims["role"] = json!("ADMIN");
        let encode =
            |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"));

        // The viewer's signature over an escalated payload.
        let tampered = format!("{}.{}.{signature}", encode(&header), encode(&claims));
        // No signature at all.
        let mut none_header = header.clone();
        none_header["alg"] = json!("none");
        let unsigned = format!("{}.{}.", encode(&none_header), encode(&claims));
        // A valid signature by a key that is not the service's, under the service's kid.
        let pkcs8 =
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .expect("key");
        let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        jwt_header.kid = header["kid"].as_str().map(str::to_owned);
        let foreign = jsonwebtoken::encode(
            &jwt_header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()),
        )
        .expect("sign");

        for (what, forged) in [
            ("tampered", &tampered),
            ("alg none", &unsigned),
            ("foreign key", &foreign),
        ] {
            for path in ["/validate", "/users", "/me"] {
                let response = auth.fetch(path, Some(forged)).await;
                assert_eq!(
                    response.status(),
                    StatusCode::UNAUTHORIZED,
                    "{backend:?} {what} {path}"
                );
                unauthorized(response).await;
            }
        }
        assert_eq!(
            auth.fetch("/validate", Some(&token)).await.status(),
            200,
            "the genuine token works"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn malformed_requests_get_problem_json() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let raw = |path: &str, content_type: &str, body: &str| {
            app.client
                .post(format!("{}{path}", auth.base))
                .bearer_auth(&admin)
                .header(CONTENT_TYPE, content_type)
                .body(body.to_owned())
        };
        for (what, request) in [
            (
                "malformed JSON",
                raw("/login", "application/json", "{\"email\":"),
            ),
            (
                "unknown field",
                raw(
                    "/login",
                    "application/json",
                    r#"{"email":"a@b.c","password":"x","admin":true}"#,
                ),
            ),
            (
                "wrong type",
                raw(
                    "/login",
                    "application/json",
                    r#"{"email":42,"password":"x"}"#,
                ),
            ),
            ("missing field", raw("/refresh", "application/json", "{}")),
            (
                "unknown role",
                raw(
                    "/users",
                    "application/json",
                    r#"{"email":"a@b.c","password":"long enough pw","role":"ROOT"}"#,
                ),
            ),
        ] {
            let response = request.send().await.expect("request");
            let problem = problem(response, StatusCode::BAD_REQUEST).await;
            assert!(problem.detail.is_some(), "{backend:?} {what}");
        }
        let response = raw(
            "/login",
            "text/plain",
            r#"{"email":"a@b.c","password":"x"}"#,
        )
        .send()
        .await
        .expect("request");
        problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        let response = auth.fetch("/audit?limit=0", Some(&admin)).await;
        assert_eq!(
            problem(response, StatusCode::BAD_REQUEST).await.errors[0].field,
            "limit"
        );
        problem(
            auth.fetch("/no-such-endpoint", None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn the_openapi_document_and_the_probes_are_served() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let response = auth.fetch("/openapi.json", None).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let doc: Value = response.json().await.expect("json");
        assert_eq!(doc["info"]["title"], "PMS auth service");
        assert!(doc["paths"]["/login"]["post"].is_object());
        assert!(doc["paths"]["/users/{id}"]["patch"].is_object());
        let ready = auth.fetch("/health/ready", None).await;
        assert_eq!(ready.status(), StatusCode::OK, "{backend:?}");
        assert_eq!(ready.json::<Value>().await.expect("json")["status"], "UP");
        app.stop().await;
    }
}
