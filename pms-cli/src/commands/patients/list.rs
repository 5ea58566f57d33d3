//! `pms patients list`.

use clap::Args;
use pms_cli::Result;
use pms_cli::api::PatientQuery;
use pms_cli::output;

use super::super::App;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Search: case-insensitive prefix of name, email or MRN.
    #[arg(short, long, value_name = "TEXT")]
    pub query: Option<String>,
    /// Page size (server default 100, at most 1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Order: createdAt, -createdAt (newest first), name, -name.
    #[arg(
        long,
        value_name = "FIELD",
        allow_hyphen_values = true,
        value_parser = ["createdAt", "-createdAt", "name", "-name"]
    )]
    pub sort: Option<String>,
    /// Start at this page (the cursor printed by a previous list; opaque, may begin with `-`).
    #[arg(
        long,
        value_name = "CURSOR",
        conflicts_with = "all",
        allow_hyphen_values = true
    )]
    pub cursor: Option<String>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(app: &App, args: ListArgs) -> Result<()> {
    let client = app.client()?;
    let query = PatientQuery {
        q: args.query,
        limit: args.limit,
        sort: args.sort,
        cursor: args.cursor,
    };
    let page = client.list_patients(&query, args.all).await?;
    if page.items.is_empty() && app.style.is_table() {
        app.note("No patients found.");
        return Ok(());
    }
    app.print(&output::list(&page.items, app.style)?)?;
    if let Some(next) = page.next {
        let cursor = url::Url::parse(&format!("http://x{next}"))
            .or_else(|_| url::Url::parse(&next))
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "cursor")
                    .map(|(_, v)| v.into_owned())
            });
        match cursor {
            Some(c) => app.note(&format!("More patients: use --all, or --cursor {c}")),
            None => app.note("More patients: use --all"),
        }
    }
    Ok(())
}
