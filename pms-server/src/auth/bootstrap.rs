//! First start: an installation without any user gets an ADMIN (`auth.admin_email`), with the
//! configured password or, if none is configured, 24 random alphanumerics that are printed once to
//! stderr and saved with mode 0600 in `{data_dir}/admin-password`. Never a built-in password.
//!
//! Race-safe: the store creates the admin only if there is no user at all, so of several replicas
//! starting at once exactly one creates it (and only that one prints a generated password).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use pms_proto::rest::Role;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::auth::model::Email;
use crate::auth::password::{Passwords, random_password};
use crate::auth::store::{AuthStore, NewUser};
use crate::config::AuthSettings;

/// Name of the generated-password file in the data dir.
pub const PASSWORD_FILE: &str = "admin-password";
const GENERATED_LEN: usize = 24;

/// What [`bootstrap_admin`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users exist already (or another replica just created the admin).
    AlreadyDone,
    /// Created the admin with the configured password.
    Created,
    /// Created the admin with a generated password, announced on stderr and saved here (`None`
    /// when the file could not be written; the stderr message says why).
    Generated(Option<PathBuf>),
}

/// Creates the first admin if there are no users.
pub async fn bootstrap_admin(
    store: &dyn AuthStore,
    passwords: &Passwords,
    settings: &AuthSettings,
    data_dir: &Path,
) -> anyhow::Result<Bootstrap> {
    if store.count_users().await.context("while counting users")? > 0 {
        return Ok(Bootstrap::AlreadyDone);
    }
    let email = Email::parse(&settings.admin_email).map_err(|e| {
        anyhow::anyhow!("invalid configuration: `auth.admin_email` (PMS_ADMIN_EMAIL) {e}")
    })?;
    let (password, generated) = match &settings.admin_password {
        Some(configured) => (configured.clone(), false),
        None => (SecretString::from(random_password(GENERATED_LEN)), true),
    };
    let user = NewUser {
        id: Uuid::now_v7(),
        email,
        password_hash: passwords.hash(password.clone()).await?,
        role: Role::Admin,
    };
    if !store
        .create_first_user(&user)
        .await
        .context("while creating the first admin")?
    {
        return Ok(Bootstrap::AlreadyDone);
    }
    tracing::info!(user_id = %user.id, "created the first admin account");
    if !generated {
        return Ok(Bootstrap::Created);
    }
    Ok(Bootstrap::Generated(announce(
        &user.email,
        &password,
        data_dir,
    )))
}

/// Prints the generated password once and saves it; returns the file written, if any.
fn announce(email: &Email, password: &SecretString, data_dir: &Path) -> Option<PathBuf> {
    let path = data_dir.join(PASSWORD_FILE);
    let (saved_to, note) = match save(&path, password) {
        Ok(()) => (
            Some(path.clone()),
            format!("It is also saved (mode 0600) in {}.", path.display()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => (
            None,
            format!(
                "{} already exists and was NOT overwritten; it does not hold this password.",
                path.display()
            ),
        ),
        Err(e) => (
            None,
            format!("It could not be saved to {}: {e}.", path.display()),
        ),
    };
    // Deliberately not `tracing`: logs are shipped and kept; this is shown once, to the operator.
    eprintln!(
        "\n================================================================\n\
         PMS first start: created the administrator account\n\
         \x20   email:    {email}\n\
         \x20   password: {}\n\
         {note}\n\
         Change it after logging in (POST /auth/me/password). It is not shown again.\n\
         ================================================================\n",
        password.expose_secret()
    );
    saved_to
}

/// Writes `password` to a new file readable by the owner only; never replaces an existing file.
fn save(path: &Path, password: &SecretString) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::private::private_dir(dir).map_err(std::io::Error::other)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(password.expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::testing::{postgres_store, sqlite_store};

    fn settings(password: Option<&str>) -> AuthSettings {
        AuthSettings {
            admin_email: format!("Admin-{}@PMS.test", Uuid::new_v4().simple()),
            admin_password: password.map(|p| SecretString::from(p.to_owned())),
            ..AuthSettings::default()
        }
    }

    async fn admin_password_matches(
        store: &dyn AuthStore,
        passwords: &Passwords,
        email: &str,
        password: &str,
    ) -> bool {
        let user = store
            .user_by_email(email)
            .await
            .expect("lookup")
            .expect("admin exists");
        assert_eq!(user.role, Role::Admin);
        assert_eq!(user.email, email.to_lowercase());
        passwords
            .verify(
                SecretString::from(password.to_owned()),
                Some(user.password_hash.expose_secret()),
            )
            .await
            .expect("verify")
    }

    #[tokio::test]
    async fn a_generated_password_is_saved_0600_once_and_never_clobbered() {
        let (store, dir) = sqlite_store().await;
        let passwords = Passwords::new().await.expect("hasher");
        let data_dir = dir.path().join("data");
        let settings = settings(None);
        let outcome = bootstrap_admin(&*store, &passwords, &settings, &data_dir)
            .await
            .expect("bootstrap");
        let path = data_dir.join(PASSWORD_FILE);
        assert_eq!(outcome, Bootstrap::Generated(Some(path.clone())));
        let saved = std::fs::read_to_string(&path).expect("password file");
        let password = saved.trim_end();
        assert_eq!(password.len(), GENERATED_LEN);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(admin_password_matches(&*store, &passwords, &settings.admin_email, password).await);

        // Later starts change nothing.
        let again = bootstrap_admin(&*store, &passwords, &settings, &data_dir)
            .await
            .expect("bootstrap");
        assert_eq!(again, Bootstrap::AlreadyDone);
        assert_eq!(std::fs::read_to_string(&path).expect("file"), saved);
        assert_eq!(store.count_users().await.expect("count"), 1);
    }

    #[tokio::test]
    async fn an_existing_password_file_is_not_overwritten() {
        let (store, dir) = sqlite_store().await;
        let passwords = Passwords::new().await.expect("hasher");
        let path = dir.path().join(PASSWORD_FILE);
        std::fs::write(&path, "an older password\n").expect("write");
        let outcome = bootstrap_admin(&*store, &passwords, &settings(None), dir.path())
            .await
            .expect("bootstrap");
        assert_eq!(outcome, Bootstrap::Generated(None));
        assert_eq!(
            std::fs::read_to_string(&path).expect("file"),
            "an older password\n"
        );
    }

    #[tokio::test]
    async fn a_configured_password_is_used_and_not_saved() {
        let (store, dir) = sqlite_store().await;
        let passwords = Passwords::new().await.expect("hasher");
        let settings = settings(Some("configured-admin-pw"));
        let outcome = bootstrap_admin(&*store, &passwords, &settings, dir.path())
            .await
            .expect("bootstrap");
        assert_eq!(outcome, Bootstrap::Created);
        assert!(!dir.path().join(PASSWORD_FILE).exists());
        assert!(
            admin_password_matches(
                &*store,
                &passwords,
                &settings.admin_email,
                "configured-admin-pw"
            )
            .await
        );
    }

    #[tokio::test]
    async fn an_invalid_admin_email_names_the_setting() {
        let (store, dir) = sqlite_store().await;
        let passwords = Passwords::new().await.expect("hasher");
        let mut settings = settings(Some("configured-admin-pw"));
        settings.admin_email = "not an email@".to_owned();
        let err = bootstrap_admin(&*store, &passwords, &settings, dir.path())
            .await
            .expect_err("invalid");
        assert!(err.to_string().contains("auth.admin_email"), "{err}");
        assert_eq!(store.count_users().await.expect("count"), 0);
    }

    #[tokio::test]
    async fn concurrent_replicas_create_exactly_one_admin() {
        let url = crate::store::testing::fresh_postgres_url().await;
        let (a, b) = (postgres_store(&url).await, postgres_store(&url).await);
        let passwords = Passwords::new().await.expect("hasher");
        let settings = settings(Some("configured-admin-pw"));
        let dir = tempfile::tempdir().expect("dir");
        let (ra, rb) = tokio::join!(
            bootstrap_admin(&*a, &passwords, &settings, dir.path()),
            bootstrap_admin(&*b, &passwords, &settings, dir.path()),
        );
        let mut outcomes = [ra.expect("a"), rb.expect("b")];
        outcomes.sort_by_key(|o| matches!(o, Bootstrap::Created));
        assert_eq!(outcomes, [Bootstrap::AlreadyDone, Bootstrap::Created]);
        assert_eq!(a.count_users().await.expect("count"), 1);
    }
}
