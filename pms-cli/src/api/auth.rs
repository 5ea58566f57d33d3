//! Auth endpoints (`/auth/*`): login, logout, who am I, users (ADMIN), own password, the auth
//! audit log (ADMIN).

use pms_proto::rest::{
    AuthAuditEntry, ChangePasswordRequest, CreateUserRequest, LoginRequest, Me, RefreshRequest,
    TokenResponse, UpdateUserRequest, User,
};
use reqwest::Method;
use uuid::Uuid;

use super::{ApiClient, ApiRequest};
use crate::error::Result;

impl ApiClient {
    /// `POST /auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Result<TokenResponse> {
        let request = ApiRequest::new(Method::POST, "/auth/login").json(&LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
        });
        self.send_unauthenticated(request).await?.json().await
    }

    /// `POST /auth/logout`: revokes the refresh token (and its family) on the server.
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let request = ApiRequest::new(Method::POST, "/auth/logout").json(&RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        });
        self.send_unauthenticated(request).await?;
        Ok(())
    }

    /// `GET /auth/me`: who the token belongs to.
    pub async fn me(&self) -> Result<Me> {
        self.send(ApiRequest::new(Method::GET, "/auth/me"))
            .await?
            .json()
            .await
    }

    /// `POST /auth/me/password`.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<()> {
        let request =
            ApiRequest::new(Method::POST, "/auth/me/password").json(&ChangePasswordRequest {
                current_password: current.to_owned(),
                new_password: new.to_owned(),
            });
        self.send(request).await?;
        Ok(())
    }

    /// `GET /auth/users` (ADMIN).
    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.send(ApiRequest::new(Method::GET, "/auth/users"))
            .await?
            .json()
            .await
    }

    /// `GET /auth/users/{id}` (ADMIN).
    pub async fn get_user(&self, id: Uuid) -> Result<User> {
        self.send(
            ApiRequest::new(Method::GET, format!("/auth/users/{id}")).about(format!("user {id}")),
        )
        .await?
        .json()
        .await
    }

    /// `POST /auth/users` (ADMIN).
    pub async fn create_user(&self, request: &CreateUserRequest) -> Result<User> {
        self.send(ApiRequest::new(Method::POST, "/auth/users").json(request))
            .await?
            .json()
            .await
    }

    /// `GET /auth/audit` (ADMIN): recent auth events, newest first (at most `limit`, 1–1000).
    pub async fn auth_audit(&self, limit: Option<u32>) -> Result<Vec<AuthAuditEntry>> {
        let mut request = ApiRequest::new(Method::GET, "/auth/audit");
        if let Some(limit) = limit {
            request = request.query("limit", limit);
        }
        self.send(request).await?.json().await
    }

    /// Every user's email by id (ADMIN), to show people instead of ids.
    pub async fn user_emails(&self) -> Result<std::collections::HashMap<Uuid, String>> {
        Ok(self
            .list_users()
            .await?
            .into_iter()
            .map(|u| (u.id, u.email))
            .collect())
    }

    /// `PATCH /auth/users/{id}` (ADMIN): role and/or disabled.
    pub async fn update_user(&self, id: Uuid, request: &UpdateUserRequest) -> Result<User> {
        self.send(
            ApiRequest::new(Method::PATCH, format!("/auth/users/{id}"))
                .json(request)
                .about(format!("user {id}")),
        )
        .await?
        .json()
        .await
    }
}

/// The `exp` claim of a JWT, read without verifying it (display only: the server decides).
pub fn jwt_expiry(token: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    chrono::DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn reads_exp_without_verifying() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!(
            "{}.{}.sig",
            b64.encode(br#"{"alg":"EdDSA"}"#),
            b64.encode(br#"{"sub":"x","exp":1900000000}"#)
        );
        assert_eq!(jwt_expiry(&token).unwrap().timestamp(), 1_900_000_000);
        assert_eq!(jwt_expiry("garbage"), None);
        assert_eq!(jwt_expiry("a.b.c"), None);
    }
}
