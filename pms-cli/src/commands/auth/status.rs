//! `pms auth status`: where the credentials come from (PMS_TOKEN, which keyring backend, or the
//! plain-text file), who they belong to, and whether the server accepts them.

use clap::Args;
use pms_cli::api::jwt_expiry;
use pms_cli::output::{self, shapes::AuthStatus};
use pms_cli::session::SessionSource;
use pms_cli::{Error, Result};

use super::super::{App, login::status_of};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Do not ask the server whether the token is still accepted.
    #[arg(long)]
    pub offline: bool,
}

pub async fn run(app: &App, args: StatusArgs) -> Result<()> {
    super::super::reject_csv(app.style, "auth status")?;
    let (client, source) = match app.ctx.client() {
        Ok(found) => found,
        Err(e @ Error::NotLoggedIn { .. }) => {
            let status = AuthStatus {
                profile: app.ctx.profile.clone(),
                server: app.ctx.server(),
                logged_in: false,
                source: None,
                store: None,
                store_path: None,
                email: None,
                role: None,
                access_token_expires_at: None,
                verified: None,
            };
            app.print(&output::one(&status, app.style)?)?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let mut status = match &source {
        SessionSource::Environment => {
            let token = app.ctx.env.token.clone().unwrap_or_default();
            AuthStatus {
                profile: app.ctx.profile.clone(),
                server: client.base().to_owned(),
                logged_in: true,
                source: Some("env".into()),
                store: Some("PMS_TOKEN".into()),
                store_path: None,
                email: None,
                role: None,
                access_token_expires_at: jwt_expiry(&token),
                verified: None,
            }
        }
        SessionSource::Stored(location) => {
            let session = client.session().await.unwrap_or_else(unreachable_session);
            status_of(&app.ctx.profile, &session, location, None)
        }
    };
    let mut failure = None;
    if !args.offline {
        match client.me().await {
            Ok(me) => {
                status.verified = Some(true);
                status.email = Some(me.email);
                status.role = Some(me.role);
                status.access_token_expires_at = Some(me.token_expires_at);
            }
            Err(e) => {
                if super::super::present::exit_code(&e) == super::super::present::ExitCode::Auth {
                    // A token the server refuses is no login, whatever is stored.
                    status.verified = Some(false);
                    status.logged_in = false;
                }
                failure = Some(e);
            }
        }
    }
    app.print(&output::one(&status, app.style)?)?;
    failure.map_or(Ok(()), Err)
}

/// A session client always has a session; this is only the type-level fallback.
fn unreachable_session() -> pms_cli::credentials::Session {
    pms_cli::credentials::Session {
        server: String::new(),
        email: String::new(),
        role: None,
        access_token: String::new(),
        refresh_token: String::new(),
        expires_at: chrono::Utc::now(),
    }
}
