//! User management (ADMIN): list, create, read, change role, disable/enable.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use pms_proto::rest::{CreateUserRequest, FieldError, Problem, Role, UpdateUserRequest, User};
use uuid::Uuid;

use super::require_admin;
use crate::auth::AppState;
use crate::auth::model::{Email, Password};
use crate::auth::store::{
    Action, AuditEvent, EMAIL_CONSTRAINT, LAST_ADMIN, NewUser, Outcome, UserChange,
};
use crate::authn::AuthUser;
use crate::error::{ApiError, ResultExt, StoreError};
use crate::http::{ApiJson, ApiPath, RequestMeta};

fn no_such_user() -> ApiError {
    ApiError::NotFound("no such user".to_owned())
}

/// Every user, by email.
#[utoipa::path(
    get, path = "/users", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All users", body = [User]),
        (status = 401, description = "Missing, invalid or expired token", body = Problem),
        (status = 403, description = "Not an ADMIN", body = Problem),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<ApiJson<Vec<User>>, ApiError> {
    require_admin(&caller, "list users")?;
    let users = state.store.list_users().await?;
    Ok(ApiJson(users.iter().map(|u| u.to_api()).collect()))
}

/// Creates a user. Emails are unique regardless of case and stored lowercase.
#[utoipa::path(
    post, path = "/users", tag = "users",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created", body = User,
            headers(("Location" = String, description = "`/auth/users/{id}`"))),
        (status = 400, description = "Invalid email (`email`) or password (`password`: 12–128 characters)", body = Problem),
        (status = 401, description = "Missing, invalid or expired token", body = Problem),
        (status = 403, description = "Not an ADMIN", body = Problem),
        (status = 409, description = "A user with this email exists", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %caller.id, user_id = tracing::field::Empty))]
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    meta: RequestMeta,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<impl IntoResponse, ApiError> {
    require_admin(&caller, "create users")?;
    let email = Email::parse(&req.email).map_err(String::from);
    let password = Password::parse(req.password);
    let (email, password) = match (email, password) {
        (Ok(email), Ok(password)) => (email, password),
        (email, password) => {
            let errors = [("email", email.err()), ("password", password.err())]
                .into_iter()
                .filter_map(|(field, message)| {
                    message.map(|message| FieldError {
                        field: field.to_owned(),
                        message,
                    })
                })
                .collect();
            return Err(ApiError::fields(errors));
        }
    };
    let user = NewUser {
        id: Uuid::now_v7(),
        email,
        password_hash: state.passwords.hash(password.into_secret()).await?,
        role: req.role,
    };
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    let event = AuditEvent::new(Action::UserCreate, Outcome::Success, &meta)
        .by(caller.id, caller.role)
        .about(user.id);
    let created = state
        .store
        .create_user(&user, &event)
        .await
        .on_constraint(EMAIL_CONSTRAINT, || {
            ApiError::Conflict("a user with this email already exists".to_owned())
        })?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/auth/users/{}", created.id))],
        ApiJson(created.to_api()),
    ))
}

/// One user.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, description = "Missing, invalid or expired token", body = Problem),
        (status = 403, description = "Not an ADMIN", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiJson<User>, ApiError> {
    require_admin(&caller, "read users")?;
    let user = state.store.user_by_id(id).await?.ok_or_else(no_such_user)?;
    Ok(ApiJson(user.to_api()))
}

/// Changes a user's role and/or disables or re-enables them. Both revoke the user's access
/// tokens (refused everywhere within seconds); disabling also ends their sessions (refresh
/// tokens), while after a role change the next refresh yields a token with the new role.
///
/// An administrator may not disable or demote themselves (409), so there is always at least one
/// enabled administrator.
#[utoipa::path(
    patch, path = "/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 400, description = "Malformed body or id", body = Problem),
        (status = 401, description = "Missing, invalid or expired token", body = Problem),
        (status = 403, description = "Not an ADMIN", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "Would disable or demote the caller, or leave no enabled ADMIN", body = Problem),
    )
)]
#[tracing::instrument(skip_all, fields(actor_id = %caller.id, user_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    meta: RequestMeta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> Result<ApiJson<User>, ApiError> {
    require_admin(&caller, "change users")?;
    let demotes = req.role.is_some_and(|role| role != Role::Admin);
    if id == caller.id && (demotes || req.disabled == Some(true)) {
        return Err(ApiError::Conflict(
            "administrators cannot disable or demote themselves; ask another administrator"
                .to_owned(),
        ));
    }
    if req.role.is_none() && req.disabled.is_none() {
        // Nothing to change: answer like a read, write nothing.
        let user = state.store.user_by_id(id).await?.ok_or_else(no_such_user)?;
        return Ok(ApiJson(user.to_api()));
    }
    let change = UserChange {
        role: req.role,
        disabled: req.disabled,
    };
    let event = AuditEvent::new(Action::UserUpdate, Outcome::Success, &meta)
        .by(caller.id, caller.role)
        .about(id);
    match state.store.update_user(id, change, &event).await {
        Ok(user) => Ok(ApiJson(user.to_api())),
        Err(StoreError::NotFound) => Err(no_such_user()),
        Err(StoreError::Conflict(name)) if name == LAST_ADMIN => Err(ApiError::Conflict(
            "at least one enabled administrator must remain".to_owned(),
        )),
        Err(other) => Err(other.into()),
    }
}
