//! Development fixtures (`pms-server --ephemeral --fixtures reference`): the reference system's
//! test account, `testuser@test.com` / `password123` (ADMIN), so its request files and
//! integration scenarios run unchanged. That password breaks our password rules (12 characters,
//! not a common password); it is created here, around those rules, for throwaway instances only:
//! [`crate::config::Settings::check_fixtures`] refuses fixtures without `--ephemeral`.

use anyhow::Context;
use pms_proto::rest::Role;
use secrecy::SecretString;
use uuid::Uuid;

use crate::auth::model::Email;
use crate::auth::password::Passwords;
use crate::auth::store::{Action, AuditEvent, AuthStore, NewUser, Outcome};
use crate::config::Fixtures;
use crate::error::StoreError;
use crate::request_meta::RequestMeta;

/// The reference system's test account (its `api-requests/` and integration tests use it).
pub const REFERENCE_EMAIL: &str = "testuser@test.com";
/// Its password, as the reference system has it. Never accepted outside `--ephemeral`.
pub const REFERENCE_PASSWORD: &str = "password123";

/// Creates the accounts of `fixtures` (an existing one is left as it is) and announces them
/// loudly: a warn log and a banner on stderr.
pub async fn load(
    fixtures: Fixtures,
    store: &dyn AuthStore,
    passwords: &Passwords,
) -> anyhow::Result<()> {
    let Fixtures::Reference = fixtures;
    let email = Email::parse(REFERENCE_EMAIL)
        .map_err(|e| anyhow::anyhow!("the reference fixture email is invalid: {e}"))?;
    let user = NewUser {
        id: Uuid::now_v7(),
        email,
        password_hash: passwords
            .hash(SecretString::from(REFERENCE_PASSWORD.to_owned()))
            .await?,
        role: Role::Admin,
    };
    let audit = AuditEvent::new(
        Action::UserCreate,
        Outcome::Success,
        &RequestMeta::default(),
    );
    match store.create_user(&user, &audit).await {
        Ok(_) | Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e).context("while creating the reference fixture account"),
    }
    tracing::warn!(
        email = REFERENCE_EMAIL,
        "reference fixtures loaded: an ADMIN account with a well-known weak password exists \
         (ephemeral instance only)"
    );
    // Deliberately on stderr as well: whoever started the server must see it.
    eprintln!(
        "\n================================================================\n\
         PMS FIXTURES (reference): DEVELOPMENT ONLY, data is thrown away at exit\n\
         \x20   ADMIN account {REFERENCE_EMAIL} / {REFERENCE_PASSWORD} (well-known password)\n\
         Never expose this instance.\n\
         ================================================================\n"
    );
    Ok(())
}
