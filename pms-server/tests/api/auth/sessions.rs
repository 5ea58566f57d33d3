//! Sessions: refresh rotation and reuse detection, logout, validate, /me, password changes.

use super::*;
use crate::helpers::{BACKENDS, spawn_app_on};

#[tokio::test]
async fn refresh_rotates_and_reusing_a_spent_token_revokes_the_family() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let first = auth.admin().await;
        let other_session = auth.admin().await;

        let response = auth.refresh(&first.refresh_token).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let second: TokenResponse = response.json().await.expect("tokens");
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_ne!(second.token, first.token);
        assert_eq!(second.token_type, "Bearer");
        assert_eq!(
            auth.fetch("/validate", Some(&second.token)).await.status(),
            200
        );

        // The spent token is refused, and its reuse kills the live successor too.
        let reuse = auth.refresh(&first.refresh_token).await;
        assert_eq!(
            unauthorized(reuse).await.detail.as_deref(),
            Some("invalid or expired refresh token")
        );
        unauthorized(auth.refresh(&second.refresh_token).await).await;
        // Other sessions live on.
        assert_eq!(
            auth.refresh(&other_session.refresh_token).await.status(),
            200
        );
        unauthorized(auth.refresh("not-a-refresh-token").await).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn logout_ends_the_session_and_is_idempotent() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let session = auth.admin().await;
        let body = json!({ "refreshToken": session.refresh_token });
        let response = auth.post("/logout", None, body.clone()).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{backend:?}");
        assert!(response.text().await.expect("body").is_empty());
        unauthorized(auth.refresh(&session.refresh_token).await).await;
        assert_eq!(
            auth.post("/logout", None, body).await.status(),
            StatusCode::NO_CONTENT
        );
        let unknown = json!({ "refreshToken": "never-issued" });
        assert_eq!(
            auth.post("/logout", None, unknown).await.status(),
            StatusCode::NO_CONTENT
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn validate_accepts_valid_bearer_tokens_only() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let token = auth.admin().await.token;
        let response = auth.fetch("/validate", Some(&token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["valid"], true);
        assert_eq!(body["role"], "ADMIN");
        assert_eq!(body["sub"], jwt_parts(&token).1["sub"]);

        unauthorized(auth.fetch("/validate", None).await).await;
        unauthorized(auth.fetch("/validate", Some("not.a.jwt")).await).await;
        let basic = auth
            .get("/validate", None)
            .header("authorization", "Basic YWRtaW46YWRtaW4=");
        unauthorized(basic.send().await.expect("request")).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn me_describes_the_caller() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let (user, password) = auth.create_user(&admin, Role::Billing).await;
        let token = auth.login(&user.email, &password).await.token;
        let response = auth.fetch("/me", Some(&token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let me: Me = response.json().await.expect("me");
        assert_eq!(
            (me.id, me.email.as_str(), me.role),
            (user.id, user.email.as_str(), Role::Billing)
        );
        assert_eq!(
            me.token_expires_at.timestamp(),
            jwt_parts(&token).1["exp"].as_i64().expect("exp")
        );
        unauthorized(auth.fetch("/me", None).await).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn changing_the_password_replaces_it_and_ends_sessions() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let (user, old) = auth.create_user(&admin, Role::Clinician).await;
        let session = auth.login(&user.email, &old).await;
        let change =
            |current: &str, new: &str| json!({ "currentPassword": current, "newPassword": new });

        let wrong = auth
            .post(
                "/me/password",
                Some(&session.token),
                change("not my password", "a brand new password"),
            )
            .await;
        assert_eq!(
            problem(wrong, StatusCode::FORBIDDEN)
                .await
                .detail
                .as_deref(),
            Some("the current password is incorrect"),
            "{backend:?}"
        );
        let short = auth
            .post(
                "/me/password",
                Some(&session.token),
                change(&old, "too short"),
            )
            .await;
        assert_eq!(
            problem(short, StatusCode::BAD_REQUEST).await.errors[0].field,
            "newPassword"
        );
        let same = auth
            .post("/me/password", Some(&session.token), change(&old, &old))
            .await;
        assert_eq!(
            problem(same, StatusCode::BAD_REQUEST).await.errors[0].field,
            "newPassword"
        );
        unauthorized(
            auth.post("/me/password", None, change(&old, "a brand new password"))
                .await,
        )
        .await;

        let response = auth
            .post(
                "/me/password",
                Some(&session.token),
                change(&old, "a brand new password"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        unauthorized(auth.try_login(&user.email, &old).await).await;
        auth.login(&user.email, "a brand new password").await;
        unauthorized(auth.refresh(&session.refresh_token).await).await;
        app.stop().await;
    }
}
