//! Login: tokens and claims, indistinguishable failures, failed-login throttling.

use super::*;
use crate::helpers::{BACKENDS, spawn_app_on, spawn_app_with};

#[tokio::test]
async fn login_issues_an_eddsa_token_with_the_expected_claims() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let response = auth
            .try_login(&app.admin_email.to_uppercase(), &app.admin_password)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{backend:?}: email is case-insensitive"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        let tokens: TokenResponse = response.json().await.expect("tokens");
        let ttl = app.settings.auth.access_token_ttl.as_secs();
        assert_eq!(tokens.token_type, "Bearer");
        assert_eq!(tokens.expires_in, ttl);
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&tokens.refresh_token)
                .expect("base64url")
                .len(),
            32
        );

        let (header, claims) = jwt_parts(&tokens.token);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"].as_str().expect("kid").len(), 16);
        assert_eq!(claims["email"], app.admin_email.to_lowercase());
        assert_eq!(claims["role"], "ADMIN");
        assert_eq!(claims["iss"], app.settings.auth.issuer.as_str());
        assert_eq!(claims["aud"], app.settings.auth.audience.as_str());
        let (iat, exp) = (
            claims["iat"].as_i64().expect("iat"),
            claims["exp"].as_i64().expect("exp"),
        );
        assert_eq!(exp - iat, i64::try_from(ttl).expect("ttl"));
        assert!((iat - chrono::Utc::now().timestamp()).abs() < 60);
        claims["jti"]
            .as_str()
            .expect("jti")
            .parse::<Uuid>()
            .expect("jti is a uuid");
        let sub: Uuid = claims["sub"]
            .as_str()
            .expect("sub")
            .parse()
            .expect("sub is a uuid");
        let me: User = auth
            .fetch(&format!("/users/{sub}"), Some(&tokens.token))
            .await
            .json()
            .await
            .expect("user");
        assert_eq!(me.email, app.admin_email.to_lowercase());
        assert_eq!(me.role, Role::Admin);
        app.stop().await;
    }
}

#[tokio::test]
async fn unknown_accounts_wrong_passwords_and_disabled_accounts_look_the_same() {
    for backend in BACKENDS {
        let app = spawn_app_on(backend).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let (user, password) = auth.create_user(&admin, Role::Viewer).await;
        let disabled = auth
            .patch(
                &format!("/users/{}", user.id),
                &admin,
                json!({ "disabled": true }),
            )
            .await;
        assert_eq!(disabled.status(), StatusCode::OK);

        let mut answers = Vec::new();
        for (email, password) in [
            (app.admin_email.as_str(), "wrong password!"),
            ("nobody@pms.test", "wrong password!"),
            ("not an email", "wrong password!"),
            (user.email.as_str(), password.as_str()),
        ] {
            let response = auth.try_login(email, password).await;
            let challenge = response.headers().get(WWW_AUTHENTICATE).cloned();
            answers.push((
                response.status(),
                challenge,
                response.text().await.expect("body"),
            ));
        }
        assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED, "{backend:?}");
        assert!(answers[0].1.is_some());
        let body: Problem = serde_json::from_str(&answers[0].2).expect("problem");
        assert_eq!(body.detail.as_deref(), Some("invalid email or password"));
        for other in &answers[1..] {
            assert_eq!(
                other, &answers[0],
                "{backend:?}: every failure is answered identically"
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_even_for_unknown_accounts() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| s.auth.max_failed_logins_per_account = 3).await;
        let auth = Auth::direct(&app);
        let admin = auth.admin().await.token;
        let (clinician, password) = auth.create_user(&admin, Role::Clinician).await;

        for account in [
            app.admin_email.clone(),
            format!("ghost-{}@pms.test", Uuid::new_v4()),
        ] {
            for _ in 0..3 {
                let response = auth.try_login(&account, "wrong password!").await;
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{backend:?}");
            }
            // Throttled now, even with the right password, and whether or not the account exists.
            let response = auth
                .try_login(&account.to_uppercase(), &app.admin_password)
                .await;
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!(
                (1..=app.settings.auth.throttle_window.as_secs()).contains(&retry_after),
                "{retry_after}"
            );
            let problem = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
            assert!(
                problem
                    .detail
                    .expect("detail")
                    .contains("too many failed logins")
            );
        }

        // Other accounts are unaffected; a success clears the account's failures.
        for _ in 0..2 {
            assert_eq!(
                auth.try_login(&clinician.email, "wrong password!")
                    .await
                    .status(),
                401
            );
        }
        auth.login(&clinician.email, &password).await;
        for _ in 0..3 {
            assert_eq!(
                auth.try_login(&clinician.email, "wrong password!")
                    .await
                    .status(),
                401
            );
        }
        assert_eq!(
            auth.try_login(&clinician.email, &password).await.status(),
            429
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_per_client_ip() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| s.auth.max_failed_logins_per_ip = 3).await;
        let auth = Auth::direct(&app);
        for _ in 0..3 {
            let email = format!("ghost-{}@pms.test", Uuid::new_v4());
            assert_eq!(
                auth.try_login(&email, "wrong password!").await.status(),
                401,
                "{backend:?}"
            );
        }
        let response = auth.try_login(&app.admin_email, &app.admin_password).await;
        assert!(response.headers().contains_key("retry-after"));
        problem(response, StatusCode::TOO_MANY_REQUESTS).await;
        app.stop().await;
    }
}
