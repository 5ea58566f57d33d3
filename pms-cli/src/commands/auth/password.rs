//! `pms auth password`: change your own password (current and new, prompted without echo on a
//! terminal, or two lines on stdin with `--password-stdin`).

use clap::Args;
use pms_cli::{Error, Result};

use super::super::{App, prompt};

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the current and the new password from stdin (two lines).
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn run(app: &App, args: PasswordArgs) -> Result<()> {
    let client = app.client()?;
    let (current, new) = if args.password_stdin {
        let mut lines = prompt::stdin_lines(2)?;
        let new = lines.pop().unwrap_or_default();
        (lines.pop().unwrap_or_default(), new)
    } else {
        let current = prompt::secret(app, "Current password")?;
        let new = prompt::secret(app, "New password")?;
        if prompt::secret(app, "New password again")? != new {
            return Err(Error::Usage("the new passwords do not match".into()));
        }
        (current, new)
    };
    client.change_password(&current, &new).await?;
    // The server revokes every refresh token of the account: log in again with the new password
    // so this machine keeps a working session.
    if let Some(session) = client.session().await {
        let tokens = app
            .ctx
            .anonymous_client(&session.server)?
            .login(&session.email, &new)
            .await?;
        app.ctx.save_session(&pms_cli::credentials::Session {
            access_token: tokens.token,
            refresh_token: tokens.refresh_token,
            expires_at: pms_cli::api::expires_at(tokens.expires_in),
            ..session
        })?;
        app.note("Password changed; signed in again with the new password.");
    } else {
        app.note("Password changed.");
    }
    Ok(())
}
