//! `pms users list`.

use pms_cli::Result;

use super::super::App;

pub async fn run(app: &App) -> Result<()> {
    let users = app.client()?.list_users().await?;
    app.print_page(&users, None)
}
