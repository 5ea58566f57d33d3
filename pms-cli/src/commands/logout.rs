//! `pms logout`: revoke the refresh token on the server, then remove the session from every
//! store on this machine. Idempotent: logging out twice is not an error.

use pms_cli::{Error, Result};

use super::App;

pub async fn run(app: &App) -> Result<()> {
    let outcome = app.ctx.load_session()?;
    let Some(found) = outcome.found else {
        let (removed, _) = app.ctx.tokens.clear(&app.ctx.profile, &app.ctx.server())?;
        if removed.is_empty() {
            let hint = if app.ctx.env.token.is_some() {
                " (PMS_TOKEN is set in the environment: unset it to stop using it)"
            } else {
                ""
            };
            app.note(&format!(
                "Not logged in (profile `{}`){hint}.",
                app.ctx.profile
            ));
        }
        return Ok(());
    };
    let session = found.session;
    let revoked = match app
        .ctx
        .anonymous_client(&session.server)?
        .logout(&session.refresh_token)
        .await
    {
        Ok(()) => true,
        // Already expired or revoked: nothing left to revoke.
        Err(Error::Api { status, .. }) if matches!(status.as_u16(), 400 | 401) => true,
        Err(e) => {
            (app.ctx.warn)(&format!(
                "could not revoke the session on the server ({}); it stays valid there until it expires",
                super::present::message(&e)
            ));
            false
        }
    };
    let (removed, errors) = app.ctx.tokens.clear(&app.ctx.profile, &session.server)?;
    for error in &errors {
        (app.ctx.warn)(&format!("could not remove the session from {error}"));
    }
    let mut config = pms_cli::config::Config::load(app.ctx.config.dir())?;
    let mut profile = config.profile(&app.ctx.profile);
    if profile.token_store.take().is_some() {
        config.set_profile(&app.ctx.profile, profile)?;
    }
    let places: Vec<String> = removed.iter().map(ToString::to_string).collect();
    app.note(&format!(
        "Logged out of {} ({}){}; removed the session from {}.",
        session.server,
        session.email,
        if revoked { ", session revoked" } else { "" },
        if places.is_empty() {
            "nowhere (it was already gone)".to_owned()
        } else {
            places.join(", ")
        }
    ));
    Ok(())
}
