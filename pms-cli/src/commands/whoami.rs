//! `pms whoami`: who the token in use belongs to (asks the server).

use pms_cli::Result;
use pms_cli::output;

use super::App;

pub async fn run(app: &App) -> Result<()> {
    let client = app.client()?;
    let me = client.me().await?;
    if app.style.is_table() {
        return app.print(&format!(
            "{} ({}) on {}\n",
            me.email,
            me.role,
            client.base()
        ));
    }
    app.print(&output::one(&me, app.style)?)
}
