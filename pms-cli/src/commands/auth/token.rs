//! `pms auth token`: a valid access token on stdout, for `curl -H "Authorization: Bearer $(pms
//! auth token)"`.

use pms_cli::{Error, Result};

use super::super::App;

pub async fn run(app: &App) -> Result<()> {
    let client = app.client()?;
    let token = client
        .access_token()
        .await?
        .ok_or_else(|| Error::Other("no access token".into()))?;
    app.print(&format!("{token}\n"))
}
