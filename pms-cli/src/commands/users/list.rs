//! `pms users list`.

use pms_cli::Result;
use pms_cli::output;

use super::super::App;

pub async fn run(app: &App) -> Result<()> {
    let users = app.client()?.list_users().await?;
    app.print(&output::list(&users, app.style)?)
}
