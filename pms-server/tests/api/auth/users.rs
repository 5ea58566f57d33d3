//! User management (ADMIN only), disabling, self-lock-out protection and the audit log.

use super::*;
use crate::helpers::{BACKENDS, spawn_app_on};

#[tokio::test]
async fn admins_manage_users_and_nobody_else_can() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let email = format!("Clinician-{}@PMS.test", Uuid::new_v4().simple());
        let body = json!({ "email": format!("  {email} "), "password": "a long enough pw", "role": "CLINICIAN" });
        let response = auth.post("/users", Some(&admin), body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{backend:?}");
        let created: User = {
            let location = response.headers()["location"]
                .to_str()
                .expect("ascii")
                .to_owned();
            let user: User = response.json().await.expect("user");
            assert_eq!(location, format!("/auth/users/{}", user.id));
            user
        };
        assert_eq!(created.email, email.to_lowercase());
        assert_eq!((created.role, created.disabled), (Role::Clinician, false));

        let fetched: User = auth
            .fetch(&format!("/users/{}", created.id), Some(&admin))
            .await
            .json()
            .await
            .expect("user");
        assert_eq!(fetched, created);
        let listed: Vec<User> = auth
            .fetch("/users", Some(&admin))
            .await
            .json()
            .await
            .expect("users");
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&created));

        // Case-insensitive duplicate.
        let dup = json!({ "email": email.to_uppercase(), "password": "another long pw", "role": "VIEWER" });
        let conflict = problem(
            auth.post("/users", Some(&admin), dup).await,
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(
            conflict.detail.as_deref(),
            Some("a user with this email already exists")
        );

        // Field errors name each bad field.
        let bad = json!({ "email": "not-an-email", "password": "short", "role": "VIEWER" });
        let invalid = problem(
            auth.post("/users", Some(&admin), bad).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        let fields: Vec<&str> = invalid.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password"]);
        assert_eq!(invalid.errors[1].message, "must be at least 12 characters");
        let long = json!({ "email": "ok@pms.test", "password": "x".repeat(129), "role": "VIEWER" });
        let invalid = problem(
            auth.post("/users", Some(&admin), long).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(invalid.errors[0].field, "password");

        // Role changes take effect at the next login or refresh.
        let password = "clinician password";
        let body = json!({ "email": "c2-".to_owned() + &Uuid::new_v4().simple().to_string() + "@pms.test", "password": password, "role": "CLINICIAN" });
        let clinician: User = auth
            .post("/users", Some(&admin), body)
            .await
            .json()
            .await
            .expect("user");
        let session = auth.login(&clinician.email, password).await;
        for (path, response) in [
            ("GET /users", auth.fetch("/users", Some(&session.token)).await),
            ("GET /users/{id}", auth.fetch(&format!("/users/{}", created.id), Some(&session.token)).await),
            ("GET /audit", auth.fetch("/audit", Some(&session.token)).await),
            ("POST /users", auth.post("/users", Some(&session.token), json!({ "email": "x@pms.test", "password": "a long enough pw", "role": "ADMIN" })).await),
            ("PATCH /users/{id}", auth.patch(&format!("/users/{}", clinician.id), &session.token, json!({ "role": "ADMIN" })).await),
        ] {
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{backend:?} {path}");
        }
        let promoted = auth
            .patch(
                &format!("/users/{}", clinician.id),
                &admin,
                json!({ "role": "BILLING" }),
            )
            .await;
        assert_eq!(promoted.status(), StatusCode::OK);
        let promoted: User = promoted.json().await.expect("user");
        assert_eq!(promoted.role, Role::Billing);
        assert!(promoted.updated_at >= promoted.created_at);
        let refreshed: TokenResponse = auth
            .refresh(&session.refresh_token)
            .await
            .json()
            .await
            .expect("tokens");
        assert_eq!(jwt_parts(&refreshed.token).1["role"], "BILLING");

        problem(
            auth.fetch(&format!("/users/{}", Uuid::new_v4()), Some(&admin))
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(
            auth.patch(
                &format!("/users/{}", Uuid::new_v4()),
                &admin,
                json!({ "disabled": true }),
            )
            .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(
            auth.fetch("/users/not-a-uuid", Some(&admin)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        unauthorized(auth.fetch("/users", None).await).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn disabled_users_can_neither_log_in_nor_refresh() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let (user, password) = auth.create_user(&admin, Role::Viewer).await;
        let session = auth.login(&user.email, &password).await;

        let response = auth
            .patch(
                &format!("/users/{}", user.id),
                &admin,
                json!({ "disabled": true }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        assert!(response.json::<User>().await.expect("user").disabled);
        unauthorized(auth.try_login(&user.email, &password).await).await;
        unauthorized(auth.refresh(&session.refresh_token).await).await;

        let response = auth
            .patch(
                &format!("/users/{}", user.id),
                &admin,
                json!({ "disabled": false }),
            )
            .await;
        assert!(!response.json::<User>().await.expect("user").disabled);
        auth.login(&user.email, &password).await;
        unauthorized(auth.refresh(&session.refresh_token).await).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn admins_cannot_disable_or_demote_themselves() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let me: Me = auth
            .fetch("/me", Some(&admin))
            .await
            .json()
            .await
            .expect("me");
        let path = format!("/users/{}", me.id);
        for change in [
            json!({ "disabled": true }),
            json!({ "role": "VIEWER" }),
            json!({ "role": "CLINICIAN", "disabled": false }),
        ] {
            let refused = problem(
                auth.patch(&path, &admin, change).await,
                StatusCode::CONFLICT,
            )
            .await;
            assert!(
                refused
                    .detail
                    .expect("detail")
                    .contains("cannot disable or demote themselves"),
                "{backend:?}"
            );
        }
        for harmless in [
            json!({ "role": "ADMIN" }),
            json!({}),
            json!({ "disabled": false }),
        ] {
            let response = auth.patch(&path, &admin, harmless).await;
            assert_eq!(response.status(), StatusCode::OK);
            let user: User = response.json().await.expect("user");
            assert_eq!((user.role, user.disabled), (Role::Admin, false));
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn the_audit_log_records_auth_events_without_secrets() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        assert_eq!(
            auth.try_login(&app.admin_email, "a wrong password")
                .await
                .status(),
            401
        );
        let session = auth.admin().await;
        let admin = session.token.clone();
        let admin_id: Uuid = jwt_parts(&admin).1["sub"]
            .as_str()
            .expect("sub")
            .parse()
            .expect("uuid");
        let (user, _) = auth.create_user(&admin, Role::Viewer).await;
        let rotated: TokenResponse = auth
            .refresh(&session.refresh_token)
            .await
            .json()
            .await
            .expect("tokens");
        unauthorized(auth.refresh(&session.refresh_token).await).await;
        // Reuse detection revoked the whole session, its access tokens included.
        unauthorized(auth.fetch("/audit?limit=10", Some(&rotated.token)).await).await;
        let reader = auth.admin().await.token;

        let response = auth.fetch("/audit?limit=11", Some(&reader)).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend:?}");
        let text = response.text().await.expect("body");
        for secret in [
            app.admin_password.as_str(),
            &session.refresh_token,
            &rotated.refresh_token,
            "argon2",
        ] {
            assert!(
                !text.contains(secret),
                "{backend:?}: the audit log leaks a secret"
            );
        }
        let entries: Vec<AuthAuditEntry> = serde_json::from_str(&text).expect("entries");
        let summary: Vec<(&str, &str, Option<Uuid>)> = entries
            .iter()
            .map(|e| (e.action.as_str(), e.outcome.as_str(), e.subject_user_id))
            .collect();
        assert_eq!(
            summary,
            [
                ("auth.login", "SUCCESS", Some(admin_id)),
                ("auth.refresh_reuse", "DENIED", Some(admin_id)),
                ("auth.refresh", "SUCCESS", Some(admin_id)),
                ("user.create", "SUCCESS", Some(user.id)),
                ("auth.login", "SUCCESS", Some(admin_id)),
                ("auth.login_failed", "FAILED", Some(admin_id)),
                ("user.bootstrap", "SUCCESS", Some(admin_id)),
            ],
            "{backend:?}"
        );
        let create = &entries[3];
        assert_eq!(
            (create.actor_id, create.actor_role),
            (Some(admin_id), Some(Role::Admin))
        );
        assert_eq!(create.client_ip.as_deref(), Some("127.0.0.1"));
        assert!(
            create
                .request_id
                .as_deref()
                .is_some_and(|id| !id.is_empty())
        );

        let one: Vec<AuthAuditEntry> = auth
            .fetch("/audit?limit=1", Some(&reader))
            .await
            .json()
            .await
            .expect("entries");
        assert_eq!(one, entries[..1]);
        app.stop().await;
    }
}
