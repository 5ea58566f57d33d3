//! The auth service's HTTP API, as served by the service (the gateway maps `/auth/*` here with the
//! prefix stripped), and its OpenAPI document.

mod audit;
mod keys;
mod me;
mod session;
mod users;

use axum::Router;
use axum::routing::{get, post};
use pms_proto::rest::{Problem, Role};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::AppState;
use crate::authn::AuthUser;
use crate::error::ApiError;
use crate::http::ApiJson;
use crate::openapi::Conventions;

/// The router of every endpoint (without the common layers).
pub(super) fn router(state: AppState) -> Router {
    Router::new()
        .route("/login", post(session::login))
        .route("/refresh", post(session::refresh))
        .route("/logout", post(session::logout))
        .route("/validate", get(session::validate))
        .route("/.well-known/jwks.json", get(session::jwks))
        .route("/me", get(me::me))
        .route("/me/password", post(me::change_password))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::get).patch(users::update))
        .route("/audit", get(audit::list))
        .route("/keys/rotate", post(keys::rotate))
        .route("/revocations", get(keys::revocations))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PMS auth service",
        description = "Login, EdDSA access tokens and their JWKS, rotating refresh tokens, users \
                       and the auth audit log. Behind the gateway every path is under `/auth`."
    ),
    paths(
        session::login,
        session::refresh,
        session::logout,
        session::validate,
        session::jwks,
        me::me,
        me::change_password,
        users::list,
        users::create,
        users::get,
        users::update,
        audit::list,
        keys::rotate,
        keys::revocations,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth, &Conventions),
    tags(
        (name = "session", description = "Login, token refresh and logout"),
        (name = "users", description = "User accounts (ADMIN), and one's own account"),
        (name = "audit", description = "The auth audit log (ADMIN)"),
        (name = "keys", description = "Signing-key rotation and token revocation"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
    }
}

/// `GET /openapi.json`.
async fn openapi() -> ApiJson<utoipa::openapi::OpenApi> {
    ApiJson(ApiDoc::openapi())
}

/// 403 unless the caller is an ADMIN.
fn require_admin(caller: &AuthUser, what: &str) -> Result<(), ApiError> {
    caller.require(&[Role::Admin], what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_endpoint() {
        crate::openapi::assert_conventions(&ApiDoc::openapi());
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/login",
            "/refresh",
            "/logout",
            "/validate",
            "/.well-known/jwks.json",
            "/me",
            "/me/password",
            "/users",
            "/users/{id}",
            "/audit",
            "/keys/rotate",
            "/revocations",
        ] {
            assert!(
                paths.contains_key(path),
                "{path} missing from the OpenAPI document"
            );
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["schemas"]["TokenResponse"].is_object());
    }
}
