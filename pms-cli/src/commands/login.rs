//! `pms login`: exchange email + password for tokens, learn who we are, and store the session
//! (keyring first; see `pms_cli::credentials`). Prompts only on a terminal.

use clap::Args;
use pms_cli::api::{Credentials, expires_at};
use pms_cli::credentials::{Location, Session};
use pms_cli::output::{self, shapes::AuthStatus};
use pms_cli::{ApiClient, Result};

use super::{App, prompt};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Email of the account [default: prompt on a terminal, offering the profile's last one].
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// Read the password from stdin (one line) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn run(app: &App, args: LoginArgs) -> Result<()> {
    let server = app.ctx.server();
    let last_email = app.ctx.profile_settings().email;
    let email = match args.email {
        Some(email) => email,
        None => prompt::line(app, "Email", last_email.as_deref(), "--email")?,
    };
    let password = if args.password_stdin {
        prompt::stdin_lines(1)?.remove(0)
    } else {
        prompt::secret(app, "Password")?
    };
    if app.ctx.env.token.is_some() {
        (app.ctx.warn)("PMS_TOKEN is set: it takes precedence over the session this login stores");
    }
    let previous = app.ctx.load_session().ok().and_then(|o| o.found);

    let anonymous = app.ctx.anonymous_client(&server)?;
    let tokens = anonymous.login(&email, &password).await?;
    let identity = ApiClient::new(&server, Credentials::Token(tokens.token.clone()))?;
    let (email, role) = match identity.me().await {
        Ok(me) => (me.email, Some(me.role)),
        Err(e) => {
            (app.ctx.warn)(&format!(
                "logged in, but could not read the account ({})",
                super::present::message(&e)
            ));
            (email, None)
        }
    };
    let session = Session {
        server: server.clone(),
        email,
        role,
        access_token: tokens.token,
        refresh_token: tokens.refresh_token,
        expires_at: expires_at(tokens.expires_in),
    };
    let location = match app.ctx.save_session(&session) {
        Ok(location) => location,
        Err(e) => {
            // Nothing keeps the new session: do not leave it valid on the server either.
            let _ = anonymous.logout(&session.refresh_token).await;
            return Err(e);
        }
    };
    if let Some(old) = previous
        && old.session.refresh_token != session.refresh_token
        && let Ok(client) = app.ctx.anonymous_client(&old.session.server)
    {
        // The session this login replaces is revoked, not left valid on the server.
        let _ = client.logout(&old.session.refresh_token).await;
        // Keyring entries are per server: the old server's would linger, holding a dead session.
        if old.session.server != session.server && matches!(old.location, Location::Keyring(_)) {
            let _ = app
                .ctx
                .tokens
                .clear_keyring(&app.ctx.profile, &old.session.server);
        }
    }
    let role_text = session.role.map(|r| format!(" ({r})")).unwrap_or_default();
    app.note(&format!(
        "Logged in to {} as {}{role_text}; session stored in {location}.",
        session.server, session.email
    ));
    if app.style.format == output::Format::Json {
        app.print(&output::json(&status_of(
            &app.ctx.profile,
            &session,
            &location,
            Some(true),
        ))?)?;
    }
    Ok(())
}

/// The `auth status` shape of a stored session.
pub fn status_of(
    profile: &str,
    session: &Session,
    location: &Location,
    verified: Option<bool>,
) -> AuthStatus {
    AuthStatus {
        profile: profile.to_owned(),
        server: session.server.clone(),
        logged_in: true,
        source: Some(match location {
            Location::Keyring(_) => "keyring".to_owned(),
            Location::File(_) => "file".to_owned(),
        }),
        store: Some(location.name().to_owned()),
        store_path: match location {
            Location::File(path) => Some(path.display().to_string()),
            Location::Keyring(_) => None,
        },
        email: Some(session.email.clone()),
        role: session.role,
        access_token_expires_at: Some(session.expires_at),
        verified,
    }
}
