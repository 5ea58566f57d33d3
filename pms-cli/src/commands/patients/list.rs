//! `pms patients list` and `pms patients deleted`.

use clap::Args;
use pms_cli::Result;
use pms_cli::api::PatientQuery;

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

/// Lists live patients, or the deleted ones (`pms patients deleted`, where `updatedAt` is when
/// the patient was deleted).
pub async fn run(app: &App, args: ListArgs, deleted: bool) -> Result<()> {
    let client = app.client()?;
    let query = PatientQuery {
        q: args.query,
        limit: args.limit,
        sort: args.sort,
        cursor: args.cursor,
    };
    let (page, what) = if deleted {
        (
            client.list_deleted_patients(&query, args.all).await?,
            "deleted patients",
        )
    } else {
        (client.list_patients(&query, args.all).await?, "patients")
    };
    if page.items.is_empty() && app.style.is_table() {
        app.note(&format!("No {what} found."));
        return Ok(());
    }
    let next = page.next_cursor();
    app.print_page(&page.items, next.clone())?;
    more_note(app, what, page.next.is_some(), next.as_deref());
    Ok(())
}

/// The stderr note after a page that has a next one: how to get it.
pub fn more_note(app: &App, what: &str, more: bool, cursor: Option<&str>) {
    match (more, cursor) {
        (false, _) => {}
        (true, Some(c)) => app.note(&format!("More {what}: use --all, or --cursor {c}")),
        (true, None) => app.note(&format!("More {what}: use --all")),
    }
}
