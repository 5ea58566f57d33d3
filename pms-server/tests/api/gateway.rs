//! The gateway: routing, token checks before forwarding, request ids, limits, docs.

use serde_json::Value;

use pms_proto::rest::Role;

use crate::helpers::spawn_app;

fn is_problem(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        == Some("application/problem+json")
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let app = spawn_app().await;
    let missing = app.client.get(app.url("/nope")).send().await.expect("send");
    assert_eq!(missing.status(), 404);
    assert!(is_problem(&missing));
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["status"], 404);
    assert_eq!(body["title"], "Not Found");

    let wrong_method = app
        .client
        .post(app.url("/docs"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_method.status(), 405);
    assert!(is_problem(&wrong_method));

    let dots = app
        .client
        .get(app.url("/api/patients/%2e%2e/audit"))
        .send()
        .await
        .expect("send");
    assert!(
        dots.status() == 400 || dots.status() == 401,
        "dot segments never reach another route: {}",
        dots.status()
    );
    app.stop().await;
}

#[tokio::test]
async fn protected_routes_need_a_token_at_the_gateway() {
    let app = spawn_app().await;
    for path in [
        "/api/patients",
        "/api/audit",
        "/api/billing/accounts",
        "/auth/users",
        "/auth/me",
    ] {
        let response = app.client.get(app.url(path)).send().await.expect("send");
        assert_eq!(response.status(), 401, "{path}");
        assert!(is_problem(&response), "{path}");
        assert!(
            response.headers().get("www-authenticate").is_some(),
            "{path}: WWW-Authenticate"
        );
        let garbage = app
            .client
            .get(app.url(path))
            .bearer_auth("not.a.jwt")
            .send()
            .await
            .expect("send");
        assert_eq!(garbage.status(), 401, "{path} with a garbage token");
    }
    // Public auth endpoints are reachable without a token.
    let jwks: Value = app
        .client
        .get(app.url("/auth/.well-known/jwks.json"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    app.stop().await;
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let app = spawn_app().await;
    let generated = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .expect("send");
    let id = generated
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id");
    assert_eq!(
        uuid::Uuid::parse_str(id).map(|u| u.get_version_num()),
        Ok(4)
    );

    let token = app.admin_token().await;
    let mine = "req-test-12345";
    let response = app
        .client
        .get(app.url("/api/patients"))
        .bearer_auth(&token)
        .header("x-request-id", mine)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(mine),
        "the service saw and echoed the same id"
    );
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_forwarding() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = format!(
        "{{\"name\":\"{}\"}}",
        "x".repeat(app.settings.http.body_limit_bytes + 1)
    );
    let response = app
        .client
        .post(app.url("/api/patients"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 413);
    assert!(is_problem(&response));
    app.stop().await;
}

#[tokio::test]
async fn api_documents_and_ui_are_served() {
    let app = spawn_app().await;
    for (service, path) in [
        ("auth", "/login"),
        ("patient", "/patients"),
        ("patients", "/patients"),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/api-docs/{service}")))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200, "/api-docs/{service}");
        let doc: Value = response.json().await.expect("json");
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "{service}: OpenAPI 3"
        );
        assert!(
            doc["paths"].get(path).is_some(),
            "{service} documents {path}"
        );
    }
    let unknown = app
        .client
        .get(app.url("/api-docs/nope"))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 404);
    let index: Value = app
        .client
        .get(app.url("/api-docs"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(index["documents"].as_array().is_some_and(|d| d.len() >= 2));
    let ui = app.client.get(app.url("/docs")).send().await.expect("send");
    assert_eq!(ui.status(), 200);
    assert!(
        ui.text()
            .await
            .expect("text")
            .contains("/docs/swagger-init.js")
    );
    // Swagger UI itself is served from the binary; its own index page is not.
    for (asset, status, kind) in [
        ("/docs/assets/swagger-ui-bundle.js", 200, "javascript"),
        ("/docs/assets/swagger-ui.css", 200, "css"),
        ("/docs/assets", 404, "problem+json"),
        ("/docs/assets/oauth2-redirect.html", 404, "problem+json"),
    ] {
        let response = app.client.get(app.url(asset)).send().await.expect("send");
        assert_eq!(response.status(), status, "{asset}");
        let content_type = response.headers()["content-type"].to_str().expect("ascii");
        assert!(content_type.contains(kind), "{asset}: {content_type}");
    }
    // The document list lives in the page's own script (no inline script: see `edge`).
    let init = app
        .client
        .get(app.url("/docs/swagger-init.js"))
        .send()
        .await
        .expect("send");
    // It loads `/api-docs/<name>` for every service (`?api=`), the patient document by default.
    let init = init.text().await.expect("text");
    assert!(init.contains("url: '/api-docs/' + api"), "{init}");
    assert!(
        init.contains("var apis = ['auth', 'patient', 'billing', 'analytics'];"),
        "{init}"
    );
    assert!(init.contains(": 'patient';"), "{init}");
    app.stop().await;
}

#[tokio::test]
async fn the_callers_role_reaches_the_service_through_the_gateway() {
    let app = spawn_app().await;
    let (viewer, _, token) = app.user_with_role(Role::Viewer).await;
    assert_eq!(viewer.role, Role::Viewer);
    let listed = app
        .client
        .get(app.url("/api/patients"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(listed.status(), 200, "viewers may read");
    let created = app
        .client
        .post(app.url("/api/patients"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "V", "email": "v@example.com", "address": "x", "dateOfBirth": "1990-01-01", "registeredDate": "2024-01-01" }))
        .send()
        .await
        .expect("send");
    assert_eq!(created.status(), 403, "viewers may not write");
    assert!(is_problem(&created));
    let me: Value = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "VIEWER");
    app.stop().await;
}
